"""``psamf export``: the exported folder predicts alone, is checksummed, and refuses bad folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from export_fixtures import tiny_trained_run

import psamf
from psamf.cli import main
from psamf.errors import InputError, NotFoundError, PsamfError
from psamf.export import export_run
from psamf.inference import Predictor

TEXTS = ["the movie was great", "a dull, long and tiresome film with no redeeming features", "ok"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def run(workdir) -> Path:
    return tiny_trained_run(workdir)


@pytest.fixture(scope="module")
def exported(run, workdir) -> Path:
    assert main(["export", str(run), "--out", str(workdir / "model")]) == 0
    return workdir / "model"


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("psamf ")]
    assert len(lines) == 1, err
    return lines[0]


def test_folder_holds_card_metrics_config_and_manifest(exported, run):
    manifest = json.loads((exported / "manifest.json").read_text())
    files = set(manifest["files"])
    assert {"README.md", "export.json", "model.json", "model.safetensors", "metrics.json",
            "text-backbone/config.json", "personality-encoder/model.safetensors",
            "personality-encoder/trait_head.json"} <= files
    assert not any(name.endswith((".bin", ".pt")) for name in files)
    assert not (exported / "text-backbone" / "model.safetensors").exists()  # in the model's
    config = json.loads((exported / "model.json").read_text())
    assert config["format"] == 1 and config["text_encoder"] == "text-backbone"
    metrics = json.loads((run / "seed-0" / "metrics.json").read_text())
    card = (exported / "README.md").read_text()
    assert f"{metrics['test']['mae']:.4f}" in card and "seed 0" in card
    assert "psamf.load_model" in card and "Licences" in card and "SYNTHETIC" in card
    assert json.loads((exported / "metrics.json").read_text())["test"] == metrics["test"]


def test_exported_folder_predicts_alone(exported, run, workdir, monkeypatch, capsys):
    """Export, then move the run and its personality encoder away and go offline: the folder
    (itself moved) still gives the run's scores and Big Five readings to 1e-6."""
    want = Predictor(run, device="cpu").predict_texts(TEXTS)
    assert main(["predict", str(run), "--text", TEXTS[0]]) == 0
    cli_want = json.loads(capsys.readouterr().out)
    encoder = workdir / "tiny-bert"
    moved = workdir / "elsewhere"
    moved.mkdir()
    shutil.copytree(exported, moved / "model")
    shutil.move(run, moved / "run")
    shutil.move(encoder, moved / "encoder")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    try:
        got = psamf.load_model(moved / "model", device="cpu").predict_texts(TEXTS)
        assert main(["predict", str(moved / "model"), "--text", TEXTS[0]]) == 0
        cli_got = json.loads(capsys.readouterr().out)
    finally:
        shutil.move(moved / "run", run)
        shutil.move(moved / "encoder", encoder)
    for a, b in zip(want, got, strict=True):
        assert abs(a["score"] - b["score"]) <= 1e-6
        assert a["big_five"] is not None and set(a["big_five"]) == set(b["big_five"])
        for trait, value in a["big_five"].items():
            assert abs(value - b["big_five"][trait]) <= 1e-6
    assert abs(cli_want["score"] - cli_got["score"]) <= 1e-6


def test_predictor_batches_and_reads_frames(exported):
    predictor = psamf.load_model(exported, device="cpu")
    rng = np.random.default_rng(1)
    audio = [rng.normal(size=(4, 12)), None, rng.normal(size=(2, 12))]
    batched = predictor.predict_texts(TEXTS, audio=audio)
    one = [predictor.predict_texts([t], audio=[a])[0] for t, a in zip(TEXTS, audio, strict=True)]
    for a, b in zip(batched, one, strict=True):
        assert abs(a["score"] - b["score"]) <= 1e-5
    assert batched[1]["score"] != batched[0]["score"]
    info = predictor.info()
    assert info["backend"] == "torch" and info["metrics"]["seed"] == 0 and "psamf" in info["card"]
    with pytest.raises(InputError, match=r"texts\[1\]"):
        predictor.predict_texts(["fine", "  "])
    with pytest.raises(InputError, match=r"audio\[0\].*width 5"):
        predictor.predict_texts(["fine"], audio=[np.zeros((3, 5))])


@pytest.mark.parametrize("victim", ["model.safetensors", "personality-encoder/tokenizer.json",
                                    "model.json"])
def test_a_flipped_byte_is_one_line_naming_the_file(exported, tmp_path, capsys, victim):
    copy = tmp_path / "model"
    shutil.copytree(exported, copy)
    path = copy / victim
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="damaged file"):
        Predictor(copy)
    assert main(["predict", str(copy), "--text", "fine"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert victim.split("/")[-1] in line and "manifest.json" in line


def test_bad_folders_are_refused_in_one_line(exported, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "missing-file"
    shutil.copytree(exported, missing)
    (missing / "metrics.json").unlink()
    extra = tmp_path / "extra-file"
    shutil.copytree(exported, extra)
    (extra / "notes.txt").write_text("added later")
    bad_json = tmp_path / "bad-manifest"
    shutil.copytree(exported, bad_json)
    (bad_json / "manifest.json").write_text("{not json")
    cases = {empty: "neither manifest.json", missing: "metrics.json", extra: "notes.txt",
             bad_json: "manifest.json", tmp_path / "nowhere": "no such model folder"}
    for folder, expected in cases.items():
        with pytest.raises(PsamfError):
            Predictor(folder)
        assert main(["predict", str(folder), "--text", "fine"]) == 2
        assert expected in _one_line(capsys.readouterr().err)
    with pytest.raises(NotFoundError):
        Predictor(tmp_path / "nowhere")
    assert main(["predict", str(exported), "--text", "fine", "--seed", "0"]) == 2
    assert "--seed" in _one_line(capsys.readouterr().err)
    assert main(["predict", str(exported), "--text", "fine", "--backend", "onnx"]) == 2
    assert "--onnx" in _one_line(capsys.readouterr().err)


def test_export_refusals_leave_nothing_behind(run, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["export", str(run), "--out", str(out), "--seed", "7"]) == 2
    assert "seed 7" in _one_line(capsys.readouterr().err) and not out.exists()
    assert main(["export", str(run), "--out", str(out), "--int8"]) == 2
    assert "--onnx" in _one_line(capsys.readouterr().err) and not out.exists()
    assert main(["export", str(run), "--out", str(run / "inside")]) == 2
    assert "inside the run folder" in _one_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []  # no half-written folder beside it either


def test_export_replaces_an_existing_folder_atomically(run, tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    export_run(run, out)
    assert not (out / "stale.txt").exists()
    Predictor(out, device="cpu")  # the manifest matches what is there
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
