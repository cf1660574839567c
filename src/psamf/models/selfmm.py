"""Self-MM (Yu et al., AAAI 2021): multimodal + unimodal heads, unimodal labels self-generated.

Shared features: F_t the fine-tuned text encoder's sentence vector ([CLS] by default,
``sentence_pooling``), F_a / F_v the last state of one LSTM per frame modality (``av_encoders``).
Heads (paper, Sec. "Multimodal Sentiment Analysis Task"):
    F*_m = ReLU(W_m [F_t; F_a; F_v] + b),  ŷ_m = w_m F*_m + b      (the prediction)
    F*_s = ReLU(W_s F_s + b),              ŷ_s = w_s F*_s + b      s in {t, a, v}

Unimodal Label Generation Module (ULGM). For each head s (m included) a positive and a negative
class centre C^p_s, C^n_s of F*_s. Distances are normalised by the width d_s:
    D^p_s = ||F*_s - C^p_s||² / sqrt(d_s),   D^n_s likewise,
    α_s   = (D^n_s - D^p_s) / (D^p_s + ε)            (relative distance: large = near positive)
The paper combines two assumptions, y_s / y_m = α_s / α_m and y_s - y_m = α_s - α_m, with equal
weight:
    y_s = y_m + δ_sm,   δ_sm = (α_s - α_m) (y_m + α_m) / (2 α_m)
Loss (paper): L = mean_i [ |ŷ_m - y_m| + Σ_s w_s |ŷ_s - y_s| ],  w_s = tanh(|y_s - y_m|), the
weights and generated labels being targets (no gradient).

SIMPLIFICATION (``selfmm_label_memory=False``, the only mode built): the paper keeps every
training sample's features and generated labels (its centres are over the whole training set,
and y_s is updated per sample across epochs with momentum (i-1)/(i+1) · old + 2/(i+1) · new).
psamf's batch carries no sample index, and adding one would change the shared batch builder and
trainer for one model; so here the centres are running means over training batches (EMA with
``selfmm_centre_momentum``) kept in registered buffers (saved with every checkpoint), and each
batch's unimodal labels are generated from the current centres. The momentum across epochs thus
acts on the centres the labels are read from, not on per-sample labels. The multimodal centres
split samples by the human label's sign, the unimodal ones by the generated label's sign (as
in the paper, where the previous unimodal labels decide). A centre never seen yet (e.g. labels
that are all positive, or the first batch) gives δ = 0: y_s = y_m.

Absent modalities (``audio_dim`` / ``vision_dim`` None, or ``text_only``): no encoder, head,
centres or loss term for them; the multimodal head reads the modalities present. A sample whose
frames are missing (length 0) gets a zero F_s as in PSA-MF.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from psamf.errors import InputError
from psamf.models.av_encoders import AVEncoder
from psamf.models.config import PSAMFConfig
from psamf.models.psamf import PSAMFOutput, _TextModel
from psamf.models.registry import register_model
from psamf.models.text_encoder import pool_tokens

_EPS = 1e-8
UNIMODAL: tuple[str, ...] = ("text", "audio", "vision")  # the unimodal heads, in paper order


class ClassCentres(nn.Module):
    """Positive / negative centres of one head's representation, as buffers (checkpointed)."""

    def __init__(self, width: int, momentum: float) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("centres", torch.zeros(2, width))  # row 0 positive, row 1 negative
        self.register_buffer("seen", torch.zeros(2))  # batches that updated each row

    @torch.no_grad()
    def update(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Move each centre toward the mean of this batch's samples of its sign (EMA)."""
        for row, members in enumerate((labels > 0, labels < 0)):
            if not members.any():
                continue
            batch_centre = features[members].mean(dim=0)  # (n, d) -> (d,)
            # The first batch sets the centre; later ones move it by (1 - momentum).
            keep = self.momentum if self.seen[row] > 0 else 0.0
            self.centres[row] = keep * self.centres[row] + (1 - keep) * batch_centre
            self.seen[row] += 1

    @property
    def ready(self) -> bool:
        return bool((self.seen > 0).all())

    def relative_distance(self, features: torch.Tensor) -> torch.Tensor:
        """α (B,) = (D^n - D^p) / (D^p + ε), D = ||F - C||² / sqrt(d)."""
        scale = features.shape[-1] ** 0.5
        d_pos = (features - self.centres[0]).pow(2).sum(-1) / scale  # (B, d) -> (B,)
        d_neg = (features - self.centres[1]).pow(2).sum(-1) / scale  # (B,)
        return (d_neg - d_pos) / (d_pos + _EPS)


def generate_label(
    y_m: torch.Tensor, alpha_m: torch.Tensor, alpha_s: torch.Tensor, clip: float | None
) -> torch.Tensor:
    """y_s = y_m + (α_s - α_m)(y_m + α_m) / (2 α_m); δ = 0 where α_m ~ 0 (the ratio is
    undefined there), then clipped to [-clip, clip] when ``clip`` is set."""
    safe = alpha_m.abs() > 1e-6
    denom = torch.where(safe, alpha_m, torch.ones_like(alpha_m))
    offset = torch.where(safe, (alpha_s - alpha_m) * (y_m + alpha_m) / (2 * denom),
                         torch.zeros_like(y_m))
    y_s = y_m + offset
    return y_s if clip is None else y_s.clamp(-clip, clip)


@register_model("self_mm", personality=False, modalities=("audio", "vision"))
class SelfMM(_TextModel):
    """Self-MM: see the module docstring for the heads, label generation and loss."""

    def __init__(self, config: PSAMFConfig) -> None:
        super().__init__()
        self._load_text_encoder(config)
        widths = config.modality_widths()
        self.frame_modalities = tuple(m for m in ("audio", "vision") if m in widths)
        self.encoders = nn.ModuleDict({
            m: AVEncoder(input_dim=widths[m], hidden=config.av_hidden)
            for m in self.frame_modalities
        })
        feature_width = {"text": self.text_encoder.hidden_size,
                         **{m: config.av_hidden for m in self.frame_modalities}}
        self.unimodal = tuple(m for m in UNIMODAL if m in feature_width)
        hidden = config.selfmm_hidden
        self.dropout = nn.Dropout(config.dropout)
        fused_width = sum(feature_width[m] for m in self.unimodal)
        self.hidden = nn.ModuleDict({
            "multimodal": nn.Linear(fused_width, hidden),
            **{m: nn.Linear(feature_width[m], hidden) for m in self.unimodal},
        })
        self.out = nn.ModuleDict({name: nn.Linear(hidden, 1) for name in self.hidden})
        self.centres = nn.ModuleDict({
            name: ClassCentres(hidden, config.selfmm_centre_momentum) for name in self.hidden
        })
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
        last = self.text_encoder(input_ids, attention_mask)[-1]  # (B, L, H)
        features = {"text": pool_tokens(last, attention_mask, self.config.sentence_pooling)}
        frames = {"audio": (audio, audio_lengths), "vision": (vision, vision_lengths)}
        for m in self.frame_modalities:
            feats, lengths = frames[m]
            if feats is None or lengths is None:
                raise InputError(f"self_mm was built with {m}_dim set: pass {m} and "
                                 f"{m}_lengths, or build it with {m}_dim=None")
            features[m] = self.encoders[m](feats, lengths).summary  # (B, D)
        fused = torch.cat([features[m] for m in self.unimodal], dim=-1)  # (B, ΣH_s)
        inputs = {"multimodal": fused, **features}
        reps = {name: F.relu(self.hidden[name](self.dropout(x))) for name, x in inputs.items()}
        preds = {name: self.out[name](r).squeeze(-1) for name, r in reps.items()}  # (B,)
        prediction = preds["multimodal"]
        if labels is None:
            return PSAMFOutput(prediction=prediction)

        y_m = labels.to(prediction.dtype)
        targets = self._unimodal_labels(y_m, {k: v.detach() for k, v in reps.items()})
        task = F.l1_loss(prediction, y_m)
        losses = {"task": task}
        for m in self.unimodal:
            weight = torch.tanh((targets[m] - y_m).abs())  # (B,), a target: no gradient
            losses[m] = (weight * (preds[m] - targets[m]).abs()).mean()
        loss = task + self.config.selfmm_unimodal_weight * sum(losses[m] for m in self.unimodal)
        return PSAMFOutput(prediction=prediction, loss=loss, losses=losses)

    @torch.no_grad()
    def _unimodal_labels(
        self, y_m: torch.Tensor, reps: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Generated y_s per unimodal head from the current centres; in training the centres
        then take this batch in (multimodal by y_m's sign, unimodal by y_s's sign)."""
        centres_m = self.centres["multimodal"]
        targets = {}
        for m in self.unimodal:
            centres_s = self.centres[m]
            if centres_m.ready and centres_s.ready:
                alpha_m = centres_m.relative_distance(reps["multimodal"])  # (B,)
                alpha_s = centres_s.relative_distance(reps[m])  # (B,)
                targets[m] = generate_label(y_m, alpha_m, alpha_s, self.config.selfmm_label_clip)
            else:
                targets[m] = y_m.clone()
        if self.training:
            centres_m.update(reps["multimodal"], y_m)
            for m in self.unimodal:
                self.centres[m].update(reps[m], targets[m])
        return targets
