"""The model registry: a smoke test over every registered model, and one registry read by all.

The smoke test is parametrised over ``list_models()``, so a newly registered model is tested by
it without editing this file: it is built from a tiny config with the inputs its registry entry
declares, and one forward + backward must give finite outputs and a gradient for every trainable
parameter (a parameter without one is dead weight, and breaks DistributedDataParallel).
"""

from __future__ import annotations

import pytest
import torch
from model_fixtures import make_batch, make_tiny_bert
from torch import nn

from psamf.cli import main
from psamf.errors import InputError
from psamf.models import (
    PSAMFConfig,
    PSAMFOutput,
    build_model,
    is_model,
    list_models,
    model_entry,
    register_model,
    registry,
)
from psamf.training import apply_overrides, get_preset

# Widths small enough for a fast CPU step; every registered model reads its settings from these.
TINY_MODEL = {"av_hidden": 16, "contrastive_dim": 16, "fusion_hidden": 32, "head_hidden": 16,
              "max_text_length": 24}
WIDTHS = {"audio": 5, "vision": 7}


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> str:
    return make_tiny_bert(tmp_path_factory.mktemp("bert"), layers=3)


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made in a test are dropped afterwards (the registry dict is restored)."""
    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))


def _declared_batch(model: nn.Module, name: str) -> dict:
    """A batch as the trainer collates it: every contract key, None for inputs not declared."""
    entry = model_entry(name)
    batch = make_batch(model)
    if not entry.personality:
        batch["personality"] = None
    for modality in ("audio", "vision"):
        batch.setdefault(modality, None)
        batch.setdefault(f"{modality}_lengths", None)
    return batch


def test_the_built_in_models_are_registered():
    assert {"psamf", "text_finetune"} <= set(list_models())
    assert list_models() == sorted(list_models())
    assert model_entry("psamf").personality and model_entry("psamf").modalities == (
        "audio", "vision")
    assert not model_entry("text_finetune").personality
    assert model_entry("text_finetune").modalities == ()


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_trains_one_step(bert, name):
    entry = model_entry(name)
    torch.manual_seed(0)
    config = PSAMFConfig(model_type=name, text_encoder=bert, **TINY_MODEL,
                         **{f"{m}_dim": WIDTHS[m] for m in entry.modalities})
    model = build_model(config)
    assert model.config == config and config.modality_widths() == {
        m: WIDTHS[m] for m in entry.modalities}
    batch = _declared_batch(model, name)
    out = model(**batch)
    assert isinstance(out, PSAMFOutput)
    assert out.prediction.shape == (4,) and torch.isfinite(out.prediction).all()
    assert out.loss.shape == () and torch.isfinite(out.loss)
    assert "task" in out.losses and all(torch.isfinite(v) for v in out.losses.values())
    out.loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    assert [n for n, p in trainable if p.grad is None] == []
    assert [n for n, p in trainable if not torch.isfinite(p.grad).all()] == []
    # Without labels: a prediction and no loss (what predict / evaluate call).
    model.eval()
    batch["labels"] = None
    with torch.no_grad():
        out = model(**batch)
    assert out.prediction.shape == (4,) and out.loss is None


def test_a_name_is_registered_once(scratch_registry):
    with pytest.raises(InputError, match="'psamf' is registered twice"):
        register_model("psamf", personality=False, modalities=())(nn.Linear)
    with pytest.raises(InputError, match="unknown modalities"):
        register_model("x", personality=False, modalities=("smell",))


def test_an_unknown_name_is_one_line_listing_the_registry(tmp_path, capsys):
    assert not is_model("bert") and not is_model(["psamf"])
    for attempt in (lambda: PSAMFConfig(model_type="bert"),
                    lambda: build_model({"model_type": "bert"}),
                    lambda: model_entry("bert")):
        with pytest.raises(InputError) as err:
            attempt()
        assert str(err.value) == f"model_type must be one of {list_models()}, got 'bert'"
    assert main(["train", "--out", str(tmp_path), "model.model_type=bert"]) == 2
    assert capsys.readouterr().err == (
        "psamf train: error: bad override (model.model_type='bert'): "
        f"model_type must be one of {list_models()}, got 'bert'\n")
    assert not any(tmp_path.iterdir())


def test_config_validation_and_the_cli_read_the_same_registry(scratch_registry, capsys):
    @register_model("throwaway", personality=False, modalities=("vision",))
    def throwaway(config: PSAMFConfig) -> nn.Module:
        return nn.Linear(1, 1)

    assert is_model("throwaway") and "throwaway" in list_models()
    config = apply_overrides(get_preset("cpu"), ["model.model_type=throwaway",
                                                 "model.audio_dim=5", "model.vision_dim=7"])
    assert config.model.model_type == "throwaway"
    assert isinstance(build_model(config.model), nn.Linear)
    # What the registry entry declares decides what the data preparation gives the model.
    assert not config.uses_personality()
    assert config.model.modality_widths() == {"vision": 7}
    filled = config.model.with_data_widths({"audio": 3, "vision": 7})
    assert filled.modality_widths() == {"vision": 7} and filled.audio_dim == 5  # unread, kept
    with pytest.raises(ValueError, match="model.vision_dim is 7 but the data's vision"):
        config.model.with_data_widths({"audio": 3, "vision": 4})
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    # The help lists the registry as it is now (other baselines register beside these).
    assert f"model.model_type is one of: {', '.join(list_models())}." in " ".join(
        capsys.readouterr().out.split())
    # Once unregistered, validation refuses the name again.
    del registry._ENTRIES["throwaway"]
    with pytest.raises(ValueError, match="model_type must be one of"):
        apply_overrides(get_preset("cpu"), ["model.model_type=throwaway"])
