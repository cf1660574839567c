"""Tensor files carry a SHA-256 of their tensors; a flipped bit, NaN weights or a file older than
the digests are each told apart on load, in one line naming the file."""

from __future__ import annotations

import logging

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from psamf import checkpointing
from psamf.checkpointing import load_model_weights, load_tensors, save_model
from psamf.errors import InputError, TrainingDivergedError
from psamf.io import DIGEST_KEY, save_tensors, tensor_digest


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Linear(4, 1))


def test_every_saved_file_records_a_digest_that_load_checks(tmp_path):
    path = tmp_path / "model.safetensors"
    model = _model()
    save_model(path, model)
    with safe_open(str(path), framework="pt") as handle:
        recorded = handle.metadata()[DIGEST_KEY]
    assert recorded == tensor_digest(dict(model.state_dict()))
    fresh = _model()
    load_model_weights(fresh, path)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(),
                                                 model.state_dict().values(), strict=True))


def test_a_flipped_bit_is_named_as_damage(tmp_path):
    path = tmp_path / "model.safetensors"
    save_model(path, _model())
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # one bit of the last tensor's bytes (the header stays valid)
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as err:
        load_model_weights(_model(), path)
    message = str(err.value)
    assert str(path) in message and "damaged" in message and "SHA-256" in message
    assert "\n" not in message


def test_a_truncated_file_is_named_in_one_line(tmp_path):
    path = tmp_path / "optimizer.safetensors"
    save_tensors(path, {"a": torch.arange(100.0)})
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(InputError, match="optimizer.safetensors") as err:
        load_tensors(path)
    assert "\n" not in str(err.value)


def test_a_file_without_digest_still_loads_and_is_logged_once(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(checkpointing, "_told_unverified", False)
    old = [tmp_path / f"old{i}.safetensors" for i in range(2)]
    for path in old:  # as psamf wrote them before digests: plain safetensors, no metadata
        save_file({"w": torch.ones(3)}, str(path))
    with caplog.at_level(logging.WARNING, logger="psamf.checkpointing"):
        for path in old:
            assert torch.equal(load_tensors(path)["w"], torch.ones(3))
    unverified = [r for r in caplog.records if "unverified" in r.getMessage()]
    assert len(unverified) == 1 and "old0.safetensors" in unverified[0].getMessage()


def test_nan_weights_in_a_file_are_damage_not_a_training_problem(tmp_path):
    model = _model()
    tensors = dict(model.state_dict())
    tensors["0.weight"] = tensors["0.weight"].clone()
    tensors["0.weight"][1, 2] = float("nan")
    path = tmp_path / "best" / "model.safetensors"
    save_tensors(path, tensors)  # digest valid: only the values are bad
    with pytest.raises(InputError) as err:
        load_model_weights(_model(), path)
    message = str(err.value)
    assert str(path) in message and "damaged" in message and "0.weight" in message
    assert "train" not in message.replace("retrain", "")  # it does not blame training
    tensors["0.weight"][1, 2] = float("inf")
    save_tensors(path, tensors)
    with pytest.raises(InputError, match="damaged"):
        load_model_weights(_model(), path)


def test_save_model_refuses_non_finite_weights_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "model.safetensors"
    model = _model()
    save_model(path, model)
    before = path.read_bytes()
    with torch.no_grad():
        model[1].bias.fill_(float("inf"))
    with pytest.raises(TrainingDivergedError, match="1.bias"):
        save_model(path, model)
    assert path.read_bytes() == before
