"""Mixed precision and compilation (housekeeping.precision / housekeeping.compile).

torch.compile itself is not run here: one epoch of the tiny model took about six minutes to
compile on the 2-core development machine, so training with ``compile=true`` is measured in
benchmarks/precision.py (and on CUDA by benchmarks/gpu_check.sh) instead. These tests check what
compiling must not change: the module and its checkpoint keys.
"""

from __future__ import annotations

import json

import pytest
import torch
from training_fixtures import fast_overrides, tiny_encoder

from psamf.checkpointing import load_training_checkpoint, save_training_checkpoint
from psamf.cli import main
from psamf.errors import InputError
from psamf.training import Trainer, apply_overrides, get_preset, prepare
from psamf.training.precision import (
    autocast,
    check_compile,
    check_precision,
    compile_model,
    grad_scaler,
)


def _fit(tmp_path, name: str, **extra: str):
    encoder = tiny_encoder(tmp_path / "tiny")
    config = apply_overrides(get_preset("cpu"), fast_overrides(
        encoder, tmp_path / "cache", progress="false", epochs=1, **extra))
    prepared = prepare(config)
    return Trainer(prepared.config, prepared.splits, seed=0, folder=tmp_path / name).fit()


def test_bf16_trains_with_finite_losses_close_to_fp32(tmp_path):
    fp32 = _fit(tmp_path, "fp32")
    bf16 = _fit(tmp_path, "bf16", **{"housekeeping.precision": "bf16"})
    loss32, loss16 = fp32.history[0].train["loss"], bf16.history[0].train["loss"]
    assert torch.isfinite(torch.tensor(loss16))
    assert loss16 != loss32  # autocast did change the arithmetic
    # bf16 keeps ~3 significant digits; over 4 steps the mean loss moved 0.04 % when measured
    assert loss16 == pytest.approx(loss32, rel=1e-2)
    assert bf16.valid["mae"] == pytest.approx(fp32.valid["mae"], abs=0.02)
    assert bf16.test["mae"] == pytest.approx(fp32.test["mae"], abs=0.02)


def test_fp16_on_the_cpu_is_refused_in_one_line_before_anything_is_written(tmp_path, capsys):
    rc = main(["train", "--out", str(tmp_path / "runs"), "device=cpu", "precision=fp16",
               "data.limit_train=8"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and "fp16 needs a CUDA device" in err and "bf16" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_under_bf16_autocast_every_loss_term_is_fp32(tmp_path):
    from psamf.models import PSAMFConfig, build_model

    encoder = tiny_encoder(tmp_path / "tiny")
    model = build_model(PSAMFConfig(text_encoder=encoder, audio_dim=5, fusion_hidden=32,
                                    head_hidden=16, av_hidden=16, contrastive_dim=16))
    batch = {"input_ids": torch.randint(1000, 2000, (4, 10)),
             "attention_mask": torch.ones(4, 10, dtype=torch.long),
             "personality": torch.randn(4, 32), "audio": torch.randn(4, 1, 5),
             "audio_lengths": torch.ones(4, dtype=torch.long), "labels": torch.randn(4)}
    with autocast("bf16", torch.device("cpu")):
        out = model(**batch)
    assert out.prediction.dtype == torch.bfloat16  # autocast is on (predict_split casts back)
    assert {name: loss.dtype for name, loss in out.losses.items()} == dict.fromkeys(
        ("task", "ccl", "ps", "clm"), torch.float32)


def test_an_unknown_precision_is_refused_with_the_choices():
    with pytest.raises(InputError, match=r"precision must be one of \['fp32', 'bf16', 'fp16'\]"):
        apply_overrides(get_preset("cpu"), ["housekeeping.precision=fp8"])


def test_precision_checks_by_device():
    check_precision("bf16", torch.device("cpu"))
    check_precision("fp32", torch.device("cpu"))
    with pytest.raises(InputError, match="needs a CUDA device"):
        check_precision("fp16", torch.device("cpu"))


def _checkpoint_parts():
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adam(model.parameters())
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    return model, optimizer, scheduler


def test_the_gradient_scaler_state_is_saved_and_restored(tmp_path):
    """fp16 runs only on CUDA, but the scaler and its checkpointing are device-independent."""
    model, optimizer, scheduler = _checkpoint_parts()
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16, growth_interval=5)
    for size in (1e34, 1.0, 1.0):  # an overflowing step (skipped, scale halved), two good ones
        optimizer.zero_grad()
        scaler.scale(model(torch.full((1, 3), size)).sum()).backward()
        scaler.step(optimizer)
        scaler.update()
    assert scaler.state_dict()["scale"] == 2.0 ** 15
    assert scaler.state_dict()["_growth_tracker"] == 2
    save_training_checkpoint(tmp_path / "ck", model=model, optimizer=optimizer,
                             scheduler=scheduler, loop_state={"epoch": 1}, grad_scaler=scaler)
    fresh = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16, growth_interval=5)
    fresh_parts = _checkpoint_parts()
    load_training_checkpoint(tmp_path / "ck", model=fresh_parts[0], optimizer=fresh_parts[1],
                             scheduler=fresh_parts[2], grad_scaler=fresh)
    assert fresh.state_dict() == scaler.state_dict()


def test_checkpoints_without_a_scaler_still_load(tmp_path):
    """A checkpoint from before the scaler was saved (no ``grad_scaler`` key) loads; an enabled
    scaler then starts from its initial scale."""
    model, optimizer, scheduler = _checkpoint_parts()
    save_training_checkpoint(tmp_path / "ck", model=model, optimizer=optimizer,
                             scheduler=scheduler, loop_state={"epoch": 1})
    state_file = tmp_path / "ck" / "state.json"
    state = json.loads(state_file.read_text())
    assert state.pop("grad_scaler") == {}
    state_file.write_text(json.dumps(state))
    scaler = grad_scaler("fp16", torch.device("cpu"))  # enabled: the device type does not matter
    assert load_training_checkpoint(tmp_path / "ck", model=model, optimizer=optimizer,
                                    scheduler=scheduler, grad_scaler=scaler) == {"epoch": 1}
    assert scaler.get_scale() == 2.0 ** 16


def test_compiling_keeps_the_module_and_its_checkpoint_keys(tmp_path):
    from psamf.checkpointing import save_model
    from psamf.models import PSAMFConfig, build_model

    encoder = tiny_encoder(tmp_path / "tiny")
    model = build_model(PSAMFConfig(text_encoder=encoder, fusion_hidden=32, head_hidden=16,
                                    av_hidden=16, contrastive_dim=16))
    keys = list(model.state_dict())
    assert compile_model(model, True) is model
    assert list(model.state_dict()) == keys
    save_model(tmp_path / "model.safetensors", model)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "model.safetensors"), framework="pt") as handle:
        saved = set(handle.keys())  # noqa: SIM118
    assert saved == set(keys) and not any("_orig_mod" in k for k in saved)


def test_compile_without_a_cxx_compiler_is_refused_on_the_cpu(monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(InputError, match="needs a C\\+\\+ compiler"):
        check_compile(True, torch.device("cpu"))
    check_compile(False, torch.device("cpu"))
