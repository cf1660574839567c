"""MISA baseline: modality-invariant and -specific representations (Hazarika et al., ACM MM 2020).

Reads top to bottom like the paper:

1. Utterance vectors u_m: text = masked mean of the fine-tuned encoder's last layer; audio and
   vision = the LSTM summary of ``av_encoders.AVEncoder`` (the paper stacks two LSTMs; we reuse
   PSA-MF's one-layer encoder so that the baselines share their AV path).
2. Projection: u_m -> Linear -> ReLU -> LayerNorm, width d_h (``misa_hidden``).
3. One shared encoder E_c (Linear + sigmoid) gives the invariant h_c^m for every modality; one
   private encoder E_p^m per modality gives the specific h_p^m.
4. Losses: task + alpha * sim + beta * diff + gamma * recon, with
   - sim: CMD (central moment discrepancy, K moments) between the invariant vectors of each pair
     of modalities, averaged over the pairs;
   - diff: soft orthogonality ||H_c^m^T H_p^m||_F^2 per modality plus ||H_p^m1^T H_p^m2||_F^2 per
     pair of specific matrices (rows centred and L2-normalised first by default), each the mean
     of the D x D squared entries by default (``misa_diff_reduction``: the authors' code, whose
     weights we use; the paper's squared norm, a sum, weighs the term D^2 = 16,384 times more
     at d_h 128 and drowned the other losses);
   - recon: MSE between the projected u_m and a per-modality decoder D_m(h_c^m + h_p^m).
5. Fusion: a transformer encoder layer over the 2M vectors, their outputs concatenated -> head.

A modality absent from the data (``audio_dim`` / ``vision_dim`` None) contributes no vectors and
no pair terms: MOSEI (text only) trains on [h_c^t, h_p^t] with sim = 0 (no pairs), diff = the
text's own term and recon = the text's. An utterance whose audio has 0 frames gets the zero LSTM
summary (the paper has no per-utterance missing modality).
"""

from __future__ import annotations

from itertools import combinations

import torch
import torch.nn.functional as F
from torch import nn

from psamf.models.av_encoders import AVEncoder
from psamf.models.config import PSAMFConfig
from psamf.models.psamf import PSAMFOutput, _TextModel
from psamf.models.registry import register_model
from psamf.models.text_encoder import pool_tokens

MISA_MODALITIES: tuple[str, ...] = ("text", "audio", "vision")


def cmd(x: torch.Tensor, y: torch.Tensor, moments: int = 5) -> torch.Tensor:
    """Central moment discrepancy between samples x (B1, D) and y (B2, D) bounded in [0, 1].

    ||E x - E y||_2 + sum_{k=2..K} ||C_k(x) - C_k(y)||_2, C_k the k-th central moment per
    dimension; the paper's 1/|b-a|^k factors are 1 because the sigmoid bounds [a, b] = [0, 1].
    """
    mean_x, mean_y = x.mean(0), y.mean(0)  # (D,)
    total = torch.linalg.vector_norm(mean_x - mean_y)
    cx, cy = x - mean_x, y - mean_y  # (B, D)
    for k in range(2, moments + 1):
        total = total + torch.linalg.vector_norm(cx.pow(k).mean(0) - cy.pow(k).mean(0))
    return total


def soft_orthogonality(a: torch.Tensor, b: torch.Tensor, *, normalize: bool = True,
                       reduction: str = "mean") -> torch.Tensor:
    """||A^T B||_F^2 for two (B, D) matrices of row vectors; 0 when their columns are orthogonal.
    ``reduction="mean"`` divides by the D*D entries (see ``misa_diff_reduction``)."""
    if normalize:  # centre each row, then unit L2 norm, so the loss cannot shrink with the scale
        a = F.normalize(a - a.mean(1, keepdim=True), dim=1)
        b = F.normalize(b - b.mean(1, keepdim=True), dim=1)
    squares = (a.transpose(0, 1) @ b).pow(2)  # (D, B) @ (B, D) -> (D, D)
    return squares.mean() if reduction == "mean" else squares.sum()


