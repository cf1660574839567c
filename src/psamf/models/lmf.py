"""LMF, Low-rank Multimodal Fusion (Liu et al., ACL 2018), beside TFN and PSA-MF.

The same extended unimodal vectors as TFN (``tfn.UnimodalSubnets``: pooled fine-tuned text
encoder + projection, frame-averaged audio/vision DNNs, each with a constant 1 appended), but the
tensor Z = [z_t; 1] ⊗ [z_a; 1] ⊗ [z_v; 1] is never built. Its linear layer W · Z + b is applied
through W's rank-r decomposition into modality-specific factors w_m^(i) of shape (d_m+1, d_h):

    h = sum_{i=1..r} prod_m ([z_m; 1] w_m^(i)) + b        (product element-wise over d_h)

which equals W · Z for W = sum_i w_t^(i) ⊗ w_a^(i) ⊗ w_v^(i) (the test builds that W and checks).

- ``lmf_rank`` r (4 by default, among the ranks the paper found best); ``lmf_fusion_dim`` d_h:
  1 (default) makes h the prediction itself, wider h is read by a linear head on ReLU(h).
- The paper's sum over ranks is unweighted; common implementations add learned per-rank weights,
  which this model leaves out (a factor's scale already plays that part).
- A modality absent from the dataset has no factor: its extended vector is the constant 1, whose
  factor would only rescale the others'. A sample with 0 frames has a zero unimodal vector, so its
  factor contributes only its constant-1 row. L1 loss.
"""

from __future__ import annotations

import torch
from torch import nn

from psamf.models.config import PSAMFConfig
from psamf.models.psamf import PSAMFOutput
from psamf.models.registry import register_model
from psamf.models.tfn import MODALITY_ORDER, UnimodalSubnets, task_output


@register_model("lmf", personality=False, modalities=("audio", "vision"))
class LMF(UnimodalSubnets):
    """Low-rank multimodal fusion regression model (see the module docstring)."""

    def __init__(self, config: PSAMFConfig) -> None:
        super().__init__()
        self._build_subnets(config, text_hidden=config.tfn_text_hidden,
                            av_hidden=config.tfn_av_hidden, pooling=config.tfn_text_pooling)
        rank, out = config.lmf_rank, config.lmf_fusion_dim
        # One factor (r, d_m + 1, d_h) per modality the model has.
        self.factors = nn.ParameterDict({
            m: nn.Parameter(torch.empty(rank, self.unimodal_dims[m] + 1, out))
            for m in MODALITY_ORDER if m in self.unimodal_dims
        })
        self.fusion_bias = nn.Parameter(torch.zeros(out))
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(out, 1) if out > 1 else None
        self._init_new_weights()

    def fuse(self, vectors: dict[str, torch.Tensor]) -> torch.Tensor:
        """h (B, d_h) from the unimodal vectors, without building the tensor."""
        extended = dict(zip(MODALITY_ORDER, self.extended(vectors), strict=True))
        product = None
        for name, factor in self.factors.items():
            projected = torch.einsum("bd,rdh->brh", extended[name], factor)  # (B, r, d_h)
            product = projected if product is None else product * projected
        return product.sum(1) + self.fusion_bias  # (B, r, d_h) -> (B, d_h)

    def forward(
        self,
        *,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        audio: torch.Tensor | None = None,
        audio_lengths: torch.Tensor | None = None,
        vision: torch.Tensor | None = None,
        vision_lengths: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **_unused: torch.Tensor | None,
    ) -> PSAMFOutput:
        vectors = self.unimodal(input_ids, attention_mask,
                                {"audio": (audio, audio_lengths),
                                 "vision": (vision, vision_lengths)})
        fused = self.fuse(vectors)  # (B, d_h)
        if self.head is None:
            prediction = fused.squeeze(-1)  # (B, 1) -> (B,)
        else:
            prediction = self.head(torch.relu(self.dropout(fused))).squeeze(-1)  # (B,)
        return task_output(prediction, labels)
