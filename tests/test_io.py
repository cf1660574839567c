"""Atomic writes: a failure leaves the previous file (or nothing), never half a file."""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch
from safetensors.torch import load_file

from psamf.io import atomic_dir, atomic_path, save_tensors, write_json


def test_write_json_replaces_and_uses_umask_mode(tmp_path):
    target = tmp_path / "sub" / "a.json"
    write_json(target, {"a": 1})
    write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]  # no temp files left


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_dir_replaces_whole_folder_only_on_success(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "w.txt").write_text("v1")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "w.txt").write_text("v2-partial")
        raise RuntimeError("crash")
    assert (target / "w.txt").read_text() == "v1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_save_tensors_round_trip(tmp_path):
    tensors = {"w": torch.arange(6.0).reshape(2, 3).t()}  # non-contiguous on purpose
    save_tensors(tmp_path / "t.safetensors", tensors, metadata={"k": "v"})
    loaded = load_file(str(tmp_path / "t.safetensors"))
    assert torch.equal(loaded["w"], tensors["w"])


def test_save_tensors_writes_tied_weights_as_separate_copies(tmp_path):
    # A tied weight appears twice in state_dict(); safetensors alone refuses shared memory.
    model = torch.nn.Module()
    model.encoder = torch.nn.Embedding(5, 3)
    model.decoder = torch.nn.Linear(3, 5, bias=False)
    model.decoder.weight = model.encoder.weight
    save_tensors(tmp_path / "tied.safetensors", model.state_dict())
    loaded = load_file(tmp_path / "tied.safetensors")
    assert torch.equal(loaded["encoder.weight"], model.encoder.weight.detach())
    assert torch.equal(loaded["decoder.weight"], model.encoder.weight.detach())
    assert [p.name for p in tmp_path.iterdir()] == ["tied.safetensors"]


def test_a_checkpoint_cut_between_the_two_renames_is_recovered(tmp_path):
    from psamf.checkpointing import has_training_checkpoint

    folder = tmp_path / "checkpoint"
    for step in (1, 2):
        with atomic_dir(folder) as tmp:
            (tmp / "state.json").write_text(f'{{"step": {step}}}')
    # A crash after ``os.replace(path, old)`` and before ``os.replace(tmp, path)``:
    os.replace(folder, tmp_path / ".checkpoint.old")
    assert has_training_checkpoint(folder)
    assert (folder / "state.json").read_text() == '{"step": 2}'
