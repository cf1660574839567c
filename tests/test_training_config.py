"""TrainConfig, key=value overrides, presets, reports and checkpoints (fast, no training)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from psamf import __version__
from psamf.checkpointing import (
    has_training_checkpoint,
    load_tensors,
    load_training_checkpoint,
    save_training_checkpoint,
)
from psamf.cli import build_parser
from psamf.errors import InputError, NotFoundError
from psamf.models.config import MODEL_CONFIG_FORMAT, PSAMFConfig
from psamf.training.config import (
    CONFIG_FORMAT,
    TrainConfig,
    apply_overrides,
    parse_overrides,
    valid_keys,
)
from psamf.training.presets import PRESETS, get_preset
from psamf.training.reports import csv_table, markdown_table, mean_std, summarize


def test_overrides_are_typed_from_the_dataclass_fields():
    parsed = parse_overrides([
        "epochs=3", "model.use_prefusion=false", "model.align_layer=4", "optim.lr_encoder=3e-5",
        "seeds=1,2,3", "model.personality_dim=none", "data.limit_train=64", "device=cpu",
    ])
    assert parsed == {
        "epochs": 3, "model.use_prefusion": False, "model.align_layer": 4,
        "optim.encoder_lr": 3e-5, "seeds": (1, 2, 3), "model.personality_dim": None,
        "data.limit_train": 64, "housekeeping.device": "cpu",  # old names arrive under new ones
    }
    config = apply_overrides(get_preset("cpu"), parsed)
    assert config.epochs == 3 and config.model.use_prefusion is False
    assert config.model.align_layer == 4 and config.optim.encoder_lr == 3e-5
    assert config.housekeeping.device == "cpu"
    assert config.seeds == (1, 2, 3) and config.data.limit_train == 64


@pytest.mark.parametrize("item", ["epoch=3", "optim.lr_encodr=1e-5", "model.nope=1", "data=x",
                                  "epochs.x=1", "noequals"])
def test_unknown_keys_are_refused_with_the_valid_ones(item):
    with pytest.raises(ValueError) as err:
        parse_overrides([item])
    message = str(err.value)
    for fragment in ("valid keys", "optim.encoder_lr", "model.align_layer"):
        assert fragment in message


@pytest.mark.parametrize(("item", "fragment"), [
    ("epochs=two", "epochs"), ("model.use_prefusion=maybe", "model.use_prefusion"),
    ("optim.encoder_lr=fast", "optim.encoder_lr"), ("optim.lr_encoder=nan", "optim.encoder_lr"),
])
def test_bad_values_are_refused_naming_the_key(item, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_overrides([item])


@pytest.mark.parametrize("item", ["epochs=0", "optim.plateau_factor=1.5", "model.dropout=2",
                                  "seeds=1,1", "model.model_type=bert", "device=tpu"])
def test_out_of_range_values_are_refused_by_validation(item):
    with pytest.raises(ValueError, match="bad override"):
        apply_overrides(get_preset("cpu"), [item])


def test_every_preset_validates_round_trips_and_is_a_cli_choice(tmp_path):
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    help_text = next(a.help for a in train._actions if a.dest == "preset")
    for name in PRESETS:
        assert name in help_text
        config = get_preset(name)
        config.save(tmp_path / f"{name}.yaml")
        assert TrainConfig.load(tmp_path / f"{name}.yaml") == config
        # a saved config is a preset file (the layout psamf tune exports)
        assert get_preset(str(tmp_path / f"{name}.yaml")) == config
    with pytest.raises(InputError, match="unknown preset 'nope'.*preset file"):
        get_preset("nope")
    with pytest.raises(NotFoundError, match="missing.yaml: no such config file"):
        get_preset(str(tmp_path / "missing.yaml"))
    assert set(valid_keys()) >= {"epochs", "optim.encoder_lr", "model.use_prefusion", "data.name",
                                 "housekeeping.device"}


# ../shared/docs/PSA-MF.md, "Training (authors' settings)", per dataset; plateau patience 20 and
# no early stopping come from the authors' code (the spec is silent on both; presets.py says where).
AUTHORS_SPEC = {
    "mosi_authors": {"data.name": "mosi", "optim.encoder_lr": 5e-5, "optim.other_lr": 5e-4,
                     "batch_size": 256},
    "mosei_authors": {"data.name": "mosei", "optim.encoder_lr": 1e-5, "optim.other_lr": 1e-4,
                      "batch_size": 128},
}
AUTHORS_COMMON = {"optim.weight_decay": 1e-4, "optim.grad_clip": 1.0,
                  "optim.plateau_factor": 0.5, "optim.plateau_patience": 20, "epochs": 100,
                  "early_stopping_patience": 0, "model.max_text_length": 50}


@pytest.mark.parametrize("name", sorted(AUTHORS_SPEC))
def test_authors_presets_match_the_authors_settings(name):
    config = get_preset(name).to_dict()
    for key, expected in {**AUTHORS_SPEC[name], **AUTHORS_COMMON}.items():
        head, _, tail = key.partition(".")
        value = config[head][tail] if tail else config[head]
        assert value == expected, f"{name}: {key} is {value}, the authors' setting is {expected}"


def test_other_presets():
    assert get_preset("text_finetune").model.model_type == "text_finetune"
    assert get_preset("cpu").data.name == "sample"
    clips = get_preset("clips")  # the deployable transcript (+P) model
    assert clips.data.name == "mosi+mosei" and clips.model.text_only
    assert clips.model.model_type == "psamf" and clips.uses_personality()
    assert clips.model.modality_widths() == {}


def test_loading_a_config_with_an_unknown_key_names_it(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("epochs: 2\nlearning_rate: 3\n")
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig.load(path)


def test_summary_tables_mean_and_std():
    runs = [{"seed": s, "best_epoch": 1, "test": {"mae": m, "corr": 0.5}, "valid": {"mae": m}}
            for s, m in ((1, 0.7), (2, 0.8), (3, 0.9))]
    summary = summarize(runs, "test")
    assert summary["mean"]["mae"] == pytest.approx(0.8)
    assert summary["std"]["mae"] == pytest.approx(0.1)
    assert mean_std([2.0]) == (2.0, 0.0)
    assert "0.8000 ± 0.1000" in markdown_table(summary)
    assert csv_table(summary).splitlines()[0] == "seed,mae,corr"


def test_training_checkpoint_restores_optimizer_scheduler_and_rng(tmp_path):
    def build():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.5),
                                    torch.nn.Linear(8, 1))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)
        return model, opt, sched

    def step(model, opt):
        x = torch.randn(16, 4)
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    model, opt, sched = build()
    for _ in range(3):
        step(model, opt)
    sched.step(1.0)
    sched.step(2.0)  # one bad epoch: lr halves
    save_training_checkpoint(tmp_path / "ck", model=model, optimizer=opt, scheduler=sched,
                             loop_state={"epoch": 2, "best": math.inf})
    expected = [step(model, opt) for _ in range(3)]

    model2, opt2, sched2 = build()
    loop = load_training_checkpoint(tmp_path / "ck", model=model2, optimizer=opt2,
                                    scheduler=sched2)
    assert loop == {"epoch": 2, "best": math.inf}
    assert opt2.param_groups[0]["lr"] == pytest.approx(5e-3)
    assert sched2.state_dict() == sched.state_dict()
    assert [step(model2, opt2) for _ in range(3)] == expected
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(a, b)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == [
        "model.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json"]


def test_training_checkpoint_keeps_extra_tensor_files_across_saves(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
    best = {k: v.clone() for k, v in model.state_dict().items()}
    folder = tmp_path / "ck"
    save_training_checkpoint(folder, model=model, optimizer=opt, scheduler=sched,
                             loop_state={"epoch": 1}, extra_tensors={"best.safetensors": best})
    with torch.no_grad():
        model.weight.add_(1.0)
    # None = unchanged since the last save: the earlier best must survive the folder's replacement.
    save_training_checkpoint(folder, model=model, optimizer=opt, scheduler=sched,
                             loop_state={"epoch": 2}, extra_tensors={"best.safetensors": None})
    kept = load_tensors(folder / "best.safetensors")
    assert torch.equal(kept["weight"], best["weight"])
    assert not torch.equal(kept["weight"], model.weight)
    assert has_training_checkpoint(folder) and not has_training_checkpoint(tmp_path / "none")


def test_auto_personality_encoder_says_where_it_looked(tmp_path, monkeypatch, caplog):
    from psamf.training.prepare import resolve_personality_encoder

    monkeypatch.chdir(tmp_path)
    with caplog.at_level("WARNING"):
        assert resolve_personality_encoder("auto") == "minilm"
    assert str(tmp_path) in caplog.text and "untuned" in caplog.text
    (tmp_path / "artifacts" / "personality-minilm").mkdir(parents=True)
    (tmp_path / "artifacts" / "personality-minilm" / "config.json").write_text("{}")
    assert resolve_personality_encoder("auto") == "artifacts/personality-minilm"
    assert resolve_personality_encoder("some/folder") == "some/folder"


def test_personality_pooling_is_validated_and_named_in_the_error():
    with pytest.raises(ValueError, match="personality_pooling must be one of"):
        apply_overrides(get_preset("cpu"), ["personality_pooling=max"])
    assert apply_overrides(get_preset("cpu"), ["personality_pooling=mean"]).personality_pooling \
        == "mean"


def test_personality_pooling_decides_how_p_is_pooled(tmp_path):
    """auto = the folder's trait head, else the first token; first / mean override it. The pooling
    is part of P's identity (its cache key and what result files record)."""
    import json

    from training_fixtures import fast_overrides, tiny_encoder

    from psamf.training.prepare import prepare

    encoder = tiny_encoder(tmp_path / "enc")
    base = apply_overrides(get_preset("cpu"), fast_overrides(encoder, tmp_path / "cache"))
    pooled = {}
    for pooling in ("auto", "first", "mean"):
        prepared = prepare(apply_overrides(base, [f"personality_pooling={pooling}"]))
        pooled[pooling] = (prepared.personality["identity"], prepared.splits["train"].personality)
    assert pooled["auto"][0].split(":")[1] == "cls"  # no trait_head.json: the first token
    assert pooled["auto"][0] == pooled["first"][0]
    assert torch.equal(pooled["auto"][1], pooled["first"][1])
    assert pooled["mean"][0].split(":")[1] == "mean"
    assert not torch.allclose(pooled["mean"][1], pooled["first"][1])
    # A trait head trained on mean pooling makes auto read the mean.
    (Path(encoder) / "trait_head.json").write_text(json.dumps({"pooling": "mean"}))
    prepared = prepare(apply_overrides(base, ["personality_pooling=auto"]))
    assert prepared.personality["identity"] == pooled["mean"][0]


