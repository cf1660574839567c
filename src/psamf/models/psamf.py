"""PSA-MF: personality-sentiment aligned multi-level fusion.

Reads top to bottom like the model: AV encoders -> pre-fusion tokens (+P) -> sentiment encoder
(layer N sees the tokens) -> personality-sentiment alignment (losses) -> multi-level fusion head.

Public construction::

    import torch
    from psamf.models import PSAMFConfig, build_model
    from psamf.personality import PersonalityEmbeddingCache, PersonalityEncoder

    texts = ["a fine film", "dull and far too long"]
    model = build_model(PSAMFConfig(text_encoder="minilm", audio_dim=73))  # audio, no video
    P = PersonalityEmbeddingCache("cache").get_or_compute(PersonalityEncoder("minilm"), texts)
    out = model(**model.tokenize(texts), personality=P,
                audio=torch.randn(2, 1, 73), audio_lengths=torch.tensor([1, 1]),
                labels=torch.tensor([1.5, -2.0]))
    out.prediction  # (B,)   out.loss  # scalar   out.losses  # {"task", "ccl", "ps", "clm"}
    optimizer = torch.optim.Adam(
        model.parameter_groups(encoder_lr=5e-5, other_lr=5e-4, weight_decay=1e-4))

``P`` (B, H_p) is the cached personality embedding (see ``PersonalityEmbeddingCache``); the model
never holds the personality encoder, so it cannot train it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from psamf.errors import InputError
from psamf.models.alignment import PersonalityAlignment, default_align_layer
from psamf.models.av_encoders import AVEncoder, AVEncoding
from psamf.models.config import PSAMFConfig
from psamf.models.fusion import MultiLevelFusion
from psamf.models.prefusion import PreFusionContrastive, PreFusionTokens
from psamf.models.registry import register_model
from psamf.models.text_encoder import TextEncoder, load_tokenizer, pool_tokens

MODALITY_ORDER: tuple[str, ...] = ("vision", "audio")  # [ṽ, ã] and [V_t, A_t] as in the paper


@dataclass
class PSAMFOutput:
    """What every registered model's forward returns."""

    prediction: torch.Tensor  # (B,)
    loss: torch.Tensor | None = None  # scalar, None without labels
    losses: dict[str, torch.Tensor] = field(default_factory=dict)  # task, ccl, ps, clm


class _TextModel(nn.Module):
    """Shared by every registered model: config, text encoder, tokenizer, groups, init.

    ``gathers_batch``: whether ``forward`` takes ``gather=`` (see ``psamf.training.distributed``),
    a function from a rank's per-sample tensor to the global batch's, applied before every batch
    reduction of the loss; a model without it trains under DDP on per-rank losses.
    """

    gathers_batch: bool = False
    config: PSAMFConfig
    text_encoder: TextEncoder

    def _load_text_encoder(self, config: PSAMFConfig) -> None:
        self.config = config
        self.text_encoder = TextEncoder.from_pretrained(config.text_encoder)
        self.tokenizer = load_tokenizer(self.text_encoder.name_or_path)

    def tokenize(self, texts: Sequence[str], *, padding: bool | str = True) -> dict:
        """Tokenize transcripts for ``forward`` (truncated to ``config.max_text_length``)."""
        batch = self.tokenizer(
            list(texts), padding=padding, truncation=True,
            max_length=self.config.max_text_length, return_tensors="pt",
        )
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def _encode_modality(
        self, m: str, features: torch.Tensor | None, lengths: torch.Tensor | None
    ) -> AVEncoding:
        """``self.av_encoders[m]`` over a batch's frames; lengths default to every frame (aligned
        data). A modality the model was built for but the batch lacks is one clear error."""
        if features is None:
            raise InputError(
                f"the model was built with {m}_dim={getattr(self.config, m + '_dim')} but the "
                f"batch has no {m}; pass {m}=... or build with {m}_dim=None (or text_only=True)"
            )
        if lengths is None:
            lengths = torch.full((features.shape[0],), features.shape[1], dtype=torch.long)
        return self.av_encoders[m](features, lengths)

    def _encoder_modules(self) -> list[nn.Module]:
        return [self.text_encoder]

    def parameter_groups(
        self, *, encoder_lr: float, other_lr: float, weight_decay: float = 0.0
    ) -> list[dict]:
        """Optimizer groups by role: sentiment encoder (and modules built into it) vs the rest."""
        encoder_ids = {id(p) for m in self._encoder_modules() for p in m.parameters()}
        encoder, other = [], []
        for param in self.parameters():
            if param.requires_grad:
                (encoder if id(param) in encoder_ids else other).append(param)
        groups = [
            {"name": "encoder", "params": encoder, "lr": encoder_lr, "weight_decay": weight_decay},
            {"name": "other", "params": other, "lr": other_lr, "weight_decay": weight_decay},
        ]
        return [g for g in groups if g["params"]]

    def _init_new_weights(self) -> None:
        """Xavier-normal for weight matrices outside the pretrained encoder (not biases, norms)."""
        encoder_ids = {id(p) for p in self.text_encoder.parameters()}
        for param in self.parameters():
            if id(param) not in encoder_ids and param.dim() >= 2:  # LayerNorm weights are 1-D
                nn.init.xavier_normal_(param)


