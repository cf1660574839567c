"""Pre-fusion: audio and video enter the last text layer as two extra tokens carrying P.

ṽ = ReLU(W_v h_v + P), ã = ReLU(W_a h_a + P) (W: D -> H) are appended after the text tokens with
mask 1, and layer N runs on L+2 tokens. If P's width H_p differs from the text width H, P goes
through a linear projection H_p -> H first (the paper has equal widths; the projection is ours).
Without personality (ablation) the tokens are ReLU(W h). A sample missing a modality (length 0)
has a zero summary, so its token is ReLU(P) (or 0) and stays unmasked.

L_clm = sum over modalities of C(s, token), s = first token (or mean: ``sentence_pooling``) of
layer N-1's output: it ties the text to each AV token before layer N mixes them. These modules
count as built into the sentiment encoder (encoder learning rate); the contrastive projections
of L_clm do not.
"""

from __future__ import annotations

import torch
from torch import nn

from psamf.models.contrastive import ContrastiveLoss


class PreFusionTokens(nn.Module):
    """Build the AV tokens (B, E, H), one per modality in ``modalities`` order."""

    def __init__(
        self,
        *,
        modalities: tuple[str, ...],
        av_hidden: int,
        text_dim: int,
        personality_dim: int | None,
    ) -> None:
        super().__init__()
        self.modalities = modalities
        self.token = nn.ModuleDict({m: nn.Linear(av_hidden, text_dim) for m in modalities})
        self.personality = (
            nn.Linear(personality_dim, text_dim)
            if personality_dim is not None and personality_dim != text_dim
            else None
        )
        self.use_personality = personality_dim is not None

    def forward(
        self, summaries: dict[str, torch.Tensor], personality: torch.Tensor | None
    ) -> torch.Tensor:
        shift = 0.0
        if self.use_personality:
            shift = personality if self.personality is None else self.personality(personality)
        tokens = [torch.relu(self.token[m](summaries[m]) + shift) for m in self.modalities]
        return torch.stack(tokens, dim=1)  # E x (B, H) -> (B, E, H)


class PreFusionContrastive(nn.Module):
    """L_clm = sum over modalities of C(s, token_m)."""

    def __init__(self, *, modalities: tuple[str, ...], text_dim: int, **contrastive) -> None:
        super().__init__()
        self.modalities = modalities
        self.losses = nn.ModuleDict(
            {m: ContrastiveLoss(x_dim=text_dim, y_dim=text_dim, **contrastive) for m in modalities}
        )

    def forward(self, s: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """s (B, H), tokens (B, E, H) in ``modalities`` order."""
        return sum(self.losses[m](s, tokens[:, i]) for i, m in enumerate(self.modalities))