# --- config format and migration ---------------------------------------------------------------

FORMAT1 = Path(__file__).parent / "data" / "config_format1.yaml"  # written by psamf before format 2


def test_a_config_yaml_in_the_old_flat_layout_loads_with_its_values_moved():
    assert "format" not in FORMAT1.read_text()  # the layout every run folder had before format 2
    config = TrainConfig.load(FORMAT1)
    assert config.housekeeping.device == "cpu" and config.housekeeping.progress is False
    assert config.housekeeping.checkpoint_every_steps == 7
    assert config.optim.encoder_lr == 3e-5 and config.optim.other_lr == 5e-4
    assert config.model.personality_dim == 384 and config.model.audio_dim == 5
    # Saved again, it is stamped and round-trips in the new layout.
    saved = yaml.safe_load(config.to_yaml())
    assert saved["format"] == CONFIG_FORMAT and saved["psamf_version"] == __version__
    assert "device" not in saved and saved["housekeeping"]["device"] == "cpu"
    assert TrainConfig.from_dict(saved) == config


def test_a_config_from_a_newer_psamf_is_refused_naming_the_format(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"format: {CONFIG_FORMAT + 1}\npsamf_version: 9.9.9\nepochs: 2\n")
    with pytest.raises(ValueError, match=r"psamf 9\.9\.9.*upgrade psamf"):
        TrainConfig.load(path)