@register_model("psamf", personality=True, modalities=("audio", "vision"))
class PSAMF(_TextModel):
    """The PSA-MF model; every component is switched by ``config`` (see PSAMFConfig)."""

    gathers_batch = True

    def __init__(self, config: PSAMFConfig) -> None:
        super().__init__()
        self._load_text_encoder(config)
        text_dim = self.text_encoder.hidden_size
        n_layers = self.text_encoder.num_layers
        widths = config.modality_widths()
        self.modalities = tuple(m for m in MODALITY_ORDER if m in widths)
        self.personality_dim = (
            (config.personality_dim or text_dim) if config.use_personality else None
        )
        self.align_layer = (
            default_align_layer(n_layers) if config.align_layer is None else config.align_layer
        )
        if self.align_layer > n_layers:
            raise InputError(
                f"align_layer={config.align_layer} but {config.text_encoder} has {n_layers} layers "
                f"(hidden states 0..{n_layers}); use a value in 0..{n_layers} or None (auto)"
            )
        contrastive = {
            "dim": config.contrastive_dim,
            "scale": config.contrastive_scale,
            "norm": config.contrastive_norm,
        }
        if config.fusion_layer_init == "fresh":
            self.text_encoder.reset_last_layer()

        # Audio / video encoders (one per modality present in the data).
        self.av_encoders = nn.ModuleDict(
            {m: AVEncoder(input_dim=widths[m], hidden=config.av_hidden) for m in self.modalities}
        )
        # Pre-fusion: AV tokens inside layer N, and their contrastive loss L_clm.
        prefusion = config.use_prefusion and bool(self.modalities)
        self.prefusion = (
            PreFusionTokens(
                modalities=self.modalities, av_hidden=config.av_hidden, text_dim=text_dim,
                personality_dim=self.personality_dim,
            )
            if prefusion else None
        )
        self.clm = (
            PreFusionContrastive(modalities=self.modalities, text_dim=text_dim, **contrastive)
            if prefusion and config.use_clm_loss else None
        )
        # Personality-sentiment alignment (losses only).
        self.alignment = (
            PersonalityAlignment(
                text_dim=text_dim, personality_dim=self.personality_dim, hidden=config.av_hidden,
                use_ps_loss=config.use_ps_loss,
                detach_weight=config.detach_alignment_weight, **contrastive,
            )
            if self.personality_dim is not None else None
        )
        # Multi-level fusion head.
        self.fusion = MultiLevelFusion(
            text_dim=text_dim, modalities=self.modalities, dim=config.av_hidden,
            heads=config.attention_heads, mask_padding=config.mask_av_padding,
            enhanced=config.use_enhanced_fusion, fusion_hidden=config.fusion_hidden,
            head_hidden=config.head_hidden, dropout=config.dropout,
        )
        self._init_new_weights()

    def _encoder_modules(self) -> list[nn.Module]:
        return [self.text_encoder] + ([self.prefusion] if self.prefusion is not None else [])

    def _encode_av(
        self, inputs: dict[str, tuple[torch.Tensor | None, torch.Tensor | None]]
    ) -> dict[str, AVEncoding]:
        return {m: self._encode_modality(m, *inputs[m]) for m in self.modalities}

    def forward(
        self,
        *,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        personality: torch.Tensor | None = None,
        audio: torch.Tensor | None = None,
        audio_lengths: torch.Tensor | None = None,
        vision: torch.Tensor | None = None,
        vision_lengths: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        gather: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> PSAMFOutput:
        """Prediction (B,) and, with ``labels``, the loss and its named terms.

        Contrastive terms (ccl, clm) need a batch of at least 2 and are left out otherwise.
        Modalities the model was not built for are ignored. ``gather`` (DDP): the loss is computed
        over the global batch it returns for each per-sample tensor; the prediction stays local.
        """
        if self.personality_dim is not None:
            personality = self._check_personality(personality, input_ids.shape[0])
        encodings = self._encode_av(
            {"audio": (audio, audio_lengths), "vision": (vision, vision_lengths)}
        )
        tokens = None
        if self.prefusion is not None:
            summaries = {m: e.summary for m, e in encodings.items()}
            tokens = self.prefusion(summaries, personality)  # (B, E, H)
        states = self.text_encoder(input_ids, attention_mask, tokens)  # N+1 x (B, L(+E), H)
        pooling = self.config.sentence_pooling
        fused_mask = attention_mask
        if tokens is not None:  # layer N's output also holds the E AV tokens, all real
            fused_mask = torch.cat([attention_mask, attention_mask.new_ones(tokens.shape[:2])], 1)
        fused = pool_tokens(states[-1], fused_mask, pooling)  # M: (B, L+E, H) -> (B, H)
        prediction = self.fusion(fused, encodings)  # (B,)
        if labels is None:
            return PSAMFOutput(prediction=prediction)

        g = gather or (lambda x: x)  # every batch reduction below sees the global batch
        labels = g(labels.to(prediction.dtype))
        losses = {"task": F.l1_loss(g(prediction), labels)}
        if self.alignment is not None:
            # Aligning at layer N (after fusion) reads its L+E positions, like M does.
            align_mask = fused_mask if self.align_layer == len(states) - 1 else attention_mask
            c = pool_tokens(states[self.align_layer], align_mask, pooling)  # (B, H)
            losses.update(self.alignment(g(c), g(personality), labels))
        if self.clm is not None and tokens is not None and labels.shape[0] >= 2:
            s = pool_tokens(states[-2], attention_mask, pooling)  # layer N-1: (B, H)
            losses["clm"] = self.clm(g(s), g(tokens))
        weights = {"task": 1.0, "ccl": self.config.w_ccl, "ps": self.config.w_ps,
                   "clm": self.config.w_clm}
        loss = sum(weights[name] * value for name, value in losses.items())
        return PSAMFOutput(prediction=prediction, loss=loss, losses=losses)

    def _check_personality(self, personality: torch.Tensor | None, batch: int) -> torch.Tensor:
        if personality is None:
            raise InputError(
                "this model uses personality embeddings (use_personality=True): pass "
                "personality=P (B, H_p) from PersonalityEmbeddingCache, "
                "or set use_personality=False"
            )
        if personality.shape != (batch, self.personality_dim):
            raise InputError(
                f"personality has shape {tuple(personality.shape)}, expected ({batch}, "
                f"{self.personality_dim}); set personality_dim to the personality encoder's width"
            )
        return personality.to(dtype=next(self.fusion.parameters()).dtype)
