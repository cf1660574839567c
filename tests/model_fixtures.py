"""Tiny randomly initialised encoders for the model tests (real transformers classes).

Each helper writes a Hugging Face folder (config, safetensors weights, the MiniLM's
bert-base-uncased tokenizer) that ``TextEncoder.from_pretrained`` / ``AutoModel`` read like
any pretrained encoder.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer, BertConfig, BertModel, MPNetConfig, MPNetModel

from psamf.backbones import resolve_backbone

TINY = {"hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 64}


def _tokenizer():
    return AutoTokenizer.from_pretrained(resolve_backbone("minilm"))


def make_tiny_bert(folder: Path, *, layers: int = 3, hidden: int = 32, seed: int = 0) -> str:
    """A random BERT (vocab of bert-base-uncased) saved to ``folder``; returns its path."""
    tokenizer = _tokenizer()
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, num_hidden_layers=layers, max_position_embeddings=128,
        **{**TINY, "hidden_size": hidden},
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