def test_old_flat_keys_in_a_new_layout_are_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"format: {CONFIG_FORMAT}\ndevice: cpu\n")
    with pytest.raises(ValueError, match="device"):
        TrainConfig.load(path)


def test_model_config_json_is_stamped_and_older_unstamped_json_loads():
    config = PSAMFConfig(audio_dim=5)
    stamped = json.loads(config.to_json())
    assert stamped["format"] == MODEL_CONFIG_FORMAT and stamped["psamf_version"] == __version__
    assert PSAMFConfig.from_json(config.to_json()) == config
    unstamped = {k: v for k, v in stamped.items() if k not in ("format", "psamf_version")}
    assert PSAMFConfig.from_dict(unstamped) == config
    with pytest.raises(ValueError, match="model config format 7"):
        PSAMFConfig.from_dict({**stamped, "format": 7})


def test_presets_are_built_without_a_dict_round_trip():
    base, text = get_preset("cpu"), get_preset("text_finetune")
    assert text.model == base.model.replace(model_type="text_finetune")
    assert get_preset("mosei_authors").housekeeping.checkpoint_every_steps == 100


def test_a_width_the_user_set_is_kept_or_refused_never_overwritten():
    model = PSAMFConfig(personality_dim=384, audio_dim=5)
    assert model.with_personality_dim(384).personality_dim == 384
    assert PSAMFConfig().with_personality_dim(32).personality_dim == 32
    with pytest.raises(ValueError, match="model.personality_dim is 384 but P .* width 32"):
        model.with_personality_dim(32)
    assert model.with_data_widths({"audio": 5, "vision": 9}).vision_dim == 9
    with pytest.raises(ValueError, match="model.audio_dim is 5 but the data's audio features "
                                         "have width 74"):
        model.with_data_widths({"audio": 74})
    with pytest.raises(ValueError, match="audio features are absent"):
        model.with_data_widths({})
