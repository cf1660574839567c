"""The one way psamf turns transcripts into pooled embeddings of a personality encoder.

``PersonalityEncoder.encode`` (P for training and ``psamf predict``), ``predict_traits`` and the
pretraining baselines all call ``encode_texts``: the stock Hugging Face forward (what the trait head
was trained on), the last layer pooled by ``pool_tokens``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from psamf.errors import InputError
from psamf.models.text_encoder import pool_tokens
from psamf.personality.pooling import canonical_pooling
from psamf.progress import bars_enabled


@torch.no_grad()
def encode_texts(
    encoder: nn.Module,
    tokenizer,
    texts: Sequence[str],
    *,
    pooling: str = "first",
    max_tokens: int = 128,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    desc: str | None = None,
) -> torch.Tensor:
    """Pooled last-layer embeddings (N, H) of ``texts``, float32 on CPU, eval mode, no gradients.

    ``encoder``: a Hugging Face encoder (``AutoModel``); ``device``: move it there first (None =
    where it already is); ``desc``: show a progress bar with that label (on a terminal only).
    """
    pooling = canonical_pooling(pooling)
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    if device is not None:
        encoder.to(device)
    encoder.eval()
    dev = next(encoder.parameters()).device
    chunks: list[torch.Tensor] = []
    starts = range(0, len(texts), batch_size)
    show = desc is not None and bars_enabled()
    for start in tqdm(starts, desc=desc, unit="batch", leave=False, disable=not show):
        batch = tokenizer(
            list(texts[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=max_tokens,
            return_tensors="pt",
        ).to(dev)
        mask = batch["attention_mask"]
        hidden = encoder(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state
        chunks.append(pool_tokens(hidden, mask, pooling).float().cpu())  # (B, L, H) -> (B, H)
    if not chunks:
        return torch.zeros(0, int(getattr(encoder.config, "hidden_size", 0)))
    return torch.cat(chunks)  # (N, H)
