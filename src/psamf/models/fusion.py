"""Multi-level fusion head: text-queried cross-modal attention, then serial and parallel paths.

q = W_q M (H -> D). For each modality, q is the single query of a 2-head attention over S_m, giving
A_t / V_t (B, D); padded frames are masked (``mask_av_padding``; the authors do not mask). A sample
without frames (length 0) gets a zero attention output instead of a NaN.

Streams = [V_t, A_t, q] (the modalities present, then q; only q in text-only mode).
- serial:   F_s = Linear(LayerNorm([Linear(V_t -> 2048); Linear(A_t -> 2048); q]) -> 128)
- parallel: F_p = Conv1d over the stacked streams (channels), kernel 3, 1 output channel -> (B, D-2)
- head:     [F_p; F_s] -> dropout -> Linear 128 -> tanh -> Linear 128 -> tanh -> Linear 1
Without enhanced fusion (ablation) the serial and parallel paths are removed and the head reads the
plain concatenation of the streams [V_t; A_t; q] instead.
"""

from __future__ import annotations

import torch
from torch import nn

from psamf.models.av_encoders import AVEncoding


class CrossModalAttention(nn.Module):
    """q (B, D) attends over one modality's sequence S_m (B, T, D) -> (B, D)."""

    def __init__(self, *, dim: int, heads: int, mask_padding: bool = True) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mask_padding = mask_padding

    def forward(self, q: torch.Tensor, encoding: AVEncoding) -> torch.Tensor:
        present = encoding.present  # (B,)
        mask = None
        if self.mask_padding:
            # A row with no frames would be all-masked (softmax NaN): it sees frame 0, zeroed below.
            # Built without in-place ops so that the ONNX exporter can trace it (psamf export).
            padding = encoding.padding  # (B, T)
            mask = torch.cat([padding[:, :1] & present[:, None], padding[:, 1:]], 1)  # (B, T)
        out, _ = self.attention(
            q.unsqueeze(1), encoding.sequence, encoding.sequence,
            key_padding_mask=mask, need_weights=False,
        )  # (B, 1, D)
        return out.squeeze(1) * present.unsqueeze(-1).to(out.dtype)  # (B, 1, D) -> (B, D)


class MultiLevelFusion(nn.Module):
    """M (B, H) + AV encodings -> prediction (B,)."""

    def __init__(
        self,
        *,
        text_dim: int,
        modalities: tuple[str, ...],
        dim: int = 64,
        heads: int = 2,
        mask_padding: bool = True,
        enhanced: bool = True,
        fusion_hidden: int = 2048,
        head_hidden: int = 128,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.modalities = modalities
        self.query = nn.Linear(text_dim, dim)  # W_q
        self.attention = nn.ModuleDict(
            {m: CrossModalAttention(dim=dim, heads=heads, mask_padding=mask_padding)
             for m in modalities}
        )
        n_streams = len(modalities) + 1
        self.enhanced = enhanced
        if enhanced:
            serial_width = len(modalities) * fusion_hidden + dim
            self.expand = nn.ModuleDict({m: nn.Linear(dim, fusion_hidden) for m in modalities})
            self.serial_norm = nn.LayerNorm(serial_width)
            self.serial = nn.Linear(serial_width, head_hidden)
            self.parallel = nn.Conv1d(n_streams, 1, kernel_size=3)
            head_in = (dim - 2) + head_hidden
        else:
            head_in = n_streams * dim
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(head_in, head_hidden),
            nn.Tanh(),
            nn.Linear(head_hidden, head_hidden),
            nn.Tanh(),
            nn.Linear(head_hidden, 1),
        )

    def forward(self, fused: torch.Tensor, encodings: dict[str, AVEncoding]) -> torch.Tensor:
        q = self.query(fused)  # (B, H) -> (B, D)
        attended = [self.attention[m](q, encodings[m]) for m in self.modalities]  # each (B, D)
        if self.enhanced:
            expanded = [self.expand[m](a) for m, a in zip(self.modalities, attended, strict=True)]
            serial = self.serial(self.serial_norm(torch.cat([*expanded, q], -1)))  # (B, 128)
            stack = torch.stack([*attended, q], dim=1)  # (B, n_streams, D)
            parallel = self.parallel(stack).squeeze(1)  # (B, 1, D-2) -> (B, D-2)
            features = torch.cat([parallel, serial], dim=-1)  # (B, D-2+128)
        else:
            features = torch.cat([*attended, q], dim=-1)  # (B, n_streams*D)
        return self.head(features).squeeze(-1)  # (B, 1) -> (B,)
