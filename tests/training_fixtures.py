"""Helpers for the training / CLI tests: a tiny real BERT folder and a fast run configuration."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from psamf.backbones import resolve_backbone


def tiny_encoder(folder: Path, *, seed: int = 0) -> str:
    """A randomly initialised 2-layer BERT (width 32) with the MiniLM's real tokenizer."""
    if (folder / "config.json").is_file():
        return str(folder)
    tokenizer = AutoTokenizer.from_pretrained(resolve_backbone("minilm"))
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


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
        **extra,
    }
    return [f"{k}={v}" for k, v in settings.items()]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
