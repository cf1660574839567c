"""Self-MM: generated unimodal labels follow the class centres; heads per present modality;
the centres travel with the checkpoint; one tiny CLI training run."""

from __future__ import annotations

import pytest
import torch
from model_fixtures import make_batch, make_tiny_bert
from training_fixtures import fast_overrides, tiny_encoder

from psamf.cli import main
from psamf.errors import InputError
from psamf.models import PSAMFConfig, build_model
from psamf.training import load_trained_model

WIDTH = 8  # selfmm_hidden in these tests


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> str:
    return make_tiny_bert(tmp_path_factory.mktemp("bert"), layers=2)


def _model(bert: str, **fields) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(PSAMFConfig(model_type="self_mm", text_encoder=bert, av_hidden=16,
                                   selfmm_hidden=WIDTH, max_text_length=24, **fields))


def _at(x: float) -> torch.Tensor:
    """A representation at x on the first axis (the centres sit at +2 and -2 there)."""
    rep = torch.zeros(WIDTH)
    rep[0] = x
    return rep


def _fit_centres(model) -> None:
    """One training-mode label-generation step on a batch: positives at +2, negatives at -2."""
    reps = torch.stack([_at(2.0), _at(-2.0)])  # (2, WIDTH)
    model.train()
    model._unimodal_labels(torch.tensor([1.0, -1.0]), {"multimodal": reps, "text": reps})


@pytest.mark.parametrize("y_m, x_m", [(1.0, 0.5), (-1.0, -0.5), (0.5, -0.5)])
def test_the_generated_label_moves_toward_the_centre_the_unimodal_feature_is_nearer(
        bert, y_m, x_m):
    model = _model(bert)
    _fit_centres(model)
    assert model.centres["text"].ready and model.centres["multimodal"].ready
    model.eval()  # read the centres without moving them
    y = torch.tensor([y_m, y_m])
    multimodal = torch.stack([_at(x_m), _at(x_m)])
    # Row 0: the text feature is nearer the positive centre than the multimodal one is;
    # row 1: nearer the negative centre.
    text = torch.stack([_at(x_m + 1.0), _at(x_m - 1.0)])
    labels = model._unimodal_labels(y, {"multimodal": multimodal, "text": text})["text"]
    assert labels[0] > y_m > labels[1]
    # Where the unimodal feature sits exactly as the multimodal one, the label is y_m.
    same = model._unimodal_labels(y, {"multimodal": multimodal, "text": multimodal})["text"]
    torch.testing.assert_close(same, y)


def test_before_the_centres_exist_the_unimodal_label_is_the_multimodal_one(bert):
    model = _model(bert).train()
    y = torch.tensor([0.7, 1.5])  # all positive: the negative centre is never set
    reps = torch.stack([_at(1.0), _at(3.0)])
    for _ in range(2):
        labels = model._unimodal_labels(y, {"multimodal": reps, "text": reps})["text"]
        torch.testing.assert_close(labels, y)
    assert not model.centres["text"].ready


def test_unimodal_losses_are_reported_and_weighted_into_the_loss(bert):
    model = _model(bert, audio_dim=5, selfmm_label_clip=None)
    assert model.unimodal == ("text", "audio")
    batch = make_batch(model)
    first = model(**batch)
    assert set(first.losses) == {"task", "text", "audio"}
    # First batch: no centres yet, y_s = y_m, weight tanh(0) = 0.
    assert first.losses["text"] == 0 and first.losses["audio"] == 0
    for _ in range(3):
        out = model(**batch)
    assert out.losses["text"] > 0 and out.losses["audio"] > 0
    torch.testing.assert_close(
        out.loss, out.losses["task"] + out.losses["text"] + out.losses["audio"])
    half = _model(bert, audio_dim=5, selfmm_label_clip=None, selfmm_unimodal_weight=0.5)
    half.load_state_dict(model.state_dict())
    half.train()
    torch.manual_seed(1)
    ref = model(**batch)
    torch.manual_seed(1)
    out = half(**batch)
    torch.testing.assert_close(
        out.loss, ref.losses["task"] + 0.5 * (ref.losses["text"] + ref.losses["audio"]))


@pytest.mark.parametrize("fields, heads", [
    ({}, ("text",)),
    ({"audio_dim": 5}, ("text", "audio")),
    ({"vision_dim": 7}, ("text", "vision")),
    ({"audio_dim": 5, "vision_dim": 7, "text_only": True}, ("text",)),
])
def test_one_head_per_present_modality(bert, fields, heads):
    model = _model(bert, **fields)
    assert model.unimodal == heads
    assert set(model.centres) == {"multimodal", *heads}
    batch = make_batch(model)
    out = model(**batch)
    assert set(out.losses) == {"task", *heads}
    out.loss.backward()
    assert torch.isfinite(out.prediction).all()


def test_missing_frames_of_a_built_modality_are_refused(bert):
    model = _model(bert, audio_dim=5)
    batch = make_batch(model)
    batch["audio"] = None
    with pytest.raises(InputError, match="audio_dim"):
        model(**batch)


def test_the_centres_are_buffers_saved_and_restored(bert):
    model = _model(bert)
    _fit_centres(model)
    state = model.state_dict()
    assert {"centres.text.centres", "centres.multimodal.seen"} <= set(state)
    fresh = _model(bert)
    assert not fresh.centres["text"].ready
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.centres["text"].centres, model.centres["text"].centres)
    assert fresh.centres["text"].ready


@pytest.mark.parametrize("field, value, message", [
    ("selfmm_label_memory", True, "per-sample label memory"),
    ("selfmm_centre_momentum", 1.0, r"selfmm_centre_momentum must be in \[0, 1\)"),
    ("selfmm_label_clip", 0.0, "selfmm_label_clip must be > 0 or None"),
    ("selfmm_hidden", 0, "selfmm_hidden must be a positive int"),
    ("selfmm_unimodal_weight", -1.0, "selfmm_unimodal_weight must be >= 0"),
])
def test_bad_settings_are_refused(field, value, message):
    with pytest.raises(InputError, match=message):
        PSAMFConfig(model_type="self_mm", **{field: value})


def test_a_tiny_training_run_through_the_cli(tmp_path):
    encoder = tiny_encoder(tmp_path / "tiny")
    overrides = fast_overrides(encoder, tmp_path / "cache", epochs=1,
                               **{"model.model_type": "self_mm", "data.limit_train": 8,
                                  "model.selfmm_hidden": 8})
    assert main(["train", "--out", str(tmp_path / "runs"), "--name", "smm", "--no-progress",
                 *overrides]) == 0
    config, _, model = load_trained_model(tmp_path / "runs" / "smm")
    assert config.model.model_type == "self_mm"
    # The trained centres came back from the checkpoint (a fresh model's are all zero).
    assert model.centres["multimodal"].seen.sum() > 0
