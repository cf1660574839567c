"""``psamf train / evaluate / predict`` end to end on the sample with a tiny real BERT.

One module-scoped run (in process) is the reference; a second run with the same seed must give
identical metrics; a third, in a real subprocess, is SIGKILLed mid-epoch and resumed, and must end
with the same metrics as the uninterrupted one. Torch runs single-threaded here so that the shared
2-core machine is not oversubscribed (and in-process and subprocess runs use the same kernels).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import psamf_command, signal_in_second_epoch
from training_fixtures import fast_overrides, read_json, tiny_encoder

from psamf.cli import main
from psamf.training import load_config

RESULT_KEYS = ("valid", "test", "history", "best_epoch", "epochs_run")
TIMING_KEYS = ("seconds", "resumed_at_step")  # how long an epoch took is not a result


def _results(metrics: dict) -> dict:
    out = {k: metrics[k] for k in RESULT_KEYS}
    out["history"] = [{k: v for k, v in h.items() if k not in TIMING_KEYS}
                      for h in metrics["history"]]
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def overrides(workdir) -> list[str]:
    encoder = tiny_encoder(workdir / "tiny-bert")
    return fast_overrides(encoder, workdir / "cache", epochs=3, checkpoint_every_steps=1)


@pytest.fixture(scope="module")
def reference_run(workdir, overrides) -> Path:
    rc = main(["train", "--out", str(workdir / "runs"), "--name", "ref", "--no-progress",
               *overrides])
    assert rc == 0
    return workdir / "runs" / "ref"


def test_train_writes_a_complete_run_folder(reference_run, capsys):
    run = reference_run
    for name in ("config.yaml", "run.json", "summary.md", "summary.csv", "summary.json"):
        assert (run / name).is_file(), name
    seed = run / "seed-0"
    for name in ("metrics.json", "best/model.safetensors", "best/state.json",
                 "predictions_test.csv", "test_scatter.png", "test_confusion7.png",
                 "learning_curves.png"):
        assert (seed / name).stat().st_size > 0, name
    assert list((seed / "tensorboard").glob("events.out.tfevents.*"))
    assert not (seed / "checkpoint").exists()  # training state dropped once the seed finished
    metrics = read_json(seed / "metrics.json")
    assert set(metrics["test"]) >= {"mae", "corr", "acc7", "acc2_has0", "f1_non0"}
    assert len(metrics["history"]) == metrics["epochs_run"] == 3
    best = min(metrics["history"], key=lambda h: h["valid"]["mae"])
    assert metrics["best_epoch"] == best["epoch"]
    assert metrics["valid"]["mae"] == pytest.approx(best["valid"]["mae"], abs=1e-6)
    for h in metrics["history"]:  # each epoch's wall time, none resumed mid-way
        assert h["seconds"]["train"] > 0 and h["seconds"]["valid"] > 0, h
        assert "resumed_at_step" not in h
    assert "SYNTHETIC" in (run / "summary.md").read_text()
    summary = read_json(run / "summary.json")
    assert summary["test"]["mean"]["mae"] == metrics["test"]["mae"]
    assert len((seed / "predictions_test.csv").read_text().splitlines()) == 1 + 32


def test_run_rebuilds_from_its_folder_and_evaluate_matches(reference_run, workdir, capsys):
    from psamf.training import load_trained_model

    config = load_config(reference_run)
    assert config.model.audio_dim == 12 and config.model.personality_dim == 32
    _, seed, model = load_trained_model(reference_run)
    assert seed == 0 and not model.training
    out = workdir / "eval.json"
    assert main(["evaluate", str(reference_run), "--split", "all", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "split test" in printed and "SYNTHETIC" in printed
    result = read_json(out)["splits"]
    metrics = read_json(reference_run / "seed-0" / "metrics.json")
    assert result["test"]["per_seed"][0]["mae"] == pytest.approx(metrics["test"]["mae"], abs=1e-6)
    assert result["valid"]["per_seed"][0]["mae"] == pytest.approx(metrics["valid"]["mae"], abs=1e-6)
    assert set(result) == {"train", "valid", "test"}


def test_predict_prints_json_and_checks_av_widths(reference_run, workdir, capsys):
    good = workdir / "audio.npy"
    np.save(good, np.random.default_rng(0).normal(size=(7, 12)).astype(np.float32))
    assert main(["predict", str(reference_run), "--text", "the movie was great",
                 "--audio", str(good)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert isinstance(out["score"], float) and -3 <= out["sentiment_class"] <= 3
    assert out["label"] in {"strongly negative", "negative", "weakly negative", "neutral",
                            "weakly positive", "positive", "strongly positive"}
    assert out["modalities"] == {"audio": "given", "vision": "absent"}
    assert out["big_five"] is None  # the tiny encoder has no trait head

    from psamf.personality.head import HEAD_CONFIG, HEAD_WEIGHTS, TraitHead

    encoder = Path(load_config(reference_run).personality_encoder)
    TraitHead(hidden_size=32).save(encoder)
    try:
        assert main(["predict", str(reference_run), "--text", "the movie was great"]) == 0
        traits = json.loads(capsys.readouterr().out)["big_five"]
    finally:
        for name in (HEAD_CONFIG, HEAD_WEIGHTS):
            (encoder / name).unlink()
    assert set(traits) == {"openness", "conscientiousness", "extraversion", "agreeableness",
                           "neuroticism"}
    assert all(0.0 <= v <= 1.0 for v in traits.values())

    wrong = workdir / "wide.npy"
    np.save(wrong, np.zeros((5, 13), dtype=np.float32))
    assert main(["predict", str(reference_run), "--text", "x", "--vision", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert "wide.npy" in err and "13" in err and "10" in err
    pickled = workdir / "objects.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert main(["predict", str(reference_run), "--text", "x", "--audio", str(pickled)]) == 2
    assert "objects.npy" in capsys.readouterr().err
    assert main(["predict", str(reference_run), "--text", "x",
                 "--audio", str(workdir / "missing.npy")]) == 2
    assert "missing.npy" in capsys.readouterr().err


def test_same_seed_twice_gives_identical_metrics(reference_run, workdir, overrides):
    assert main(["train", "--out", str(workdir / "runs"), "--name", "again", "--no-progress",
                 *overrides]) == 0
    a = read_json(reference_run / "seed-0" / "metrics.json")
    b = read_json(workdir / "runs" / "again" / "seed-0" / "metrics.json")
    assert _results(a) == _results(b)


_psamf = psamf_command


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(reference_run, workdir, overrides):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    run = workdir / "runs" / "killed"
    proc = subprocess.Popen(
        _psamf("train", "--out", str(workdir / "runs"), "--name", "killed", "--no-progress",
               *overrides),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    killed_at = signal_in_second_epoch(proc, run, signal.SIGKILL)
    assert killed_at is not None, f"run ended before it could be killed: {proc.stderr.read()!r}"
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "seed-0" / "metrics.json").exists()

    resumed = subprocess.run(_psamf("train", "--resume", str(run), "--no-progress"), env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    where = re.search(r"resuming after epoch (\d+), step (\d+)", resumed.stderr)
    assert where, resumed.stderr
    a = read_json(reference_run / "seed-0" / "metrics.json")
    b = read_json(run / "seed-0" / "metrics.json")
    assert _results(a) == _results(b)
    epoch, step = int(where.group(1)), int(where.group(2))
    # The epoch resumed mid-way says so (its training seconds are partial); no other epoch does.
    # (The kill nearly always lands mid-epoch, as a checkpoint is written every step.)
    assert [h.get("resumed_at_step") for h in b["history"]] == \
        [step if i == epoch and step else None for i in range(len(b["history"]))]


def test_stopped_between_checkpoint_and_best_then_resume_restores_best(
        reference_run, workdir, overrides, monkeypatch, capsys):
    """The run dies right after its best epoch's checkpoint, before ``best/`` is written; the
    resumed run must still test that epoch's weights, not an older best or none."""
    from psamf.training.trainer import Trainer

    best_epoch = read_json(reference_run / "seed-0" / "metrics.json")["best_epoch"]
    save_best = Trainer._save_best

    def stop_before_last_best(self, model, loop):
        if loop.best_epoch == best_epoch:
            raise KeyboardInterrupt
        save_best(self, model, loop)

    monkeypatch.setattr(Trainer, "_save_best", stop_before_last_best)
    assert main(["train", "--out", str(workdir / "runs"), "--name", "stopped", "--no-progress",
                 *overrides]) == 130  # Ctrl-C: the shell's 128 + SIGINT
    assert "psamf train --resume" in capsys.readouterr().err
    monkeypatch.setattr(Trainer, "_save_best", save_best)
    seed = workdir / "runs" / "stopped" / "seed-0"
    best_state = seed / "best" / "state.json"
    assert not best_state.is_file() or read_json(best_state)["epoch"] != best_epoch
    assert main(["train", "--resume", str(seed.parent), "--no-progress"]) == 0
    assert read_json(best_state)["epoch"] == best_epoch
    a = read_json(reference_run / "seed-0" / "metrics.json")
    b = read_json(seed / "metrics.json")
    assert _results(a) == _results(b)


def test_resume_refuses_a_replaced_personality_encoder(workdir, tmp_path, capsys):
    """run.json records which encoder gave P; resuming after it was retrained would mix two P."""
    encoder = tiny_encoder(workdir / "tiny-bert")
    personality = tmp_path / "personality"
    tiny_encoder(personality, seed=1)
    overrides = fast_overrides(encoder, workdir / "cache", epochs=1,
                               personality_encoder=str(personality))
    assert main(["train", "--out", str(tmp_path / "runs"), "--name", "p", "--no-progress",
                 *overrides]) == 0
    recorded = read_json(tmp_path / "runs" / "p" / "run.json")["personality"]
    assert recorded["encoder"] == str(personality) and recorded["identity"]
    assert recorded["pretrained"] is False
    capsys.readouterr()
    shutil.rmtree(personality)
    tiny_encoder(personality, seed=2)  # "retrained": same folder, other weights
    assert main(["train", "--resume", str(tmp_path / "runs" / "p"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "personality encoder" in err and "replaced" in err
