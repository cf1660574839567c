"""TFN: the fused tensor is the outer product of the extended unimodal vectors; absent
modalities collapse their axis; a tiny training run through the CLI."""

from __future__ import annotations

import pytest
import torch
from model_fixtures import make_batch, make_tiny_bert
from training_fixtures import fast_overrides, read_json, tiny_encoder

from psamf.cli import main
from psamf.models import PSAMFConfig, build_model
from psamf.training import load_config

SMALL = {"tfn_text_hidden": 6, "tfn_av_hidden": 4, "tfn_post_hidden": 8, "max_text_length": 24}


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> str:
    return make_tiny_bert(tmp_path_factory.mktemp("bert"), layers=2)


def _model(bert: str, **widths: int | None):
    torch.manual_seed(0)
    model = build_model(PSAMFConfig(model_type="tfn", text_encoder=bert, **SMALL, **widths))
    return model.eval()


def _vectors(model, batch: dict) -> dict:
    return model.unimodal(batch["input_ids"], batch["attention_mask"],
                          {m: (batch.get(m), batch.get(f"{m}_lengths"))
                           for m in ("audio", "vision")})


def test_the_fused_tensor_is_the_outer_product_holding_each_unimodal_vector(bert):
    model = _model(bert, audio_dim=5, vision_dim=7)
    batch = make_batch(model)
    with torch.no_grad():
        vectors = _vectors(model, batch)
        fused = model.fuse(vectors)
    dt, da, dv = 6, 4, 4
    assert fused.shape == (4, (dt + 1) * (da + 1) * (dv + 1)) == (4, model.fused_dim)
    cube = fused.view(4, dt + 1, da + 1, dv + 1)
    # The slices where the other two modalities read their constant 1 are the vectors themselves.
    torch.testing.assert_close(cube[:, :dt, da, dv], vectors["text"])
    torch.testing.assert_close(cube[:, dt, :da, dv], vectors["audio"])
    torch.testing.assert_close(cube[:, dt, da, :dv], vectors["vision"])
    assert torch.equal(cube[:, dt, da, dv], torch.ones(4))
    # A trimodal entry is the product of the three.
    expected = vectors["text"][:, 2] * vectors["audio"][:, 1] * vectors["vision"][:, 3]
    torch.testing.assert_close(cube[:, 2, 1, 3], expected)
    assert vectors["audio"].abs().sum() > 0  # not trivially zero


def test_audio_only_and_text_only_collapse_the_missing_axes(bert):
    audio_only = _model(bert, audio_dim=5)
    batch = make_batch(audio_only)
    assert "vision" not in batch and set(audio_only.av_nets) == {"audio"}
    with torch.no_grad():
        vectors = _vectors(audio_only, batch)
        fused = audio_only.fuse(vectors)
        out = audio_only(**batch)
    assert fused.shape == (4, 7 * 5 * 1)
    cube = fused.view(4, 7, 5)
    torch.testing.assert_close(cube[:, :6, 4], vectors["text"])
    torch.testing.assert_close(cube[:, 6, :4], vectors["audio"])
    assert out.prediction.shape == (4,) and torch.isfinite(out.loss)

    text_only = _model(bert)
    batch = make_batch(text_only)
    with torch.no_grad():
        vectors = _vectors(text_only, batch)
        fused = text_only.fuse(vectors)
        out = text_only(**batch)
    assert fused.shape == (4, 7) and not text_only.av_nets
    torch.testing.assert_close(fused[:, :6], vectors["text"])
    assert out.prediction.shape == (4,) and torch.isfinite(out.loss)


def test_frames_beyond_the_length_are_ignored_and_no_frames_contribute_zero(bert):
    model = _model(bert, audio_dim=5)
    batch = make_batch(model, frames={"audio": 4}, lengths={"audio": [4, 2, 0, 1]})
    noisy = dict(batch, audio=batch["audio"].clone())
    noisy["audio"][1, 2:] = 100.0  # padding garbage must not move anything
    noisy["audio"][2] = -50.0
    with torch.no_grad():
        clean, dirty = _vectors(model, batch)["audio"], _vectors(model, noisy)["audio"]
        pred_clean, pred_dirty = model(**batch).prediction, model(**noisy).prediction
    torch.testing.assert_close(clean, dirty)
    torch.testing.assert_close(pred_clean, pred_dirty)
    assert torch.equal(clean[2], torch.zeros(4))


def test_text_pooling_is_an_option(bert):
    first = build_model(PSAMFConfig(model_type="tfn", text_encoder=bert, **SMALL,
                                    tfn_text_pooling="first"))
    assert first.text_pooling == "first"
    with pytest.raises(ValueError, match="tfn_text_pooling must be one of"):
        PSAMFConfig(model_type="tfn", tfn_text_pooling="max")
    with pytest.raises(ValueError, match="tfn_av_hidden must be a positive int"):
        PSAMFConfig(model_type="tfn", tfn_av_hidden=0)


def test_tfn_trains_through_the_cli_on_the_sample(tmp_path):
    encoder = tiny_encoder(tmp_path / "tiny")
    overrides = fast_overrides(encoder, tmp_path / "cache", epochs=1, **{
        "model.model_type": "tfn", "data.limit_train": 8, "model.tfn_text_hidden": 8,
        "model.tfn_av_hidden": 4, "model.tfn_post_hidden": 8})
    assert main(["train", "--data", "sample", "--out", str(tmp_path / "runs"), "--name", "t",
                 *overrides]) == 0
    run = tmp_path / "runs" / "t"
    assert load_config(run).model.model_type == "tfn"
    mae = read_json(run / "seed-0" / "metrics.json")["test"]["mae"]
    assert mae == mae and mae > 0  # a number, not NaN
