"""Symmetric (CLIP-style) contrastive loss C(x, y) between two views of the same batch.

Project both views to a shared width, L2-normalise, logits = scale * x y^T, and average the
cross-entropy of the rows and of the columns against the diagonal (sample i matches sample i).
Options: the scale is fixed at ln(1/0.07) ~ 2.66 — used as is, not exponentiated, as in the
authors' code — or learned (a log-scale parameter starting at the same value, capped at 100); and
the normalisation order: both after projection (default) or the authors' order (x after its
projection, y before its projection).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from psamf.errors import InputError

FIXED_SCALE = math.log(1 / 0.07)  # ~2.659, the authors' logits scale
_MAX_SCALE = 100.0


class ContrastiveLoss(nn.Module):
    """C(x, y) for x (B, d_x) and y (B, d_y); needs B >= 2 (the caller skips it otherwise)."""

    def __init__(
        self,
        *,
        x_dim: int,
        y_dim: int,
        dim: int = 128,
        scale: str = "fixed",
        norm: str = "after_projection",
    ) -> None:
        super().__init__()
        if scale not in ("fixed", "learned"):
            raise InputError(f"contrastive_scale must be 'fixed' or 'learned', got {scale!r}")
        if norm not in ("after_projection", "authors"):
            raise InputError(
                f"contrastive_norm must be 'after_projection' or 'authors', got {norm!r}"
            )
        self.proj_x = nn.Linear(x_dim, dim)
        self.proj_y = nn.Linear(y_dim, dim)
        self.norm = norm
        if scale == "learned":
            self.log_scale = nn.Parameter(torch.tensor(math.log(FIXED_SCALE)))
        else:
            self.register_buffer("log_scale", torch.tensor(math.log(FIXED_SCALE)), persistent=False)

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=_MAX_SCALE)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape[0] < 2:
            raise InputError("contrastive loss needs a batch of at least 2 samples")
        x = F.normalize(self.proj_x(x), dim=-1)  # (B, d_x) -> (B, dim)
        if self.norm == "authors":
            y = self.proj_y(F.normalize(y, dim=-1))  # (B, d_y) -> (B, dim), not re-normalised
        else:
            y = F.normalize(self.proj_y(y), dim=-1)  # (B, d_y) -> (B, dim)
        logits = self.scale * x @ y.T  # (B, B)
        target = torch.arange(x.shape[0], device=x.device)  # (B,)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
