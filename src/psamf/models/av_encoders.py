"""Audio and video encoders: one LSTM per modality over the valid frames.

Each gives a summary h_m (B, D) — the last valid hidden state through a linear layer — and the
sequence S_m (B, T, D) with a key-padding mask (True = padded frame). A sample whose length is 0
(the modality is missing for that utterance) gets a zero summary, an all-zero sequence and an
all-True mask; the cross-modal attention then returns zeros for it (see fusion.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from psamf.errors import InputError


@dataclass
class AVEncoding:
    """Output of one modality encoder."""

    summary: torch.Tensor  # (B, D), zero where length == 0
    sequence: torch.Tensor  # (B, T, D), zero on padded frames
    padding: torch.Tensor  # (B, T) bool, True = padded frame

    @property
    def present(self) -> torch.Tensor:
        """(B,) bool: the sample has at least one frame."""
        return ~self.padding.all(dim=1)


class AVEncoder(nn.Module):
    """LSTM (d -> D, one layer) over valid frames + linear summary of the last valid state."""

    def __init__(self, *, input_dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.lstm = nn.LSTM(input_dim, hidden, num_layers=1, batch_first=True)
        self.summary = nn.Linear(hidden, hidden)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> AVEncoding:
        """features (B, T, d) zero-padded, lengths (B,) in [0, T]."""
        batch, frames, width = features.shape
        if width != self.input_dim:
            raise InputError(
                f"features have width {width}, the model was built for {self.input_dim}; "
                "set audio_dim / vision_dim in the model config to the data's width"
            )
        lengths = lengths.to(device=features.device, dtype=torch.long)
        if (lengths < 0).any() or (lengths > frames).any():
            raise InputError(f"lengths must be in [0, {frames}], got {lengths.tolist()}")
        present = lengths > 0  # (B,)
        # pack_padded_sequence rejects length 0: run those rows on one frame, then zero them out.
        packed = pack_padded_sequence(
            features, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        out, (last, _) = self.lstm(packed)  # last: (1, B, D), in the caller's order
        sequence, _ = pad_packed_sequence(out, batch_first=True, total_length=frames)  # (B, T, D)
        frame = torch.arange(frames, device=features.device)  # (T,)
        padding = frame[None, :] >= lengths[:, None]  # (B, T)
        sequence = sequence.masked_fill(padding.unsqueeze(-1), 0.0)  # (B, T, D)
        summary = self.summary(last[-1])  # (1, B, D) -> (B, D)
        summary = summary * present.unsqueeze(-1).to(summary.dtype)  # (B, D)
        return AVEncoding(summary=summary, sequence=sequence, padding=padding)
