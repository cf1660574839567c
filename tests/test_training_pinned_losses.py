"""Pinned training losses: two epochs of the tiny BERT on the built-in sample, fixed seed.

Any change to the models, their initialisation, the sample data, tokenization, batching order, the
optimizer or the loss weights moves these numbers; a change that should not (a refactor) must leave
them within 1e-4. Same-seed runs are identical in one process (checked when they were pinned; the
CLI test checks it again end to end), so the tolerance only absorbs float summation order.

To regenerate after a deliberate change, run (torch on one thread, as the suite does)::

    PYTHONPATH=src:tests OMP_NUM_THREADS=1 .venv/bin/python tests/test_training_pinned_losses.py

paste the printed dict over ``PINNED`` and say in the commit why the losses moved.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest
import torch
from training_fixtures import fast_overrides, tiny_encoder

from psamf.training import Trainer, apply_overrides, get_preset, prepare

SEED = 0
# model_type -> (preset, per-epoch mean training loss terms), measured on CPU, torch 2.13.0.
PINNED: dict[str, tuple[str, list[dict[str, float]]]] = {
    "psamf": ("cpu", [
        {"loss": 3.570660, "task": 1.247744, "ccl": 1.754392, "ps": 0.670604, "clm": 5.571815},
        {"loss": 3.586264, "task": 1.263884, "ccl": 1.762356, "ps": 0.575657, "clm": 5.582870},
    ]),
    "text_finetune": ("text_finetune", [
        {"loss": 1.334737, "task": 1.334737},
        {"loss": 1.304239, "task": 1.304239},
    ]),
}


def train_losses(model_type: str, folder: Path) -> list[dict[str, float]]:
    """Per-epoch mean training losses of the pinned run of ``model_type`` (2 epochs, 64 train)."""
    preset, _ = PINNED[model_type]
    # device=cpu even when the suite runs on CUDA: the pins are CPU values, and CUDA draws its
    # dropout masks from another generator (on an H200 the first epoch's loss moved by 0.1)
    config = apply_overrides(get_preset(preset), fast_overrides(
        tiny_encoder(folder / "tiny"), folder / "cache", progress="false", device="cpu"))
    assert config.model.model_type == model_type and config.epochs == 2
    prepared = prepare(config)
    result = Trainer(prepared.config, prepared.splits, seed=SEED, folder=folder / "seed").fit()
    return [epoch.train for epoch in result.history]


@pytest.mark.parametrize("model_type", sorted(PINNED))
def test_training_losses_match_the_pinned_values(tmp_path, model_type):
    got = train_losses(model_type, tmp_path)
    expected = PINNED[model_type][1]
    assert [sorted(epoch) for epoch in got] == [sorted(epoch) for epoch in expected]
    for epoch, (got_terms, want_terms) in enumerate(zip(got, expected, strict=True), start=1):
        for term, want in want_terms.items():
            assert got_terms[term] == pytest.approx(want, abs=1e-4), (epoch, term)


if __name__ == "__main__":  # regenerate PINNED (see the module docstring)
    torch.set_num_threads(1)
    values = {}
    for name in sorted(PINNED):
        with tempfile.TemporaryDirectory() as tmp:
            losses = train_losses(name, Path(tmp))
        values[name] = [{k: round(v, 6) for k, v in epoch.items()} for epoch in losses]
    print(values, file=sys.stdout)
