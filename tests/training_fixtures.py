"""Helpers for the training / CLI tests: a tiny real BERT folder and a fast run configuration."""

from __future__ import annotations

import json
import os
from pathlib import Path

from model_fixtures import make_tiny_bert

# PSAMF_TEST_DEVICE=cuda runs the training tests on that device (benchmarks/gpu_check.sh sets it);
# unset, runs use housekeeping.device=auto.
TEST_DEVICE_ENV = "PSAMF_TEST_DEVICE"


def tiny_encoder(folder: Path, *, seed: int = 0) -> str:
    """A randomly initialised 2-layer BERT (width 32) with the MiniLM's real tokenizer."""
    if (folder / "config.json").is_file():
        return str(folder)
    return make_tiny_bert(folder, layers=2, heads=2, max_positions=64, seed=seed)


def fast_overrides(encoder: str, cache: Path, **extra: object) -> list[str]:
    """KEY=VALUE overrides for a seconds-long PSA-MF run on a slice of the sample."""
    settings: dict[str, object] = {
        "model.text_encoder": encoder,
        "personality_encoder": encoder,
        "cache_dir": str(cache),
        "model.fusion_hidden": 32,
        "model.head_hidden": 16,
        "model.av_hidden": 16,
        "model.contrastive_dim": 16,
        "model.max_text_length": 24,
        "data.limit_train": 64,
        "data.limit_valid": 32,
        "data.limit_test": 32,
        "batch_size": 16,
        "epochs": 2,
        **({"device": os.environ[TEST_DEVICE_ENV]} if os.environ.get(TEST_DEVICE_ENV) else {}),
        **extra,
    }
    return [f"{k}={v}" for k, v in settings.items()]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
