"""Text-only fine-tuning baseline: the comparison PSA-MF has to beat with the same encoder.

Mean-pooled last layer of the sentiment encoder + one linear layer, L1 loss. Same forward signature
as PSAMF (personality, audio and video are accepted and ignored) and the same config type.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from psamf.models.config import PSAMFConfig
from psamf.models.psamf import PSAMFOutput, _TextModel
from psamf.models.registry import register_model
from psamf.models.text_encoder import pool_tokens


@register_model("text_finetune", personality=False, modalities=())
class TextFinetune(_TextModel):
    """Plain fine-tuning of ``config.text_encoder`` for sentiment regression."""

    gathers_batch = True

    def __init__(self, config: PSAMFConfig) -> None:
        super().__init__()
        self._load_text_encoder(config)
        self.head = nn.Linear(self.text_encoder.hidden_size, 1)
        self._init_new_weights()

    def forward(
        self,
        *,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        gather: Callable[[torch.Tensor], torch.Tensor] | None = None,
        **_unused: torch.Tensor | None,
    ) -> PSAMFOutput:
        last = self.text_encoder(input_ids, attention_mask)[-1]  # (B, L, H)
        pooled = pool_tokens(last, attention_mask, "mean")  # (B, H)
        prediction = self.head(pooled).squeeze(-1)  # (B, 1) -> (B,)
        if labels is None:
            return PSAMFOutput(prediction=prediction)
        g = gather or (lambda x: x)  # DDP: the mean over the global batch
        task = F.l1_loss(g(prediction), g(labels.to(prediction.dtype)))
        return PSAMFOutput(prediction=prediction, loss=task, losses={"task": task})
