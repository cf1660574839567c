"""MMIM: its CPC and BA terms, absent modalities, option checks, one CLI training run."""

from __future__ import annotations

import math

import pytest
import torch
from model_fixtures import make_batch, make_tiny_bert
from training_fixtures import fast_overrides, read_json, tiny_encoder

from psamf.cli import main
from psamf.errors import InputError
from psamf.models import PSAMFConfig, build_model
from psamf.models.mmim import CPC, GaussianBA

SMALL = {"mmim_hidden": 16, "av_hidden": 8, "head_hidden": 8, "max_text_length": 24}


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> str:
    return make_tiny_bert(tmp_path_factory.mktemp("bert"), layers=2)


def _model(bert: str, **fields):
    torch.manual_seed(0)
    return build_model(PSAMFConfig(model_type="mmim", text_encoder=bert, **{**SMALL, **fields}))


def _fit(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 50) -> float:
    """Maximise module(x, y) over the module's own parameters only; return the final value."""
    optimizer = torch.optim.Adam(module.parameters(), lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        (-module(x, y)).backward()
        optimizer.step()
    with torch.no_grad():
        return module(x, y).item()


def test_cpc_is_higher_for_an_invertible_map_than_for_independent_noise():
    gen = torch.Generator().manual_seed(0)
    unimodal = torch.randn(64, 8, generator=gen)
    mixing = torch.randn(8, 8, generator=gen) + 3 * torch.eye(8)  # invertible
    assert torch.linalg.matrix_rank(mixing) == 8
    linked = unimodal @ mixing  # (64, 8): an invertible linear map of the unimodal vectors
    noise = torch.randn(64, 8, generator=gen)  # independent of them
    torch.manual_seed(0)
    score_linked = _fit(CPC(8, 8), linked, unimodal)
    torch.manual_seed(0)
    score_noise = _fit(CPC(8, 8), noise, unimodal)
    assert score_linked <= 0 and score_noise <= 0  # a mean log-probability
    # cosine scores lie in [-1, 1] (no temperature, as in the paper), so the gap is modest
    assert score_linked > score_noise + 0.25


def test_gaussian_ba_bound_is_higher_for_dependent_modalities():
    # the exact-density form; the authors' form has no -logvar/2 term, so its predictor can
    # drive log q towards 0 by raising the variance and it barely separates the two cases
    gen = torch.Generator().manual_seed(1)
    text = torch.randn(128, 6, generator=gen)
    audio = text[:, :4] + 0.1 * torch.randn(128, 4, generator=gen)
    torch.manual_seed(0)
    dependent = _fit(GaussianBA(6, 4, 16, "gaussian"), text, audio, steps=150)
    torch.manual_seed(0)
    independent = _fit(GaussianBA(6, 4, 16, "gaussian"), text,
                       torch.randn(128, 4, generator=gen), steps=150)
    assert dependent > independent + 2.0


def _fit_encoder_and_ba(form: str, steps: int = 60) -> list[float]:
    """Maximise the BA estimate jointly over an encoder y = enc(x) and the predictor (as the
    joint MMIM loss does); return the estimate at every step."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, generator=gen)
    torch.manual_seed(0)
    encoder, ba = torch.nn.Linear(6, 8), GaussianBA(6, 8, 16, form)
    optimizer = torch.optim.Adam([*encoder.parameters(), *ba.parameters()], lr=0.05)
    values = []
    for _ in range(steps):
        optimizer.zero_grad()
        value = ba(x, encoder(x))  # y is a deterministic function of x: perfectly predictable
        (-value).backward()
        optimizer.step()
        values.append(value.item())
    return values


def test_authors_ba_form_stays_bounded_where_the_gaussian_form_climbs():
    gaussian = _fit_encoder_and_ba("gaussian")
    authors = _fit_encoder_and_ba("authors")
    # the exact Gaussian log-density gains up to 5 nats per dimension as the predicted variance
    # shrinks to the clamp, and H(Y) grows with the encoder's scale
    assert gaussian[-1] > gaussian[0] + 10.0 and gaussian[-1] > 8.0
    # the authors' log q is <= 0 and H(tanh(P y)) <= (8 // 4) * log(1 + 1e-4) / 2
    bound = 2 * math.log(1 + 1e-4) / 2
    assert max(authors) <= bound
    assert authors[-1] > authors[0]  # it is still maximised, towards its ceiling


def test_all_modalities_weigh_the_named_terms(bert):
    model = _model(bert, audio_dim=5, vision_dim=7, mmim_alpha=0.3, mmim_beta=0.7)
    out = model(**make_batch(model))
    assert set(out.losses) == {"task", "mi_input", "cpc"}
    assert out.losses["cpc"] < 0  # three log-probabilities of a 4-utterance batch
    weighted = out.losses["task"] - 0.3 * out.losses["mi_input"] - 0.7 * out.losses["cpc"]
    assert out.loss.item() == pytest.approx(weighted.item(), rel=1e-6)
    assert set(model.input_mi) == {"audio", "vision"}
    assert set(model.cpc) == {"text", "audio", "vision"}
    ba = model.input_mi["audio"]
    assert ba.form == "authors"  # the default; its entropy projection is trained by no loss
    assert not any(p.requires_grad for p in ba.entropy_proj.parameters())
    assert out.losses["mi_input"] <= 2 * (8 // 4) * math.log(1 + 1e-4) / 2  # two modalities


def test_audio_only_and_text_only(bert):
    audio = _model(bert, audio_dim=5)
    assert audio.modalities == ("text", "audio") and set(audio.input_mi) == {"audio"}
    batch = make_batch(audio, lengths={"audio": [3, 0, 2, 1]})  # one utterance without audio
    out = audio(**batch)
    assert torch.isfinite(out.prediction).all() and out.losses["mi_input"] != 0
    out.loss.backward()
    del batch["audio"]
    with pytest.raises(InputError, match="audio_dim=5 but the batch has no audio"):
        audio(**batch)

    text = _model(bert, mmim_text_pooling="mean", mmim_task_loss="mse")
    assert text.modalities == ("text",) and len(text.input_mi) == 0
    out = text(**make_batch(text))
    assert out.losses["mi_input"] == 0 and out.losses["cpc"] < 0  # only the text CPC remains
    out.loss.backward()


@pytest.mark.parametrize(("fields", "message"), [
    ({"mmim_hidden": 0}, "mmim_hidden must be a positive int"),
    ({"mmim_alpha": -1.0}, "mmim_alpha must be a number >= 0"),
    ({"mmim_text_pooling": "max"}, "mmim_text_pooling must be one of"),
    ({"mmim_task_loss": "huber"}, "mmim_task_loss must be one of"),
    ({"mmim_ba_form": "exact"}, "mmim_ba_form must be one of"),
])
def test_bad_mmim_options_name_the_field(fields, message):
    with pytest.raises(InputError, match=message):
        PSAMFConfig(model_type="mmim", **fields)


def test_one_tiny_training_run_through_the_cli(tmp_path):
    overrides = fast_overrides(tiny_encoder(tmp_path / "tiny"), tmp_path / "cache", epochs=1,
                               **{"model.model_type": "mmim", "model.mmim_hidden": 16,
                                  "data.limit_train": 8})
    assert main(["train", "--data", "sample", "--out", str(tmp_path / "runs"), "--name", "mmim",
                 *overrides]) == 0
    metrics = read_json(tmp_path / "runs" / "mmim" / "seed-0" / "metrics.json")
    train = metrics["history"][0]["train"]
    assert {"task", "mi_input", "cpc"} <= set(train)
    assert all(v == v for v in metrics["test"].values())  # no NaN metric
