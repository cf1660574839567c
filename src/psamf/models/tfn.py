"""TFN, the Tensor Fusion Network (Zadeh et al., EMNLP 2017), beside PSA-MF on the same batch.

Unimodal subnetworks give z_t (text), z_a (audio), z_v (vision); each is extended with a constant
1 and the three are fused by their outer product [z_t; 1] ⊗ [z_a; 1] ⊗ [z_v; 1], which holds the
unimodal vectors themselves (the slices where the other two read 1), every bimodal product and the
trimodal one. The flattened tensor goes through the post-fusion MLP to one regression output.

- Text: the paper runs an LSTM over GloVe vectors followed by fully connected layers; here the
  fine-tuned text encoder replaces the LSTM: its last layer is pooled (``tfn_text_pooling``:
  ``"mean"`` over real tokens, default, or the ``"first"`` token) and one Linear+ReLU layer maps it
  to ``tfn_text_hidden`` (128 in the paper).
- Audio / vision: the paper's subnetwork, a 3-layer ReLU DNN (``tfn_av_hidden`` units, 32 in the
  paper) on the features averaged over the utterance's valid frames (``*_lengths``).
- A modality absent from the dataset (``audio_dim`` / ``vision_dim`` None) has no subnetwork; its
  extended vector is the constant 1 alone, so its axis of the tensor collapses to width 1. A sample
  with 0 frames of a modality the dataset has gets a zero unimodal vector: its tensor then keeps
  only the other modalities' terms (and the constant).
- Post-fusion: dropout, two ReLU layers of ``tfn_post_hidden`` (128), a linear output; L1 loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from psamf.errors import InputError
from psamf.models.config import PSAMFConfig
from psamf.models.psamf import PSAMFOutput, _TextModel
from psamf.models.registry import register_model
from psamf.models.text_encoder import pool_tokens

MODALITY_ORDER: tuple[str, ...] = ("text", "audio", "vision")  # the tensor's axes, in order


def masked_frame_mean(features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean of features (B, T, d) over each row's first ``lengths`` frames; zeros for length 0."""
    batch, frames, _ = features.shape
    lengths = lengths.to(device=features.device, dtype=torch.long)
    if lengths.shape != (batch,) or (lengths < 0).any() or (lengths > frames).any():
        raise InputError(f"lengths must be (B,) in [0, {frames}], got {lengths.tolist()}")
    valid = torch.arange(frames, device=features.device)[None, :] < lengths[:, None]  # (B, T)
    weights = valid.unsqueeze(-1).to(features.dtype)  # (B, T, 1)
    return (features * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, d)


class AveragedDNN(nn.Module):
    """The paper's audio / visual subnetwork: 3 ReLU layers on the frame-averaged features."""

    def __init__(self, input_dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.net = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(input_dim, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
        )

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if features.shape[-1] != self.input_dim:
            raise InputError(
                f"features have width {features.shape[-1]}, the model was built for "
                f"{self.input_dim}; set audio_dim / vision_dim in the model config to the data's"
            )
        present = (lengths > 0).to(device=features.device, dtype=features.dtype)  # (B,)
        z = self.net(masked_frame_mean(features, lengths))  # (B, d) -> (B, hidden)
        return z * present.unsqueeze(-1)  # a sample without frames contributes nothing


class UnimodalSubnets(_TextModel):
    """Text encoder + projection, and one AveragedDNN per modality the dataset has.

    Shared by TFN and LMF (the LMF paper reuses TFN's unimodal subnetworks).
    """

    def _build_subnets(self, config: PSAMFConfig, *, text_hidden: int, av_hidden: int,
                       pooling: str) -> None:
        self._load_text_encoder(config)
        self.text_pooling = pooling
        self.text_net = nn.Sequential(
            nn.Dropout(config.dropout), nn.Linear(self.text_encoder.hidden_size, text_hidden),
            nn.ReLU(),
        )
        widths = config.modality_widths()  # only the modalities the data has
        self.av_nets = nn.ModuleDict(
            {m: AveragedDNN(w, av_hidden, config.dropout) for m, w in widths.items()}
        )
        self.unimodal_dims = {"text": text_hidden, **{m: av_hidden for m in widths}}

    def unimodal(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
        av: dict[str, tuple[torch.Tensor | None, torch.Tensor | None]],
    ) -> dict[str, torch.Tensor]:
        """{"text": z_t (B, dt), "audio": z_a (B, da), ...} for the modalities built."""
        last = self.text_encoder(input_ids, attention_mask)[-1]  # (B, L, H)
        pooled = pool_tokens(last, attention_mask, self.text_pooling)  # (B, H)
        vectors = {"text": self.text_net(pooled)}  # (B, dt)
        for name, net in self.av_nets.items():
            features, lengths = av[name]
            if features is None or lengths is None:
                raise InputError(f"the model was built with {name} features "
                                 f"({name}_dim={net.input_dim}); pass {name} and {name}_lengths")
            vectors[name] = net(features, lengths)  # (B, d_m)
        return vectors

    def extended(self, vectors: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """[z_m; 1] for text, audio, vision in that order; a modality not built is just [1]."""
        text = vectors["text"]
        one = text.new_ones(text.shape[0], 1)  # (B, 1)
        return [torch.cat([vectors[m], one], dim=1) if m in vectors else one
                for m in MODALITY_ORDER]  # 3 x (B, d_m + 1)


def task_output(prediction: torch.Tensor, labels: torch.Tensor | None) -> PSAMFOutput:
    """The prediction and, with labels, its L1 task loss."""
    if labels is None:
        return PSAMFOutput(prediction=prediction)
    task = F.l1_loss(prediction, labels.to(prediction.dtype))
    return PSAMFOutput(prediction=prediction, loss=task, losses={"task": task})


@register_model("tfn", personality=False, modalities=("audio", "vision"))
class TFN(UnimodalSubnets):
    """Tensor Fusion Network regression model (see the module docstring)."""

    def __init__(self, config: PSAMFConfig) -> None:
        super().__init__()
        self._build_subnets(config, text_hidden=config.tfn_text_hidden,
                            av_hidden=config.tfn_av_hidden, pooling=config.tfn_text_pooling)
        fused = 1
        for m in MODALITY_ORDER:
            fused *= self.unimodal_dims.get(m, 0) + 1  # an absent modality's axis has width 1
        self.fused_dim = fused
        hidden = config.tfn_post_hidden
        self.post_fusion = nn.Sequential(
            nn.Dropout(config.dropout),
            nn.Linear(fused, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 1),
        )
        self._init_new_weights()

    def fuse(self, vectors: dict[str, torch.Tensor]) -> torch.Tensor:
        """The flattened tensor (B, (dt+1)(da+1)(dv+1)) of the extended unimodal vectors."""
        text, audio, vision = self.extended(vectors)  # (B, dt+1), (B, da+1), (B, dv+1)
        cube = torch.einsum("bi,bj,bk->bijk", text, audio, vision)  # (B, dt+1, da+1, dv+1)
        return cube.flatten(1)  # (B, (dt+1)(da+1)(dv+1))

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
        prediction = self.post_fusion(self.fuse(vectors)).squeeze(-1)  # (B, 1) -> (B,)
        return task_output(prediction, labels)
