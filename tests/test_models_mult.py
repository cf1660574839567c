"""MulT: masked crossmodal attention, the blocks built per modality set, and a CLI training run."""

from __future__ import annotations

import pytest
import torch
from model_fixtures import make_batch, make_tiny_bert
from training_fixtures import fast_overrides, read_json, tiny_encoder

from psamf.cli import main
from psamf.models import MulT, PSAMFConfig, build_model
from psamf.models.mult import AttentionBlock, Transformer
from psamf.training import load_config

SMALL = {"mult_width": 8, "mult_heads": 2, "max_text_length": 24}


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> str:
    return make_tiny_bert(tmp_path_factory.mktemp("bert"), layers=2)


def test_crossmodal_attention_ignores_padded_source_frames_and_reads_real_ones():
    torch.manual_seed(0)
    block = Transformer(8, 2, 2, crossmodal=True, attn_dropout=0.0, dropout=0.0).eval()
    target = torch.randn(2, 4, 8)
    source = torch.randn(2, 6, 8)
    lengths = torch.tensor([3, 6])
    source_padding = torch.arange(6)[None, :] >= lengths[:, None]  # (2, 6): sample 0 pads 3..5
    target_padding = torch.zeros(2, 4, dtype=torch.bool)
    with torch.no_grad():
        base = block(target, target_padding, source, source_padding)
        padded_changed = source.clone()
        padded_changed[0, 3:] = torch.randn(3, 8) * 100
        assert torch.allclose(block(target, target_padding, padded_changed, source_padding),
                              base, atol=1e-6)
        real_changed = source.clone()
        real_changed[0, 1] = torch.randn(8) * 3  # (a constant shift would vanish in LayerNorm)
        moved = block(target, target_padding, real_changed, source_padding)
    assert not torch.allclose(moved[0], base[0], atol=1e-4)  # every target position reads it
    assert torch.allclose(moved[1], base[1], atol=1e-6)  # the other sample does not


def test_a_source_without_frames_leaves_only_the_residual_path():
    torch.manual_seed(0)
    block = AttentionBlock(8, 2, crossmodal=True, attn_dropout=0.0, dropout=0.0).eval()
    target, source = torch.randn(2, 3, 8), torch.randn(2, 4, 8)
    padding = torch.tensor([[True] * 4, [False] * 4])
    with torch.no_grad():
        out = block(target, source, padding)
        other = block(target, torch.randn(2, 4, 8), padding)
    assert torch.isfinite(out).all()
    assert torch.allclose(out[0], other[0])  # sample 0 reads nothing from the source
    assert not torch.allclose(out[1], other[1])


def test_whole_model_ignores_padded_audio_frames(bert):
    torch.manual_seed(0)
    model = build_model(PSAMFConfig(model_type="mult", text_encoder=bert, audio_dim=5,
                                    vision_dim=7, **SMALL)).eval()
    batch = make_batch(model, frames={"audio": 4, "vision": 3},
                       lengths={"audio": [2, 4, 0, 1], "vision": [3, 0, 1, 2]})
    batch["labels"] = None
    with torch.no_grad():
        base = model(**batch).prediction
        noisy = dict(batch, audio=batch["audio"].clone())
        noisy["audio"][0, 2:] = 50.0  # padding of sample 0 (a kernel-3 conv must not leak it)
        noisy["audio"][2] = 50.0  # sample 2 has no audio at all
        assert torch.allclose(model(**noisy).prediction, base, atol=1e-5)
        noisy["audio"][0, 1] = 50.0  # a real frame
        assert not torch.allclose(model(**noisy).prediction[0], base[0], atol=1e-5)
    assert torch.isfinite(base).all()


@pytest.mark.parametrize(
    ("widths", "modalities", "crossmodal"),
    [
        ({"audio_dim": 5, "vision_dim": 7}, ("text", "audio", "vision"),
         {"audio_to_text", "vision_to_text", "text_to_audio", "vision_to_audio",
          "text_to_vision", "audio_to_vision"}),
        ({"audio_dim": 5}, ("text", "audio"), {"audio_to_text", "text_to_audio"}),
        ({}, ("text",), set()),  # text only: a plain transformer over the text
    ],
)
def test_the_blocks_built_follow_the_modalities_present(bert, widths, modalities, crossmodal):
    torch.manual_seed(0)
    model = build_model(PSAMFConfig(model_type="mult", text_encoder=bert, **widths, **SMALL))
    assert isinstance(model, MulT) and model.modalities == modalities
    assert set(model.crossmodal) == crossmodal
    assert set(model.self_attention) == set(modalities)
    sources = max(1, len(modalities) - 1)
    assert model.head_out.in_features == 8 * sources * len(modalities)
    batch = make_batch(model)
    batch["personality"] = None
    out = model(**batch)
    assert out.prediction.shape == (4,) and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_missing_or_misshapen_frames_are_one_line_errors(bert):
    model = build_model(PSAMFConfig(model_type="mult", text_encoder=bert, audio_dim=5, **SMALL))
    batch = make_batch(model)
    with pytest.raises(ValueError, match="built with audio_dim=5: pass audio"):
        model(**dict(batch, audio=None))
    with pytest.raises(ValueError, match="set audio_dim in the model config"):
        model(**dict(batch, audio=torch.zeros(4, 3, 6)))
    with pytest.raises(ValueError, match=r"audio_lengths must be \(4,\) in \[0, 3\]"):
        model(**dict(batch, audio_lengths=torch.tensor([1, 2, 3, 4])))


@pytest.mark.parametrize(("field", "value", "message"), [
    ("mult_heads", 3, "must be divisible by mult_heads"),
    ("mult_av_kernel", 2, "mult_av_kernel must be odd"),
    ("mult_layers", 0, "mult_layers must be a positive int"),
    ("mult_attn_dropout", 1.0, r"mult_attn_dropout must be a number in \[0, 1\)"),
])
def test_bad_mult_options_are_refused(field, value, message):
    with pytest.raises(ValueError, match=message):
        PSAMFConfig(model_type="mult", **{field: value})


def test_mult_trains_through_the_cli(tmp_path):
    encoder = tiny_encoder(tmp_path / "tiny")
    overrides = fast_overrides(encoder, tmp_path / "cache", epochs=1,
                               **{"model.model_type": "mult", "model.mult_width": 8,
                                  "data.limit_train": 8, "data.limit_valid": 8,
                                  "data.limit_test": 8})
    assert main(["train", "--data", "sample", "--out", str(tmp_path / "runs"), "--name", "m",
                 "--no-progress", *overrides]) == 0
    run = tmp_path / "runs" / "m"
    config = load_config(run)
    # The sample has audio and vision: all six crossmodal transformers were trained.
    assert config.model.model_type == "mult" and config.model.mult_width == 8
    assert config.model.audio_dim is not None and config.model.vision_dim is not None
    metrics = read_json(run / "seed-0" / "metrics.json")
    assert metrics["epochs_run"] == 1
    mae = read_json(run / "summary.json")["test"]["mean"]["mae"]
    assert 0 <= mae < float("inf")
