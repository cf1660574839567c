"""LMF: rank-r modality-specific factors equal the linear layer of the full TFN tensor with the
corresponding low-rank weight; absent modalities; a tiny training run through the CLI."""

from __future__ import annotations

import pytest
import torch
from model_fixtures import make_batch, make_tiny_bert
from training_fixtures import fast_overrides, read_json, tiny_encoder

from psamf.cli import main
from psamf.models import PSAMFConfig, build_model
from psamf.training import load_config

SMALL = {"tfn_text_hidden": 6, "tfn_av_hidden": 4, "max_text_length": 24}


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> str:
    return make_tiny_bert(tmp_path_factory.mktemp("bert"), layers=2)


def _model(bert: str, **settings):
    torch.manual_seed(0)
    config = PSAMFConfig(model_type="lmf", text_encoder=bert, **SMALL, **settings)
    return build_model(config).eval()


def _vectors(model, batch: dict) -> dict:
    return model.unimodal(batch["input_ids"], batch["attention_mask"],
                          {m: (batch.get(m), batch.get(f"{m}_lengths"))
                           for m in ("audio", "vision")})


def _full_tensor(model, vectors: dict) -> torch.Tensor:
    """Z = [z_t;1] ⊗ [z_a;1] ⊗ [z_v;1], flattened (B, prod(d_m+1)), built explicitly."""
    text, audio, vision = model.extended(vectors)
    return torch.einsum("bi,bj,bk->bijk", text, audio, vision).flatten(1)


@pytest.mark.parametrize("rank,out", [(1, 1), (3, 5)])
def test_low_rank_factors_equal_the_full_tensor_with_the_low_rank_weight(bert, rank, out):
    model = _model(bert, audio_dim=5, vision_dim=7, lmf_rank=rank, lmf_fusion_dim=out)
    with torch.no_grad():
        model.fusion_bias.normal_()
    batch = make_batch(model)
    with torch.no_grad():
        vectors = _vectors(model, batch)
        low_rank = model.fuse(vectors)  # (B, d_h)
        f = model.factors
        # W = sum_i w_t^(i) ⊗ w_a^(i) ⊗ w_v^(i): (7, 5, 5, d_h), flattened like Z.
        weight = torch.einsum("rih,rjh,rkh->ijkh", f["text"], f["audio"], f["vision"])
        full = _full_tensor(model, vectors) @ weight.reshape(-1, out) + model.fusion_bias
    assert weight.shape == (7, 5, 5, out) and low_rank.shape == (4, out)
    torch.testing.assert_close(low_rank, full, atol=1e-5, rtol=1e-5)
    assert full.abs().max() > 1e-3  # a real comparison, not zeros against zeros


def test_audio_only_and_text_only(bert):
    audio_only = _model(bert, audio_dim=5, lmf_rank=2)
    assert set(audio_only.factors) == {"text", "audio"}
    batch = make_batch(audio_only)
    with torch.no_grad():
        vectors = _vectors(audio_only, batch)
        f = audio_only.factors
        weight = torch.einsum("rih,rjh->ijh", f["text"], f["audio"])  # (7, 5, 1)
        text, audio, _ = audio_only.extended(vectors)
        full = torch.einsum("bi,bj->bij", text, audio).flatten(1) @ weight.reshape(-1, 1)
        torch.testing.assert_close(audio_only.fuse(vectors), full + audio_only.fusion_bias,
                                   atol=1e-5, rtol=1e-5)
        out = audio_only(**batch)
    assert out.prediction.shape == (4,) and torch.isfinite(out.loss)

    text_only = _model(bert)
    assert set(text_only.factors) == {"text"} and not text_only.av_nets
    out = text_only(**make_batch(text_only))
    assert out.prediction.shape == (4,) and torch.isfinite(out.loss)


def test_rank_and_width_are_validated():
    with pytest.raises(ValueError, match="lmf_rank must be a positive int"):
        PSAMFConfig(model_type="lmf", lmf_rank=0)
    with pytest.raises(ValueError, match="lmf_fusion_dim must be a positive int"):
        PSAMFConfig(model_type="lmf", lmf_fusion_dim=True)


def test_lmf_trains_through_the_cli_on_the_sample(tmp_path):
    encoder = tiny_encoder(tmp_path / "tiny")
    overrides = fast_overrides(encoder, tmp_path / "cache", epochs=1, **{
        "model.model_type": "lmf", "data.limit_train": 8, "model.tfn_text_hidden": 8,
        "model.tfn_av_hidden": 4, "model.lmf_rank": 2})
    assert main(["train", "--data", "sample", "--out", str(tmp_path / "runs"), "--name", "l",
                 *overrides]) == 0
    run = tmp_path / "runs" / "l"
    assert load_config(run).model.model_type == "lmf"
    mae = read_json(run / "seed-0" / "metrics.json")["test"]["mae"]
    assert mae == mae and mae > 0
