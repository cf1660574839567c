"""Tiny randomly initialised encoders for the model tests (real transformers classes).

Each helper writes a Hugging Face folder (config, safetensors weights, the MiniLM's
bert-base-uncased tokenizer) that ``TextEncoder.from_pretrained`` / ``AutoModel`` read like
any pretrained encoder.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertModel,
    MPNetConfig,
    MPNetModel,
    RobertaConfig,
    RobertaModel,
)

from psamf.backbones import resolve_backbone

TINY = {"hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 64}


def _tokenizer():
    return AutoTokenizer.from_pretrained(resolve_backbone("minilm"))


def make_tiny_bert(
    folder: Path,
    *,
    layers: int = 3,
    hidden: int = 32,
    heads: int = 4,
    max_positions: int = 128,
    seed: int = 0,
) -> str:
    """A random BERT (vocab of bert-base-uncased) saved to ``folder``; returns its path."""
    tokenizer = _tokenizer()
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, num_hidden_layers=layers,
        max_position_embeddings=max_positions,
        **{**TINY, "hidden_size": hidden, "num_attention_heads": heads},
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def make_tiny_mpnet(folder: Path, *, layers: int = 3, seed: int = 0) -> str:
    """A random MPNet (relative position bias) saved to ``folder``; returns its path."""
    tokenizer = _tokenizer()
    torch.manual_seed(seed)
    config = MPNetConfig(
        vocab_size=tokenizer.vocab_size, num_hidden_layers=layers, max_position_embeddings=130,
        **TINY,
    )
    MPNetModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def make_tiny_roberta(folder: Path, *, layers: int = 2, seed: int = 0) -> str:
    """A random RoBERTa (BERT layers, positions counted from its padding index) in ``folder``."""
    tokenizer = _tokenizer()
    torch.manual_seed(seed)
    config = RobertaConfig(
        vocab_size=tokenizer.vocab_size, num_hidden_layers=layers, max_position_embeddings=130,
        pad_token_id=0, **TINY,
    )
    RobertaModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def make_batch(
    model,
    *,
    texts: tuple[str, ...] = ("a fine film", "dull and long, really", "ok", "what a joy to watch"),
    frames: dict[str, int] | None = None,
    lengths: dict[str, list[int]] | None = None,
    seed: int = 0,
) -> dict:
    """A forward batch for ``model``: tokens, random P and labels, AV zero beyond lengths."""
    gen = torch.Generator().manual_seed(seed)
    batch = model.tokenize(list(texts))
    size = len(texts)
    config = model.config
    p_dim = config.personality_dim or model.text_encoder.hidden_size
    batch["personality"] = torch.randn(size, p_dim, generator=gen)
    batch["labels"] = torch.rand(size, generator=gen) * 6 - 3
    frames = frames or {}
    lengths = lengths or {}
    for name, width in (("audio", config.audio_dim), ("vision", config.vision_dim)):
        if width is None:
            continue
        n_frames = frames.get(name, 3)
        lens = torch.tensor(lengths.get(name, [n_frames] * size), dtype=torch.long)
        feats = torch.randn(size, n_frames, width, generator=gen)
        feats = feats * (torch.arange(n_frames)[None, :, None] < lens[:, None, None])
        batch[name] = feats
        batch[f"{name}_lengths"] = lens
    return batch
