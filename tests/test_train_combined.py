"""``psamf train --data DIR1+DIR2`` end to end: one run on two datasets, validation on the joined
valid split, test metrics for the joined test split and for each dataset alone."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from test_data_combine import write_label_csv
from training_fixtures import fast_overrides, read_json, tiny_encoder

from psamf.cli import main


def test_training_on_two_datasets_reports_each(tmp_path, capsys):
    alpha = write_label_csv(tmp_path / "data" / "alpha", seed=1, n_train=24, n_valid=8, n_test=9)
    beta = write_label_csv(tmp_path / "data" / "beta", seed=2, n_train=20, n_valid=6, n_test=7)
    encoder = tiny_encoder(tmp_path / "tiny-bert")
    overrides = fast_overrides(encoder, tmp_path / "cache", **{
        "data.limit_train": 16, "data.limit_valid": 5, "data.limit_test": 6})
    rc = main(["train", "--data", f"{alpha}+{beta}", "--out", str(tmp_path / "runs"),
               "--name", "two", "--no-progress", *overrides])
    assert rc == 0
    printed = capsys.readouterr().out
    run = tmp_path / "runs" / "two"
    info = read_json(run / "run.json")["dataset"]
    assert info["parts"] == ["alpha", "beta"]
    assert info["sizes"] == {"train": 32, "valid": 10, "test": 12}  # limits apply per dataset
    metrics = read_json(run / "seed-0" / "metrics.json")
    assert set(metrics) >= {"valid", "test", "history", "best_epoch"}  # existing keys unchanged
    by = metrics["test_by_dataset"]
    assert list(by) == ["alpha", "beta"]
    assert by["alpha"]["utterances"] == by["beta"]["utterances"] == 6
    # the joined test MAE is the size-weighted mean of the per-dataset ones (same predictions)
    joined = sum(m["utterances"] * m["mae"] for m in by.values()) / 12
    assert metrics["test"]["mae"] == pytest.approx(joined, rel=1e-6)
    with (run / "seed-0" / "predictions_test.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids) == 12
    alpha_rows = [r for r in rows if r["id"].startswith("alpha/")]
    mae = np.mean([abs(float(r["label"]) - float(r["prediction"])) for r in alpha_rows])
    assert by["alpha"]["mae"] == pytest.approx(mae, rel=1e-6)
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["test"]["mean"]["mae"] == metrics["test"]["mae"]
    assert summary["test_by_dataset"]["beta"]["utterances"] == 6
    assert summary["test_by_dataset"]["beta"]["mean"]["mae"] == by["beta"]["mae"]
    # evaluate re-scores the same checkpoint on the same splits: the same per-dataset numbers
    assert main(["evaluate", str(run), "--json", str(tmp_path / "eval.json")]) == 0
    assert "split test, beta alone (6 utterances)" in capsys.readouterr().out
    evaluated = read_json(tmp_path / "eval.json")["splits_by_dataset"]["test"]
    for part in ("alpha", "beta"):
        assert evaluated[part]["utterances"] == 6
        assert evaluated[part]["mean"]["mae"] == pytest.approx(by[part]["mae"], rel=1e-5)
    md = (run / "summary.md").read_text(encoding="utf-8")
    assert "Test, alpha alone (6 utterances)" in md and "Test, beta alone" in md
    assert printed.index("Test, alpha alone (6 utterances)") < printed.index("Test, beta alone")
    headers = [line for line in printed.splitlines() if line.startswith("| seed")]
    assert len(headers) == 3  # joined, alpha, beta: each in the usual column order
    assert all(h.startswith("| seed | MAE | Corr |") for h in headers), headers


def test_single_dataset_runs_keep_their_records(tmp_path):
    """No ``test_by_dataset`` key for one dataset (its files stay as before)."""
    encoder = tiny_encoder(tmp_path / "tiny-bert")
    rc = main(["train", "--out", str(tmp_path / "runs"), "--name", "one", "--no-progress",
               *fast_overrides(encoder, tmp_path / "cache", epochs=1)])
    assert rc == 0
    assert "test_by_dataset" not in read_json(tmp_path / "runs" / "one" / "seed-0" / "metrics.json")
    assert "test_by_dataset" not in read_json(tmp_path / "runs" / "one" / "summary.json")


def test_train_refuses_a_bad_combination_in_one_line(tmp_path, capsys):
    alpha = write_label_csv(tmp_path / "alpha", seed=1, n_train=4, n_valid=2, n_test=2)
    assert main(["train", "--data", f"{alpha}+", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "empty dataset name" in err
    assert not (tmp_path / "runs").exists()
