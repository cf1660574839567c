"""MISA: its losses (difference, CMD, reconstruction), absent modalities, one CLI training run."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from model_fixtures import make_batch, make_tiny_bert
from training_fixtures import fast_overrides, read_json, tiny_encoder

from psamf.cli import main
from psamf.errors import InputError
from psamf.models import PSAMFConfig, build_model
from psamf.models.misa import cmd, soft_orthogonality

SMALL = {"misa_hidden": 16, "misa_heads": 2, "av_hidden": 8, "head_hidden": 8,
         "max_text_length": 24}


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> str:
    return make_tiny_bert(tmp_path_factory.mktemp("bert"), layers=2)


def _model(bert: str, **fields):
    torch.manual_seed(0)
    return build_model(PSAMFConfig(model_type="misa", text_encoder=bert, **{**SMALL, **fields}))


def _rows(batch: int, rows: slice, seed: int, width: int = 8) -> torch.Tensor:
    """(batch, width) random vectors, zero outside ``rows`` of the batch. ||A^T B||_F^2 sums
    (column_i(A) . column_j(B))^2 over features i, j, columns being batch profiles: matrices
    non-zero on disjoint rows are orthogonal in this sense, also after per-row normalisation."""
    out = torch.zeros(batch, width)
    out[rows] = torch.randn(batch, width, generator=torch.Generator().manual_seed(seed))[rows]
    return out


@pytest.mark.parametrize("normalize", [True, False])
def test_difference_loss_is_zero_for_orthogonal_subspaces_and_grows_when_aligned(
        bert, normalize):
    invariant = _rows(6, slice(0, 3), seed=1)
    specific = _rows(6, slice(3, 6), seed=2)
    aligned = soft_orthogonality(invariant, invariant, normalize=normalize, reduction="sum")
    assert soft_orthogonality(invariant, specific, normalize=normalize) < 1e-10
    assert aligned > 0.5
    # The default reduction averages the D x D squared entries (the authors' code).
    width = invariant.shape[1]
    assert soft_orthogonality(invariant, invariant, normalize=normalize) == pytest.approx(
        aligned / width**2)
    overlapping = _rows(6, slice(2, 5), seed=5)  # shares row 2 with `invariant`
    assert 1e-3 < soft_orthogonality(invariant, overlapping, normalize=normalize,
                                     reduction="sum") < aligned
    # The model's loss: invariant vs specific per modality, and specific vs specific per pair.
    model = _model(bert, audio_dim=5, misa_hidden=8, misa_diff_normalize=normalize,
                   misa_diff_reduction="sum")
    other = _rows(6, slice(2, 5), seed=3)  # overlaps `specific` on rows 3, 4
    orthogonal = model.difference_loss({"text": invariant}, {"text": specific})
    assert orthogonal < 1e-10
    assert model.difference_loss({"text": invariant, "audio": invariant},
                                 {"text": specific, "audio": invariant}) > 0.5  # aligned
    assert model.difference_loss({"text": invariant, "audio": _rows(6, slice(5, 6), seed=4)},
                                 {"text": specific, "audio": other}) > 1e-3  # pair term


def test_difference_loss_without_normalisation_is_zero_for_any_orthogonal_column_spaces():
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(0)))
    invariant = q[:, :3] @ torch.randn(3, 5)  # (8, 5), columns in span(q_0..q_2)
    specific = q[:, 3:] @ torch.randn(5, 5)  # (8, 5), columns in the orthogonal complement
    assert soft_orthogonality(invariant, specific, normalize=False) < 1e-8
    assert soft_orthogonality(invariant, invariant + specific, normalize=False) > 1e-2


def test_cmd_is_zero_for_identical_distributions_and_positive_for_shifted_ones():
    x = torch.rand(64, 8, generator=torch.Generator().manual_seed(0))
    assert cmd(x, x.clone()) == pytest.approx(0.0, abs=1e-7)
    assert cmd(x, x[torch.randperm(64)]) == pytest.approx(0.0, abs=1e-6)  # order-free
    assert cmd(x, x + 0.2) == pytest.approx(0.2 * 8 ** 0.5, rel=1e-4)  # the mean term only
    # Same mean, different spread: only the higher moments see it, and K=1 does not.
    spread = x.mean(0) + 0.5 * (x - x.mean(0))
    assert cmd(x, spread, moments=1) == pytest.approx(0.0, abs=1e-6)
    assert cmd(x, spread, moments=5) > 1e-2


def test_reconstruction_loss_falls_on_a_fixed_batch(bert):
    model = _model(bert, audio_dim=5, vision_dim=7)
    batch = make_batch(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    recon = []
    for _ in range(8):
        optimizer.zero_grad()
        out = model(**batch)
        recon.append(out.losses["recon"].item())
        out.losses["recon"].backward()
        optimizer.step()
    assert recon[-1] < 0.5 * recon[0], recon


def test_all_modalities_weigh_the_named_terms(bert):
    model = _model(bert, audio_dim=5, vision_dim=7, misa_alpha=0.5, misa_beta=0.2,
                   misa_gamma=2.0)
    out = model(**make_batch(model))
    assert set(out.losses) == {"task", "sim", "diff", "recon"}
    assert out.losses["sim"] > 0  # three invariant vectors differ at initialisation
    weighted = (out.losses["task"] + 0.5 * out.losses["sim"] + 0.2 * out.losses["diff"]
                + 2.0 * out.losses["recon"])
    assert out.loss.item() == pytest.approx(weighted.item(), rel=1e-6)
    assert model.head[0].in_features == 6 * 16  # 2M vectors of d_h


def test_audio_only_and_text_only(bert):
    audio = _model(bert, audio_dim=5)
    assert audio.modalities == ("text", "audio") and audio.head[0].in_features == 4 * 16
    batch = make_batch(audio, lengths={"audio": [3, 0, 2, 1]})  # one utterance without audio
    out = audio(**batch)
    assert torch.isfinite(out.prediction).all() and out.losses["sim"] > 0
    del batch["audio"]
    with pytest.raises(InputError, match="audio_dim=5 but the batch has no audio"):
        audio(**batch)

    text = _model(bert, misa_task_loss="l1")
    assert text.modalities == ("text",) and text.head[0].in_features == 2 * 16
    batch = make_batch(text)
    out = text(**batch)
    assert out.losses["sim"] == 0  # no pair of modalities
    assert out.losses["task"].item() == pytest.approx(
        F.l1_loss(out.prediction, batch["labels"]).item(), rel=1e-6)
    out.loss.backward()


@pytest.mark.parametrize(("fields", "message"), [
    ({"misa_hidden": 15}, "misa_hidden \\(15\\) must be divisible by misa_heads"),
    ({"misa_task_loss": "huber"}, "misa_task_loss must be one of"),
    ({"misa_beta": -1.0}, "misa_beta must be a number >= 0"),
    ({"misa_cmd_moments": 0}, "misa_cmd_moments must be a positive int"),
    ({"misa_diff_normalize": "yes"}, "misa_diff_normalize must be true or false"),
])
def test_bad_misa_options_name_the_field(fields, message):
    with pytest.raises(InputError, match=message):
        PSAMFConfig(model_type="misa", **fields)


def test_one_tiny_training_run_through_the_cli(tmp_path):
    overrides = fast_overrides(tiny_encoder(tmp_path / "tiny"), tmp_path / "cache", epochs=1,
                               **{"model.model_type": "misa", "model.misa_hidden": 16,
                                  "data.limit_train": 8})
    assert main(["train", "--data", "sample", "--out", str(tmp_path / "runs"), "--name", "misa",
                 *overrides]) == 0
    metrics = read_json(tmp_path / "runs" / "misa" / "seed-0" / "metrics.json")
    train = metrics["history"][0]["train"]
    assert {"task", "sim", "diff", "recon"} <= set(train)
    assert all(v == v for v in metrics["test"].values())  # no NaN metric
