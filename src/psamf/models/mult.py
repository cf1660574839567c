"""MulT (Tsai et al., ACL 2019): directional crossmodal transformers over unaligned sequences.

From the paper:
1. A temporal 1-D convolution projects each modality's sequence to a common width d (text: the
   fine-tuned encoder's last hidden states; audio / vision: the frame features), then sinusoidal
   positional encodings are added.
2. For each target modality and each other source modality, a crossmodal transformer (D layers of
   pre-LayerNorm blocks: queries from the target, keys/values from the source, then a position-wise
   feed-forward) adapts the target sequence to the source. Key padding masks come from the lengths,
   so padded source frames are never attended.
3. Per target, the crossmodal outputs are concatenated on the feature axis, (B, T, k*d), and a
   self-attention transformer runs over them; its last valid element is the target's summary.
4. The summaries of all targets are concatenated and a residual MLP regresses the score (L1 loss,
   as the paper trains MOSI / MOSEI).

A modality absent from the data (``audio_dim`` / ``vision_dim`` None) is neither a target nor a
source: the crossmodal transformers that would read it are not built. With text only there are no
crossmodal transformers at all and MulT reduces to a self-attention transformer over the projected
text sequence (its last token through the head). A sample whose source has no frames gets a zero
crossmodal attention output for it (the block then keeps its residual path); a target with no
frames contributes a zero summary.

Paper defaults (its Table 5, CMU-MOSI): d = 40, D = 4 crossmodal blocks, 10 heads, kernels 1 or 3
(text) / 3 / 3, text embedding dropout 0.2, attention dropout 0.2, output dropout 0.1. Ours
(``mult_*`` in PSAMFConfig) are smaller for CPU runs; see the config docstring.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from psamf.errors import InputError
from psamf.models.config import PSAMFConfig
from psamf.models.psamf import PSAMFOutput, _TextModel
from psamf.models.registry import register_model

TARGET_ORDER: tuple[str, ...] = ("text", "audio", "vision")  # the paper's L, A, V


def sinusoidal_positions(length: int, width: int, device: torch.device) -> torch.Tensor:
    """(T, d) fixed sinusoidal encodings (Vaswani et al. 2017); odd widths drop the last cosine."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]  # (T, 1)
    rate = torch.exp(torch.arange(0, width, 2, device=device, dtype=torch.float32)
                     * (-math.log(10000.0) / width))  # (ceil(d/2),)
    angles = position * rate  # (T, ceil(d/2))
    table = torch.zeros(length, width, device=device)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles)[:, : width // 2]
    return table


class AttentionBlock(nn.Module):
    """One pre-LN transformer layer; crossmodal when a source is given, self-attention otherwise.

    Z' = Attn(LN(Z), LN(S), LN(S)) + LN(Z);  Z'' = FFN(LN(Z')) + LN(Z'), as in the paper's eq. for
    the crossmodal transformer (the residual adds the normalised input).
    """

    def __init__(self, width: int, heads: int, *, crossmodal: bool, attn_dropout: float,
                 dropout: float) -> None:
        super().__init__()
        self.norm_query = nn.LayerNorm(width)
        # Self-attention reads the normalised query as keys: no second norm to leave untrained.
        self.norm_source = nn.LayerNorm(width) if crossmodal else None
        self.attention = nn.MultiheadAttention(width, heads, dropout=attn_dropout,
                                               batch_first=True)
        self.norm_ff = nn.LayerNorm(width)
        self.feed_forward = nn.Sequential(
            nn.Linear(width, 4 * width), nn.ReLU(), nn.Dropout(dropout), nn.Linear(4 * width, width)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, target: torch.Tensor, source: torch.Tensor | None,
                source_padding: torch.Tensor) -> torch.Tensor:
        """target (B, T_q, d); source (B, T_k, d), None for self-attention; padding (B, T_k),
        True = padded key."""
        query = self.norm_query(target)  # (B, T_q, d)
        keys = query if self.norm_source is None else self.norm_source(source)  # (B, T_k, d)
        # A row with every key padded would give NaN (softmax over nothing): attend to its padding
        # instead and zero the result, so the sample keeps its residual path only.
        empty = source_padding.all(dim=1)  # (B,)
        mask = source_padding & ~empty[:, None]  # (B, T_k)
        attended, _ = self.attention(query, keys, keys, key_padding_mask=mask,
                                     need_weights=False)  # (B, T_q, d)
        attended = attended.masked_fill(empty[:, None, None], 0.0)
        hidden = self.dropout(attended) + query  # (B, T_q, d)
        normed = self.norm_ff(hidden)
        return self.dropout(self.feed_forward(normed)) + normed  # (B, T_q, d)


class Transformer(nn.Module):
    """A stack of AttentionBlocks (all crossmodal to one source, or all self-attention)."""

    def __init__(self, width: int, heads: int, layers: int, *, crossmodal: bool,
                 attn_dropout: float, dropout: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            AttentionBlock(width, heads, crossmodal=crossmodal, attn_dropout=attn_dropout,
                           dropout=dropout)
            for _ in range(layers)
        )
        self.norm = nn.LayerNorm(width)  # pre-LN stacks end with a LayerNorm

    def forward(self, target: torch.Tensor, target_padding: torch.Tensor,
                source: torch.Tensor | None = None,
                source_padding: torch.Tensor | None = None) -> torch.Tensor:
        crossmodal = source is not None
        padding = source_padding if crossmodal else target_padding
        hidden = target
        for block in self.blocks:
            # Self-attention reads the current layer's states as keys; crossmodal keeps the source.
            hidden = block(hidden, source if crossmodal else None, padding)
        return self.norm(hidden)  # (B, T_q, d)


@register_model("mult", personality=False, modalities=("audio", "vision"))
class MulT(_TextModel):
    """Multimodal Transformer over the text encoder's states and the frame features."""

    def __init__(self, config: PSAMFConfig) -> None:
        super().__init__()
        self._load_text_encoder(config)
        widths = {"text": self.text_encoder.hidden_size, **config.modality_widths()}
        self.modalities = tuple(m for m in TARGET_ORDER if m in widths)
        d = config.mult_width
        kernels = {m: config.mult_text_kernel if m == "text" else config.mult_av_kernel
                   for m in self.modalities}
        # Odd kernels with same-padding keep the length T (validate() refuses even ones).
        self.projections = nn.ModuleDict({
            m: nn.Conv1d(widths[m], d, kernels[m], padding=kernels[m] // 2, bias=False)
            for m in self.modalities
        })
        self.text_dropout = nn.Dropout(config.mult_text_dropout)
        block = {"attn_dropout": config.mult_attn_dropout, "dropout": config.mult_dropout}
        # crossmodal["audio_to_text"]: queries from text, keys/values from audio.
        self.crossmodal = nn.ModuleDict({
            f"{source}_to_{target}": Transformer(d, config.mult_heads, config.mult_layers,
                                                 crossmodal=True, **block)
            for target in self.modalities for source in self.modalities if source != target
        })
        self.self_attention = nn.ModuleDict({
            target: Transformer(d * max(1, len(self.modalities) - 1), config.mult_heads,
                                config.mult_self_layers, crossmodal=False, **block)
            for target in self.modalities
        })
        fused = sum(d * max(1, len(self.modalities) - 1) for _ in self.modalities)
        self.head_hidden = nn.Linear(fused, fused)
        self.head_residual = nn.Linear(fused, fused)
        self.head_out = nn.Linear(fused, 1)
        self.out_dropout = nn.Dropout(config.mult_out_dropout)
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
        """Prediction (B,) and, with ``labels``, the L1 loss. Modalities not built are ignored."""
        text = self.text_encoder(input_ids, attention_mask)[-1]  # (B, L, H)
        inputs = {"text": (self.text_dropout(text), attention_mask.sum(dim=1))}
        for name, (features, lengths) in {"audio": (audio, audio_lengths),
                                          "vision": (vision, vision_lengths)}.items():
            if name in self.modalities:
                inputs[name] = self._check_frames(name, features, lengths, text.shape[0])
        sequences, paddings = {}, {}
        for m in self.modalities:
            sequences[m], paddings[m] = self._project(m, *inputs[m])
        summaries = [self._summarise(target, sequences, paddings) for target in self.modalities]
        fused = torch.cat(summaries, dim=-1)  # (B, n * k*d)
        hidden = self.head_residual(self.out_dropout(F.relu(self.head_hidden(fused)))) + fused
        prediction = self.head_out(hidden).squeeze(-1)  # (B, 1) -> (B,)
        if labels is None:
            return PSAMFOutput(prediction=prediction)
        task = F.l1_loss(prediction, labels.to(prediction.dtype))
        return PSAMFOutput(prediction=prediction, loss=task, losses={"task": task})

    def _project(self, name: str, features: torch.Tensor,
                 lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Temporal conv + positions: (B, T, d_m) -> (B, T, d) and its padding (B, T)."""
        frames = features.shape[1]
        steps = torch.arange(frames, device=features.device)  # (T,)
        padding = steps[None, :] >= lengths.to(features.device)[:, None]  # (B, T)
        # Zero the padding first so a kernel > 1 cannot carry padded values into real frames.
        features = features.masked_fill(padding.unsqueeze(-1), 0.0)
        conv = self.projections[name]
        projected = conv(features.to(conv.weight.dtype).transpose(1, 2)).transpose(1, 2)
        positions = sinusoidal_positions(frames, projected.shape[-1], features.device)  # (T, d)
        return projected + positions.to(projected.dtype), padding  # (B, T, d)

    def _summarise(self, target: str, sequences: dict[str, torch.Tensor],
                   paddings: dict[str, torch.Tensor]) -> torch.Tensor:
        """The target's crossmodal outputs, concatenated, self-attended; its last valid element."""
        sources = [s for s in self.modalities if s != target]
        if sources:
            adapted = torch.cat([
                self.crossmodal[f"{s}_to_{target}"](sequences[target], paddings[target],
                                                    sequences[s], paddings[s])
                for s in sources
            ], dim=-1)  # k x (B, T, d) -> (B, T, k*d)
        else:  # text only: a plain transformer over the text
            adapted = sequences[target]  # (B, T, d)
        states = self.self_attention[target](adapted, paddings[target])  # (B, T, k*d)
        lengths = (~paddings[target]).sum(dim=1)  # (B,)
        last = (lengths - 1).clamp(min=0)  # (B,)
        summary = states[torch.arange(states.shape[0], device=states.device), last]  # (B, k*d)
        return summary * (lengths > 0).unsqueeze(-1).to(summary.dtype)

    def _check_frames(
        self, name: str, features: torch.Tensor | None, lengths: torch.Tensor | None, batch: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        width = self.projections[name].in_channels
        if features is None or lengths is None:
            raise InputError(f"this MulT model was built with {name}_dim={width}: pass {name} "
                             f"(B, T, {width}) and {name}_lengths (B,)")
        if features.dim() != 3 or features.shape[0] != batch or features.shape[2] != width:
            raise InputError(f"{name} has shape {tuple(features.shape)}, expected ({batch}, T, "
                             f"{width}); set {name}_dim in the model config to the data's width")
        if lengths.shape != (batch,) or (lengths < 0).any() or (lengths > features.shape[1]).any():
            raise InputError(f"{name}_lengths must be ({batch},) in [0, {features.shape[1]}], got "
                             f"{lengths.tolist()}")
        return features, lengths
