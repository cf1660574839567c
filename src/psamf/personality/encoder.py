"""The frozen personality encoder that gives P.

PSA-MF uses one vector per transcript from a personality-pretrained encoder: P, its last layer
pooled the way the folder's trait head was trained (``trait_head.json``; psamf's recipe mean-pools,
the paper reads the first token). The encoder is frozen, so P depends on the text only and is
computed once per utterance and cached (``PersonalityEmbeddingCache``); the model itself receives P
as an input tensor and never holds the personality encoder, which therefore cannot be trained by
accident.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from psamf.errors import InputError
from psamf.models.text_encoder import TextEncoder, load_tokenizer
from psamf.personality.encode import encode_texts
from psamf.personality.folder import EncoderFolder


class PersonalityEncoder(nn.Module):
    """A frozen text encoder giving P (N, H_p) for transcripts; always eval mode, no gradients.

    ``name_or_path``: a folder, short name or hub id, or an ``EncoderFolder``. ``pooling``:
    ``"first"`` token or ``"mean"`` over real tokens; None = the folder's trait head's pooling if
    it has one, else first. ``identity`` is P's cache key (see ``identity_string``).
    """

    def __init__(
        self,
        name_or_path: str | EncoderFolder,
        *,
        pooling: str | None = None,
        max_length: int = 128,
    ) -> None:
        super().__init__()
        if isinstance(name_or_path, EncoderFolder):
            folder = name_or_path
        else:
            folder = EncoderFolder.open(name_or_path, pooling=pooling, max_length=max_length)
        self.folder = folder
        self.path = folder.path
        self.pooling = folder.pooling
        self.max_length = folder.max_length
        self.encoder = TextEncoder.from_pretrained(folder.path)
        self.tokenizer = load_tokenizer(folder.path)
        self.encoder.requires_grad_(False)
        self.eval()
        # The cache key of P: what the encoder computes, not where it lives.
        self.identity = folder.identity(self.encoder)

    @property
    def hidden_size(self) -> int:
        return self.encoder.hidden_size

    def train(self, mode: bool = True) -> PersonalityEncoder:
        """Stays in eval mode whatever is asked: the encoder is frozen (no dropout)."""
        return super().train(False)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> torch.Tensor:
        """P for each text, float32 on CPU, shape (N, H_p), on the encoder's current device."""
        out = encode_texts(self.encoder.model, self.tokenizer, texts, pooling=self.pooling,
                           max_tokens=self.max_length, batch_size=batch_size)  # (N, H_p)
        if len(out) == 0:
            return torch.zeros(0, self.hidden_size)
        if not torch.isfinite(out).all():
            raise InputError(f"personality encoder {self.path} produced NaN/inf embeddings")
        return out