@register_model("misa", personality=False, modalities=("audio", "vision"))
class MISA(_TextModel):
    """MISA with the shared text encoder; options are the ``misa_*`` fields of PSAMFConfig."""

    def __init__(self, config: PSAMFConfig) -> None:
        super().__init__()
        self._load_text_encoder(config)
        hidden = config.misa_hidden
        widths = config.modality_widths()
        self.modalities = ("text",) + tuple(m for m in MISA_MODALITIES[1:] if m in widths)
        self.av_encoders = nn.ModuleDict(
            {m: AVEncoder(input_dim=widths[m], hidden=config.av_hidden) for m in widths}
        )
        utterance = {"text": self.text_encoder.hidden_size, "audio": config.av_hidden,
                     "vision": config.av_hidden}
        self.project = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(utterance[m], hidden), nn.ReLU(), nn.LayerNorm(hidden))
            for m in self.modalities
        })
        self.shared = nn.Sequential(nn.Linear(hidden, hidden), nn.Sigmoid())
        self.private = nn.ModuleDict(
            {m: nn.Sequential(nn.Linear(hidden, hidden), nn.Sigmoid()) for m in self.modalities}
        )
        self.decoder = nn.ModuleDict({m: nn.Linear(hidden, hidden) for m in self.modalities})
        self.fusion = nn.TransformerEncoderLayer(
            hidden, config.misa_heads, dim_feedforward=hidden, dropout=config.dropout,
            batch_first=True,
        )
        vectors = 2 * len(self.modalities)
        self.head = nn.Sequential(
            nn.Linear(vectors * hidden, config.head_hidden), nn.ReLU(),
            nn.Dropout(config.dropout), nn.Linear(config.head_hidden, 1),
        )
        self._init_new_weights()

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
        """Prediction (B,) and, with labels, loss = task + a*sim + b*diff + g*recon."""
        last = self.text_encoder(input_ids, attention_mask)[-1]  # (B, L, H)
        utterances = {"text": pool_tokens(last, attention_mask, "mean")}  # (B, H)
        frames = {"audio": (audio, audio_lengths), "vision": (vision, vision_lengths)}
        for m in self.modalities[1:]:
            utterances[m] = self._encode_modality(m, *frames[m]).summary  # (B, D_av)
        projected = {m: self.project[m](u) for m, u in utterances.items()}  # each (B, d_h)
        invariant = {m: self.shared(p) for m, p in projected.items()}  # each (B, d_h)
        specific = {m: self.private[m](p) for m, p in projected.items()}  # each (B, d_h)

        # [h_c^t, h_c^a, (h_c^v), h_p^t, h_p^a, (h_p^v)]: (B, 2M, d_h) -> transformer -> (B, 2M*d_h)
        stacked = torch.stack([invariant[m] for m in self.modalities]
                              + [specific[m] for m in self.modalities], dim=1)
        fused = self.fusion(stacked).flatten(1)
        prediction = self.head(fused).squeeze(-1)  # (B, 1) -> (B,)
        if labels is None:
            return PSAMFOutput(prediction=prediction)

        labels = labels.to(prediction.dtype)
        task_loss = F.mse_loss if self.config.misa_task_loss == "mse" else F.l1_loss
        losses = {
            "task": task_loss(prediction, labels),
            "sim": self.similarity_loss(invariant),
            "diff": self.difference_loss(invariant, specific),
            "recon": self.reconstruction_loss(projected, invariant, specific),
        }
        config = self.config
        loss = (losses["task"] + config.misa_alpha * losses["sim"]
                + config.misa_beta * losses["diff"] + config.misa_gamma * losses["recon"])
        return PSAMFOutput(prediction=prediction, loss=loss, losses=losses)

    def similarity_loss(self, invariant: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean CMD over the pairs of present modalities; 0 with one modality (no pair)."""
        pairs = list(combinations(invariant, 2))
        if not pairs:
            return next(iter(invariant.values())).new_zeros(())
        moments = self.config.misa_cmd_moments
        return sum(cmd(invariant[a], invariant[b], moments) for a, b in pairs) / len(pairs)

    def difference_loss(
        self, invariant: dict[str, torch.Tensor], specific: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Invariant vs specific per modality, plus specific vs specific per pair."""
        options = {"normalize": self.config.misa_diff_normalize,
                   "reduction": self.config.misa_diff_reduction}
        total = sum(soft_orthogonality(invariant[m], specific[m], **options) for m in invariant)
        for a, b in combinations(specific, 2):
            total = total + soft_orthogonality(specific[a], specific[b], **options)
        return total

    def reconstruction_loss(
        self, projected: dict[str, torch.Tensor], invariant: dict[str, torch.Tensor],
        specific: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """Mean over modalities of MSE(u_m, D_m(h_c^m + h_p^m)) against the projected u_m."""
        terms = [F.mse_loss(self.decoder[m](invariant[m] + specific[m]), projected[m])
                 for m in projected]
        return sum(terms) / len(terms)
