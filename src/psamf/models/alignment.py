"""Personality-sentiment alignment at one hidden state of the sentiment encoder.

c = first token (or mean: ``sentence_pooling``) of hidden state ``align_layer``;
z1 = W1 c, z2 = W2 c, p = W_p P (all to D = 64);
d = (1 - mean_batch cos(z1, p)) / 2 in [0, 1];
L_ccl = d * C(z1, p)                   (pull the two views together, harder when far apart)
L_ps  = (1 - d) * mean |w . z2 + b - y|  (the aligned layer must still carry the sentiment)

d is a balancing weight; by default it is detached (``detach_alignment_weight``) so that the
model cannot lower L_ps simply by pushing the two views apart.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from psamf.models.contrastive import ContrastiveLoss


def default_align_layer(num_layers: int) -> int:
    """round(10/12 * N) clamped to N-1: the authors' index 10 of 13 states at the same depth."""
    return max(0, min(round(10 * num_layers / 12), num_layers - 1))


class PersonalityAlignment(nn.Module):
    """Computes L_ccl and (optionally) L_ps from c (B, H), P (B, H_p) and labels (B,)."""

    def __init__(
        self,
        *,
        text_dim: int,
        personality_dim: int,
        hidden: int = 64,
        use_ps_loss: bool = True,
        detach_weight: bool = True,
        **contrastive,
    ) -> None:
        super().__init__()
        self.align = nn.Linear(text_dim, hidden)  # W1
        self.personality = nn.Linear(personality_dim, hidden)  # W_p
        self.contrastive = ContrastiveLoss(x_dim=hidden, y_dim=hidden, **contrastive)
        self.sentiment = nn.Linear(text_dim, hidden) if use_ps_loss else None  # W2
        self.probe = nn.Linear(hidden, 1) if use_ps_loss else None  # w, b
        self.detach_weight = detach_weight

    def forward(
        self, c: torch.Tensor, personality: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Loss terms ``ccl`` (batch >= 2 only) and ``ps`` (if enabled)."""
        z1 = self.align(c)  # (B, H) -> (B, D)
        p = self.personality(personality)  # (B, H_p) -> (B, D)
        d = (1 - F.cosine_similarity(z1, p, dim=-1).mean()) / 2  # scalar in [0, 1]
        if self.detach_weight:
            d = d.detach()
        losses: dict[str, torch.Tensor] = {}
        if c.shape[0] >= 2:
            losses["ccl"] = d * self.contrastive(z1, p)
        if self.sentiment is not None and self.probe is not None:
            # fp32 even under autocast, like the other loss terms (a no-op in fp32 runs)
            probe = self.probe(self.sentiment(c)).squeeze(-1).float()  # (B, H) -> (B, D) -> (B,)
            losses["ps"] = (1 - d) * (probe - labels).abs().mean()
        return losses
