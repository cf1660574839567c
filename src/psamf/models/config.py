"""PSAMFConfig: every setting of a PSA-MF (or baseline) model, typed and JSON round-trippable.

The config travels with each checkpoint, so a model is rebuilt from its run folder plus the text
backbone it names (architecture and tokenizer; the weights come from the run):
``build_model(PSAMFConfig.from_dict(json.load(f)))``. Validation errors name the field and the fix.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from psamf import __version__
from psamf.errors import InputError
from psamf.models.registry import MODALITIES, model_entry

SENTENCE_POOLINGS: tuple[str, ...] = ("first", "mean")
FUSION_LAYER_INITS: tuple[str, ...] = ("pretrained", "fresh")
CONTRASTIVE_SCALES: tuple[str, ...] = ("fixed", "learned")
CONTRASTIVE_NORMS: tuple[str, ...] = ("after_projection", "authors")
MISA_TASK_LOSSES: tuple[str, ...] = ("mse", "l1")
# The layout of PSAMFConfig's JSON (``to_json``); JSON without a ``format`` stamp is format 1,
# which has the same fields.
MODEL_CONFIG_FORMAT = 1


@dataclass(kw_only=True)
class PSAMFConfig:
    """Settings of a PSA-MF model. Defaults follow the paper, or the authors' code where stated.

    Fields:
        model_type: a name in the model registry (``psamf.models.list_models()``): ``"psamf"``,
            ``"text_finetune"`` (the text-only baseline), ...; its entry says which inputs it reads.
        text_encoder: sentiment encoder, a short name (``"minilm"``, ``"mpnet"``), hub id or folder.
        personality_dim: width H_p of the cached personality embedding P; None = the text encoder's
            width. When it differs from the text width, P is linearly projected before it is added
            to the pre-fusion tokens.
        audio_dim / vision_dim: frame feature widths; None = the modality is absent from the data
            (its encoder, pre-fusion token and attention are not built).
        av_hidden: width D of the audio/video path (LSTM, attention, probes); 64 in the paper.
        align_layer: hidden-state index (embeddings = 0) where personality-sentiment alignment
            reads its first token; None = round(10/12 * N) clamped to N-1 (10 for 12 layers, the
            authors' choice), so the auto choice is always a text-only layer.
        sentence_pooling: how M (layer N, text + AV tokens), c (alignment layer) and s (layer N-1)
            are read from their hidden states: ``"first"`` token (the paper, default) or
            ``"mean"`` over real positions (what sentence encoders such as the MiniLM were trained
            for; the text-only baseline always mean-pools).
        fusion_layer_init: ``"pretrained"`` keeps layer N's pretrained weights (the paper's
            reading); ``"fresh"`` re-initialises it (what the authors' code does).
        contrastive_scale: ``"fixed"`` logits scale ln(1/0.07) ~ 2.66, not exponentiated (authors);
            ``"learned"`` a learnable log-scale starting at the same value.
        contrastive_norm: ``"after_projection"`` (default, CLIP) normalises both sides after their
            projection; ``"authors"`` normalises x after and y before its projection.
        contrastive_dim: shared projection width of the contrastive loss (128).
        detach_alignment_weight: stop gradients through the balancing weight d (default True: d is a
            weight, not an objective; with gradients, L_ps could shrink by pushing the views apart).
        mask_av_padding: cross-modal attention ignores padded frames (our fix; False = authors).
        fusion_hidden: width of the serial path's per-modality expansion (2048).
        head_hidden: width of the regression head's hidden layers (128).
        w_ccl / w_ps / w_clm: loss weights (authors' code: 1.0 / 0.1 / 0.09); the L1 task term has
            weight 1.
        use_personality / use_prefusion / use_enhanced_fusion / use_ps_loss / use_clm_loss:
            the paper's ablations (True = component on), each removing one component with its
            parameters and loss terms:
            - use_personality=False: P is not an input; AV tokens are ReLU(W h) (no +P); no
              alignment module, no L_ccl / L_ps.
            - use_prefusion=False: no AV tokens and no L_clm; layer N runs on the text only.
            - use_enhanced_fusion=False: no serial / parallel paths; the head reads the
              concatenation [V_t; A_t; q] of the cross-modal attention outputs and q = W_q M.
            - use_ps_loss=False: no W2 / probe, no L_ps (L_ccl stays).
            - use_clm_loss=False: the AV tokens stay, L_clm and its projections go.
        text_only: ignore audio and video entirely (no AV encoders, tokens or attention; the
            fusion head sees q only). audio_dim / vision_dim are then ignored.
        dropout: dropout before the regression head.
        max_text_length: tokens per transcript (truncate/pad), 50 in the paper.

        Self-MM (``model_type="self_mm"``, models/selfmm.py):
        selfmm_hidden: width of each head's hidden layer F*_s (multimodal and unimodal), 128.
        selfmm_unimodal_weight: factor on the sum of the unimodal losses (1.0: the paper adds
            them to the multimodal loss unscaled, each weighted per sample by tanh|y_s - y_m|).
        selfmm_centre_momentum: EMA momentum of the class centres over training batches (0.9).
        selfmm_label_clip: generated unimodal labels are clipped to [-clip, clip] (3.0, the
            MOSI/MOSEI range); None = no clipping (the paper does not clip).
        selfmm_label_memory: False (the only mode built) = labels generated per batch from the
            running centres; True (the paper's per-sample feature and label memory) needs a
            sample index in the batch, which psamf's batch builder does not give, and is refused.
        tfn_text_hidden / tfn_av_hidden / tfn_post_hidden: TFN's (and LMF's) text vector width
            (128 in the paper), audio/vision DNN width (32) and post-fusion layer width (128).
        tfn_text_pooling: how TFN / LMF read the text encoder's last layer: ``"mean"`` over real
            tokens (default) or the ``"first"`` token (the paper's LSTM is replaced by the encoder).
        lmf_rank: LMF's rank r of the modality-specific factors (4 in the paper's experiments).
        lmf_fusion_dim: width of LMF's fused vector h; 1 (default) = h is the prediction itself
            (the paper's output layer), > 1 = a linear head reads ReLU(h).
        mult_*: MulT (``model_type="mult"``, Tsai et al. 2019); defaults are small for CPU runs,
            the paper's CMU-MOSI values (its Table 5) in brackets:
            - mult_width: common width d after the temporal convolutions, 16 [40].
            - mult_layers: crossmodal blocks D per crossmodal transformer, 2 [4].
            - mult_self_layers: layers of the self-attention transformer per target, 1 [not
              stated].
            - mult_heads: attention heads, 2 [10]; must divide mult_width.
            - mult_text_kernel / mult_av_kernel: temporal convolution kernel sizes (odd), 1 / 3
              [1 or 3 / 3].
            - mult_text_dropout: dropout on the text states, 0.2 [0.2].
            - mult_attn_dropout: dropout on the attention weights, 0.2 [0.2].
            - mult_dropout: residual and feed-forward dropout in the blocks, 0.1 [not stated].
            - mult_out_dropout: dropout in the residual output head, 0.1 [0.1].
        misa_*: the MISA baseline (``model_type="misa"``, see ``psamf.models.misa``):
            misa_hidden: width d_h of the projected, invariant and specific vectors (128).
            misa_heads: attention heads of the fusion transformer layer (2); divides misa_hidden.
            misa_alpha / misa_beta / misa_gamma: weights of the similarity (CMD), difference and
                reconstruction losses (1.0 / 0.3 / 1.0: sim_weight / diff_weight / recon_weight
                in the authors' code, declare-lab/MISA src/config.py), set with their difference
                loss, which averages the d_h x d_h squared entries (misa_diff_reduction).
            misa_cmd_moments: K, the highest central moment CMD matches (5, the authors' code).
            misa_diff_normalize: centre each row over its features and L2-normalise it before
                the difference loss (True; the authors' code instead centres each feature over
                the batch, then L2-normalises rows); False = the paper's formula on the raw
                vectors.
            misa_diff_reduction: ``"mean"`` (the authors' code: the mean of the squared entries
                of each H1^T H2, which their weights 1.0/0.3/1.0 were set with) or ``"sum"`` (the
                paper's squared Frobenius norm; at d_h 128 the difference term is then 16,384x
                larger and dominates the loss: 0.3 x 501 = 150 of a total of 158 on a fresh MiniLM
                MISA batch).
            misa_task_loss: ``"mse"`` (the paper's regression loss) or ``"l1"`` (PSA-MF's).
        mmim_*: the MMIM baseline (``model_type="mmim"``, see ``psamf.models.mmim``):
            mmim_hidden: width of the fused vector Z and of the MI predictors' hidden layer (128).
            mmim_alpha / mmim_beta: weights of -MI_input (Gaussian BA bound, text vs audio/vision)
                and -CPC (fused vector vs each unimodal vector), 0.1 / 0.1. The authors' code
                (declare-lab/Multimodal-Infomax) names them the other way round: its --alpha
                (0.1) weighs the CPC term and its --beta (0.1) the BA terms. The paper's tuned
                per-dataset values are not verified; treat 0.1 / 0.1 as a starting point.
            mmim_ba_form: the input-level BA estimate. ``"authors"`` (default; the
                declare-lab code's, which their 0.1 / 0.1 were set with): log q(y|x) =
                -(y - mu)^2 / (2 exp(logvar)) without the -logvar/2 normaliser (<= 0), and H(Y) =
                log det(Cov)/2 of tanh(P y), P a fixed projection to D_y // 4 dimensions, so the
                estimate is <= about 0. ``"gaussian"``: the exact diagonal-Gaussian log q and a
                diagonal H(Y) of the batch; trained jointly it grows without bound (on MOSI it
                reached +80 nats by epoch 10, 8x the task loss at weight 0.1).
            mmim_text_pooling: ``"first"`` ([CLS], the paper's) or ``"mean"``.
            mmim_task_loss: ``"l1"`` (MAE, the paper's) or ``"mse"``.
    """

    model_type: str = "psamf"
    text_encoder: str = "minilm"
    personality_dim: int | None = None
    audio_dim: int | None = None
    vision_dim: int | None = None
    av_hidden: int = 64
    align_layer: int | None = None
    sentence_pooling: str = "first"
    fusion_layer_init: str = "pretrained"
    contrastive_scale: str = "fixed"
    contrastive_norm: str = "after_projection"
    contrastive_dim: int = 128
    detach_alignment_weight: bool = True
    mask_av_padding: bool = True
    fusion_hidden: int = 2048
    head_hidden: int = 128
    attention_heads: int = 2
    w_ccl: float = 1.0
    w_ps: float = 0.1
    w_clm: float = 0.09
    use_personality: bool = True
    use_prefusion: bool = True
    use_enhanced_fusion: bool = True
    use_ps_loss: bool = True
    use_clm_loss: bool = True
    text_only: bool = False
    dropout: float = 0.1
    max_text_length: int = 50
    # --- Self-MM (models/selfmm.py) ---
    selfmm_hidden: int = 128
    selfmm_unimodal_weight: float = 1.0
    selfmm_centre_momentum: float = 0.9
    selfmm_label_clip: float | None = 3.0
    selfmm_label_memory: bool = False
    # --- TFN / LMF (Zadeh et al. 2017; Liu et al. 2018) ---
    tfn_text_hidden: int = 128
    tfn_av_hidden: int = 32
    tfn_post_hidden: int = 128
    tfn_text_pooling: str = "mean"
    lmf_rank: int = 4
    lmf_fusion_dim: int = 1
    # --- MulT (model_type="mult") ---
    mult_width: int = 16
    mult_layers: int = 2
    mult_self_layers: int = 1
    mult_heads: int = 2
    mult_text_kernel: int = 1
    mult_av_kernel: int = 3
    mult_text_dropout: float = 0.2
    mult_attn_dropout: float = 0.2
    mult_dropout: float = 0.1
    mult_out_dropout: float = 0.1
    # --- MISA (Hazarika et al., 2020) ---
    misa_hidden: int = 128
    misa_heads: int = 2
    misa_alpha: float = 1.0
    misa_beta: float = 0.3
    misa_gamma: float = 1.0
    misa_cmd_moments: int = 5
    misa_diff_normalize: bool = True
    misa_diff_reduction: str = "mean"
    misa_task_loss: str = "mse"
    # --- MMIM (Han et al., 2021) ---
    mmim_hidden: int = 128
    mmim_alpha: float = 0.1
    mmim_beta: float = 0.1
    mmim_ba_form: str = "authors"
    mmim_text_pooling: str = "first"
    mmim_task_loss: str = "l1"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the bad field and what to use instead."""
        model_entry(self.model_type)  # the one registry; unknown names list the registered ones
        _choice("sentence_pooling", self.sentence_pooling, SENTENCE_POOLINGS)
        _choice("fusion_layer_init", self.fusion_layer_init, FUSION_LAYER_INITS)
        _choice("contrastive_scale", self.contrastive_scale, CONTRASTIVE_SCALES)
        _choice("contrastive_norm", self.contrastive_norm, CONTRASTIVE_NORMS)
        if not isinstance(self.text_encoder, str) or not self.text_encoder.strip():
            raise InputError(
                "text_encoder must be a backbone name, hub id or folder, e.g. 'minilm'"
            )
        for name in ("personality_dim", "audio_dim", "vision_dim", "align_layer"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InputError(f"{name} must be an int or None, got {value!r}")
        for name in ("personality_dim", "audio_dim", "vision_dim"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"{name} must be >= 1 or None (modality absent), got {value}")
        if self.align_layer is not None and self.align_layer < 0:
            raise InputError(
                f"align_layer must be >= 0 (0 = embeddings) or None (auto), got {self.align_layer}"
            )
        for name in ("av_hidden", "contrastive_dim", "fusion_hidden", "head_hidden",
                     "attention_heads", "max_text_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive int, got {value!r}")
        if self.av_hidden % self.attention_heads:
            raise InputError(
                f"av_hidden ({self.av_hidden}) must be divisible by attention_heads "
                f"({self.attention_heads}); change one of them"
            )
        if self.av_hidden < 3:
            raise InputError(
                f"av_hidden must be >= 3 (the parallel path's kernel), got {self.av_hidden}"
            )
        for name in ("w_ccl", "w_ps", "w_clm", "dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                raise InputError(f"{name} must be a number, got {value!r}")
            if value < 0:
                raise InputError(f"{name} must be >= 0, got {value}")
        if self.dropout >= 1:
            raise InputError(f"dropout must be in [0, 1), got {self.dropout}")
        for name in ("detach_alignment_weight", "mask_av_padding", "use_personality",
                     "use_prefusion", "use_enhanced_fusion", "use_ps_loss", "use_clm_loss",
                     "text_only"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} must be true or false, got {getattr(self, name)!r}")
        # --- MulT ---
        for name in ("mult_width", "mult_layers", "mult_self_layers", "mult_heads",
                     "mult_text_kernel", "mult_av_kernel"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive int, got {value!r}")
        if self.mult_width % self.mult_heads:
            raise InputError(f"mult_width ({self.mult_width}) must be divisible by mult_heads "
                             f"({self.mult_heads}); change one of them")
        for name in ("mult_text_kernel", "mult_av_kernel"):
            if getattr(self, name) % 2 == 0:
                raise InputError(f"{name} must be odd (the sequence keeps its length), "
                                 f"got {getattr(self, name)}")
        for name in ("mult_text_dropout", "mult_attn_dropout", "mult_dropout", "mult_out_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
                raise InputError(f"{name} must be a number in [0, 1), got {value!r}")
        # --- TFN / LMF ---
        _choice("tfn_text_pooling", self.tfn_text_pooling, SENTENCE_POOLINGS)
        for name in ("tfn_text_hidden", "tfn_av_hidden", "tfn_post_hidden", "lmf_rank",
                     "lmf_fusion_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive int, got {value!r}")
        self._validate_selfmm()
        self._validate_misa()
        self._validate_mmim()

    def _validate_selfmm(self) -> None:
        """The Self-MM block (models/selfmm.py)."""
        if (isinstance(self.selfmm_hidden, bool) or not isinstance(self.selfmm_hidden, int)
                or self.selfmm_hidden < 1):
            raise InputError(f"selfmm_hidden must be a positive int, got {self.selfmm_hidden!r}")
        for name in ("selfmm_unimodal_weight", "selfmm_centre_momentum", "selfmm_label_clip"):
            value = getattr(self, name)
            if value is None and name == "selfmm_label_clip":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                raise InputError(f"{name} must be a number, got {value!r}")
            if value < 0:
                raise InputError(f"{name} must be >= 0, got {value}")
        if self.selfmm_centre_momentum >= 1:
            raise InputError("selfmm_centre_momentum must be in [0, 1) (1 would freeze the "
                             f"centres), got {self.selfmm_centre_momentum}")
        if self.selfmm_label_clip is not None and self.selfmm_label_clip <= 0:
            raise InputError("selfmm_label_clip must be > 0 or None (no clipping), got "
                             f"{self.selfmm_label_clip}")
        if not isinstance(self.selfmm_label_memory, bool):
            raise InputError(f"selfmm_label_memory must be true or false, got "
                             f"{self.selfmm_label_memory!r}")
        if self.selfmm_label_memory:
            raise InputError("selfmm_label_memory=true (per-sample label memory) needs sample "
                             "indices the batch does not carry; use selfmm_label_memory=false")

    def _validate_misa(self) -> None:
        """The misa_* block (see the MISA entry in Fields)."""
        _choice("misa_task_loss", self.misa_task_loss, MISA_TASK_LOSSES)
        _choice("misa_diff_reduction", self.misa_diff_reduction, ("mean", "sum"))
        for name in ("misa_hidden", "misa_heads", "misa_cmd_moments"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive int, got {value!r}")
        if self.misa_hidden % self.misa_heads:
            raise InputError(f"misa_hidden ({self.misa_hidden}) must be divisible by misa_heads "
                             f"({self.misa_heads}); change one of them")
        for name in ("misa_alpha", "misa_beta", "misa_gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise InputError(f"{name} must be a number >= 0, got {value!r}")
        if not isinstance(self.misa_diff_normalize, bool):
            raise InputError(
                f"misa_diff_normalize must be true or false, got {self.misa_diff_normalize!r}")

    def _validate_mmim(self) -> None:
        """The mmim_* block (see the MMIM entry in Fields)."""
        _choice("mmim_ba_form", self.mmim_ba_form, ("authors", "gaussian"))
        _choice("mmim_text_pooling", self.mmim_text_pooling, ("first", "mean"))
        _choice("mmim_task_loss", self.mmim_task_loss, ("l1", "mse"))
        if (isinstance(self.mmim_hidden, bool) or not isinstance(self.mmim_hidden, int)
                or self.mmim_hidden < 1):
            raise InputError(f"mmim_hidden must be a positive int, got {self.mmim_hidden!r}")
        for name in ("mmim_alpha", "mmim_beta"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise InputError(f"{name} must be a number >= 0, got {value!r}")

    def reads_modalities(self) -> tuple[str, ...]:
        """The frame modalities this model can read: its registry entry's, none if text_only."""
        return () if self.text_only else model_entry(self.model_type).modalities

    def uses_personality(self) -> bool:
        """Whether the model reads P: its registry entry says so and use_personality is on."""
        return model_entry(self.model_type).personality and self.use_personality

    def modality_widths(self) -> dict[str, int]:
        """Widths of the modalities the model uses ({} in text_only mode)."""
        widths = {"audio": self.audio_dim, "vision": self.vision_dim}
        read = self.reads_modalities()
        return {m: widths[m] for m in MODALITIES if m in read and widths[m] is not None}

    def with_data_widths(self, widths: dict[str, int]) -> PSAMFConfig:
        """A copy with audio_dim / vision_dim filled from ``widths`` (the data's) where unset
        (None), for the modalities the model reads. A width the user set is never replaced: one
        that disagrees with the data is refused, naming the field and the fix."""
        return self.replace(**{
            f"{name}_dim": _fill(f"{name}_dim", getattr(self, f"{name}_dim"), widths.get(name),
                                 f"the data's {name} features")
            for name in MODALITIES if name in self.reads_modalities()
        })

    def with_personality_dim(self, width: int) -> PSAMFConfig:
        """A copy with personality_dim = P's ``width``; a different width the user set is
        refused (P would not fit the model)."""
        return self.replace(personality_dim=_fill("personality_dim", self.personality_dim, width,
                                                  "P (the personality encoder's output)"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PSAMFConfig:
        """Rebuild from ``to_dict`` / ``to_json`` output (its ``format`` / ``psamf_version``
        stamps are checked and dropped); unknown keys are an error naming them."""
        data = dict(data)
        version = data.pop("psamf_version", None)
        fmt = data.pop("format", MODEL_CONFIG_FORMAT)
        if fmt != MODEL_CONFIG_FORMAT:
            raise InputError(
                f"model config format {fmt!r} (psamf {version or 'unknown'}) is not one this "
                f"psamf ({__version__}) reads ({MODEL_CONFIG_FORMAT}); use a matching psamf"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(
                f"PSAMFConfig: unknown field(s) {unknown}; known fields are {sorted(known)}"
            )
        return cls(**data)

    def to_json(self) -> str:
        """The fields, stamped with ``format`` and the ``psamf_version`` that wrote them."""
        stamped = {"format": MODEL_CONFIG_FORMAT, "psamf_version": __version__, **self.to_dict()}
        return json.dumps(stamped, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> PSAMFConfig:
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> PSAMFConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


def _fill(name: str, set_value: int | None, data_value: int | None, source: str) -> int | None:
    """``set_value`` if the user set it (it must then equal ``data_value``), else ``data_value``."""
    if set_value is None or set_value == data_value:
        return data_value
    found = f"have width {data_value}" if data_value is not None else "are absent"
    raise InputError(f"model.{name} is {set_value} but {source} {found}; drop model.{name} "
                     "(it is filled from the data) or use data of that width")


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"{name} must be one of {list(choices)}, got {value!r}")
