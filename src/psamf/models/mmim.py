"""MMIM baseline: hierarchical mutual-information maximisation (Han et al., EMNLP 2021).

Reads top to bottom like the paper:

1. Unimodal vectors X_m: text = the fine-tuned encoder's first-token ([CLS]) state (or the masked
   mean, ``mmim_text_pooling``); audio and vision = the LSTM summary of ``av_encoders.AVEncoder``.
2. Fusion network: [X_t; X_a; X_v] -> Linear -> ReLU -> Dropout -> Linear -> tanh = Z (width
   ``mmim_hidden``); the regression head maps Z to the prediction.
3. Input-level MI, I(X_t; X_a) and I(X_t; X_v): the Barber-Agakov lower bound the paper builds,
   I(X; Y) >= H(Y) + E[log q(Y | X)], with q a diagonal Gaussian whose mean and log-variance an MLP
   predicts from X_t. We build BA (not CPC) here because the paper does: it bounds the MI between
   two *different* modalities with a generative predictor and keeps CPC for the fusion level.
   H(Y) is the entropy of a Gaussian fitted to the batch (the authors fit two Gaussians, split by
   sentiment sign, over this batch and the previous one; not built). ``mmim_ba_form`` picks the
   estimate: ``"authors"`` (default; their log q without the log-variance term, H(Y) on a fixed
   tanh projection, so the estimate stays <= about 0) or ``"gaussian"`` (the exact Gaussian
   log-density and a diagonal H(Y); it grows without bound when trained jointly).
4. Fusion-level MI: CPC / InfoNCE. For each present modality m, a linear G_m maps Z to X_m's space;
   with both sides L2-normalised, score_ij = <G_m(z_i), x_m,j>, the positives are the diagonal and
   the other utterances of the batch are the negatives: CPC_m = mean_i log softmax_j(score)_ii
   (<= 0; log(B) plus it lower-bounds I(Z; X_m)).
5. Loss = task + alpha * (-MI_input) + beta * (-CPC), summed over modality terms (the authors'
   code names the weights the other way round: alpha on CPC, beta on BA). The authors' code
   trains in two stages per epoch (a pass training the BA predictors on their likelihood alone,
   with their own optimiser, then a pass on the rest); we optimise the one joint loss, so every
   parameter is trained by one optimiser.

An absent modality (``audio_dim`` / ``vision_dim`` None) contributes no vector, no input-level MI
term and no CPC term: MOSEI (text only) trains on X_t with MI_input = 0 and the text CPC term.
Utterances whose audio has 0 frames get the zero LSTM summary in the fusion and are left out of
that modality's MI terms (a term is 0 when fewer than two utterances have the modality).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from psamf.models.av_encoders import AVEncoder
from psamf.models.config import PSAMFConfig
from psamf.models.psamf import PSAMFOutput, _TextModel
from psamf.models.registry import register_model
from psamf.models.text_encoder import pool_tokens

MMIM_MODALITIES: tuple[str, ...] = ("text", "audio", "vision")


class GaussianBA(nn.Module):
    """Barber-Agakov bound I(X; Y) >= H(Y) + E log q(y | x), q = N(mu(x), diag exp(logvar(x))).

    ``form`` (``mmim_ba_form``) picks the estimate:

    * ``"gaussian"``: the exact Gaussian log-density (with its -logvar/2 and 2*pi terms) and H(Y)
      of a diagonal Gaussian fitted to the batch (variance floor 1e-4). Unbounded in practice:
      jointly trained, the encoders make Y predictable and the predicted variance shrinks to the
      clamp (+5 nats per dimension), and H(Y) grows with the scale of Y.
    * ``"authors"``: the declare-lab code's estimate. log q keeps only -(y - mu)^2 / (2 var)
      (<= 0), and H(Y) = log det(Cov)/2 of tanh(P y), P a fixed random projection to Dy // 4
      dimensions (trained by no loss, as theirs), plus a 1e-4 ridge; tanh bounds each variance
      by 1, so H(Y) <= (Dy // 4) * log(1 + 1e-4) / 2 and the whole estimate is <= about 0.
    """

    def __init__(self, x_dim: int, y_dim: int, hidden: int, form: str = "authors") -> None:
        super().__init__()
        self.form = form
        self.body = nn.Sequential(nn.Linear(x_dim, hidden), nn.ReLU())
        self.mean = nn.Linear(hidden, y_dim)
        self.logvar = nn.Linear(hidden, y_dim)
        if form == "authors":
            self.entropy_proj = nn.Linear(y_dim, max(1, y_dim // 4)).requires_grad_(False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x (B, Dx), y (B, Dy) -> the bound in nats (scalar); 0 when B < 2."""
        if x.shape[0] < 2:
            return x.new_zeros(())
        h = self.body(x)  # (B, hidden)
        # the clamp keeps exp(logvar) finite; the authors' logvar is unclamped
        mean, logvar = self.mean(h), self.logvar(h).clamp(-10.0, 10.0)  # (B, Dy) each
        if self.form == "authors":
            log_q = -0.5 * (y - mean).pow(2) / logvar.exp()  # (B, Dy), <= 0
            z = torch.tanh(self.entropy_proj(y))  # (B, k), entries in (-1, 1)
            centred = z - z.mean(0)  # (B, k)
            # the ridge keeps log det finite when B <= k or a direction is constant
            cov = centred.T @ centred / z.shape[0] + 1e-4 * torch.eye(z.shape[1], dtype=z.dtype,
                                                                     device=z.device)
            return 0.5 * torch.logdet(cov) + log_q.sum(1).mean()
        log_q = -0.5 * (logvar + (y - mean).pow(2) / logvar.exp() + math.log(2 * math.pi))
        # H(Y) of a diagonal Gaussian fitted to the batch; the floor keeps log finite when a
        # dimension is constant (e.g. a zeroed summary).
        variance = y.var(0, unbiased=True).clamp(min=1e-4)  # (Dy,)
        entropy = 0.5 * (variance.log() + math.log(2 * math.pi * math.e)).sum()
        return entropy + log_q.sum(1).mean()


class CPC(nn.Module):
    """InfoNCE score of predicting target rows from fused rows, in-batch negatives (<= 0)."""

    def __init__(self, fused_dim: int, target_dim: int) -> None:
        super().__init__()
        self.predict = nn.Linear(fused_dim, target_dim)

    def forward(self, fused: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """fused (B, Dz), target (B, Dm) -> mean log-probability of the true pair; 0 when B < 2."""
        if fused.shape[0] < 2:
            return fused.new_zeros(())
        pred = F.normalize(self.predict(fused), dim=1)  # (B, Dm)
        target = F.normalize(target, dim=1)  # (B, Dm)
        scores = pred @ target.transpose(0, 1)  # (B, B): row i against every target j
        return scores.log_softmax(dim=1).diagonal().mean()


@register_model("mmim", personality=False, modalities=("audio", "vision"))
class MMIM(_TextModel):
    """MMIM with the shared text encoder; options are the ``mmim_*`` fields of PSAMFConfig."""

    def __init__(self, config: PSAMFConfig) -> None:
        super().__init__()
        self._load_text_encoder(config)
        hidden = config.mmim_hidden
        widths = config.modality_widths()
        self.modalities = ("text",) + tuple(m for m in MMIM_MODALITIES[1:] if m in widths)
        self.av_encoders = nn.ModuleDict(
            {m: AVEncoder(input_dim=widths[m], hidden=config.av_hidden) for m in widths}
        )
        dims = {"text": self.text_encoder.hidden_size, "audio": config.av_hidden,
                "vision": config.av_hidden}
        self.fusion = nn.Sequential(
            nn.Linear(sum(dims[m] for m in self.modalities), hidden), nn.ReLU(),
            nn.Dropout(config.dropout), nn.Linear(hidden, hidden), nn.Tanh(),
        )
        self.head = nn.Sequential(
            nn.Linear(hidden, config.head_hidden), nn.ReLU(),
            nn.Dropout(config.dropout), nn.Linear(config.head_hidden, 1),
        )
        self.input_mi = nn.ModuleDict(
            {m: GaussianBA(dims["text"], dims[m], hidden, config.mmim_ba_form)
             for m in self.modalities[1:]}
        )
        self.cpc = nn.ModuleDict({m: CPC(hidden, dims[m]) for m in self.modalities})
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
        """Prediction (B,) and, with labels, loss = task - alpha*MI_input - beta*CPC."""
        last = self.text_encoder(input_ids, attention_mask)[-1]  # (B, L, H)
        vectors = {"text": pool_tokens(last, attention_mask, self.config.mmim_text_pooling)}
        present = {"text": torch.ones_like(attention_mask[:, 0], dtype=torch.bool)}  # (B,)
        frames = {"audio": (audio, audio_lengths), "vision": (vision, vision_lengths)}
        for m in self.modalities[1:]:
            encoding = self._encode_modality(m, *frames[m])
            vectors[m], present[m] = encoding.summary, encoding.present  # (B, D_av), (B,)
        # [X_t; X_a; X_v]: (B, H + 2*D_av) -> (B, d)
        fused = self.fusion(torch.cat([vectors[m] for m in self.modalities], dim=1))
        prediction = self.head(fused).squeeze(-1)  # (B, 1) -> (B,)
        if labels is None:
            return PSAMFOutput(prediction=prediction)

        labels = labels.to(prediction.dtype)
        task_loss = F.l1_loss if self.config.mmim_task_loss == "l1" else F.mse_loss
        zero = prediction.new_zeros(())
        mi_input = sum((self.input_mi[m](vectors["text"][present[m]], vectors[m][present[m]])
                        for m in self.modalities[1:]), zero)
        cpc = sum((self.cpc[m](fused[present[m]], vectors[m][present[m]])
                   for m in self.modalities), zero)
        losses = {"task": task_loss(prediction, labels), "mi_input": mi_input, "cpc": cpc}
        loss = (losses["task"] - self.config.mmim_alpha * mi_input
                - self.config.mmim_beta * cpc)
        return PSAMFOutput(prediction=prediction, loss=loss, losses=losses)
