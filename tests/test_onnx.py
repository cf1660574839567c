"""ONNX graphs of an exported model: parity with PyTorch, int8, and ``predict --backend onnx``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from export_fixtures import tiny_trained_run

from psamf.cli import main
from psamf.inference import Predictor

pytest.importorskip("onnxruntime", reason="the serve extra (onnx, onnxruntime) is not installed")
pytest.importorskip("onnx", reason="the serve extra (onnx, onnxruntime) is not installed")

TEXTS = ["fine", "the movie was great, i would watch it again with friends and family",
         "so dull", "what a joy", "not my kind of film at all, far too long"]
INT8_BOUND = 0.25  # int8 weights on a random tiny model: the score may drift, not wander off


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("onnx")
    run = tiny_trained_run(workdir)
    assert main(["export", str(run), "--out", str(workdir / "model"), "--onnx", "--int8"]) == 0
    return workdir / "model"


def _frames(count: int, seed: int) -> list[np.ndarray | None]:
    rng = np.random.default_rng(seed)
    return [None if i % 4 == 3 else rng.normal(size=(1 + 3 * i, 12)) for i in range(count)]


def test_export_records_the_graphs_and_their_parity(exported):
    info = json.loads((exported / "export.json").read_text())["onnx"]
    assert info["max_abs_diff"] <= 1e-4 and info["int8"] is True
    for name in ("sentiment.onnx", "personality.onnx", "sentiment.int8.onnx",
                 "personality.int8.onnx"):
        assert (exported / "onnx" / name).stat().st_size > 0
    assert "ONNX" in (exported / "README.md").read_text()


@pytest.mark.parametrize("count", [1, 5])
def test_onnx_equals_torch_for_batches_and_lengths(exported, count):
    torch_p = Predictor(exported, device="cpu")
    onnx_p = Predictor(exported, backend="onnx")
    for texts in (TEXTS[:count], TEXTS[-count:]):  # different token counts per batch
        audio = _frames(len(texts), seed=count)
        want = torch_p.predict_texts(texts, audio=audio)
        got = onnx_p.predict_texts(texts, audio=audio)
        for a, b in zip(want, got, strict=True):
            assert abs(a["score"] - b["score"]) <= 1e-4
            for trait, value in a["big_five"].items():
                assert abs(value - b["big_five"][trait]) <= 1e-4
        np.testing.assert_allclose(onnx_p.personality(texts), torch_p.personality(texts),
                                   atol=1e-4)


def test_int8_runs_and_stays_close(exported):
    want = Predictor(exported, device="cpu").predict_texts(TEXTS, audio=_frames(5, 0))
    got = Predictor(exported, backend="onnx-int8").predict_texts(TEXTS, audio=_frames(5, 0))
    diffs = [abs(a["score"] - b["score"]) for a, b in zip(want, got, strict=True)]
    assert max(diffs) <= INT8_BOUND and all(np.isfinite(diffs))
    assert max(diffs) > 0  # it is a different (quantised) graph


def test_predict_backend_onnx_through_the_cli_equals_torch(exported, tmp_path, capsys):
    audio = tmp_path / "audio.npy"
    np.save(audio, np.random.default_rng(3).normal(size=(6, 12)).astype(np.float32))
    scores = {}
    for backend in ("torch", "onnx"):
        assert main(["predict", str(exported), "--text", TEXTS[1], "--audio", str(audio),
                     "--backend", backend]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["backend"] == backend and out["modalities"]["audio"] == "given"
        scores[backend] = out["score"]
    assert abs(scores["torch"] - scores["onnx"]) <= 1e-4


def test_int8_uses_the_chosen_settings(exported):
    """export.json records INT8_SETTINGS, and the graph has them: per-channel weights give one
    zero point per output column of each quantised MatMul."""
    import onnx

    from psamf.export.onnx_graphs import INT8_SETTINGS

    info = json.loads((exported / "export.json").read_text())["onnx"]
    assert info["int8_settings"] == INT8_SETTINGS
    graph = onnx.load(str(exported / "onnx" / "sentiment.int8.onnx")).graph
    consts = {i.name: i for i in graph.initializer}
    pairs = [(consts[n.input[1]], consts[n.input[3]]) for n in graph.node
             if n.op_type == "MatMulInteger" and n.input[3] in consts]
    assert pairs, "no MatMul was quantised"
    columns = [int(np.prod(z.dims)) for _, z in pairs]
    if INT8_SETTINGS["per_channel"]:
        assert columns == [w.dims[-1] for w, _ in pairs] and max(columns) > 1
    else:
        assert set(columns) == {1}
