"""TextEncoder: a Hugging Face encoder whose layers psamf runs one by one.

PSA-MF needs three things a stock ``AutoModel`` forward does not give: every hidden state, layers
1..N-1 on the text alone, and layer N on the text plus extra (audio/video) tokens. The adapter runs
the pretrained ``embeddings`` and each ``encoder.layer[i]`` itself with an additive attention mask,
so it works for BERT-architecture encoders (BERT, MiniLM, RoBERTa / XLM-R) and for MPNet, whose
relative position bias it computes itself; others (ELECTRA with projected embeddings, ALBERT,
DistilBERT) are refused with a clear error. Running all layers on text only equals the stock
forward.

Extra tokens get mask 1. They carry no position embedding (they enter after the embedding layer);
for MPNet's relative bias they sit right after each sample's last real token, so padding the text
never changes the result.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer

from psamf.backbones import resolve_backbone
from psamf.errors import InputError
from psamf.models.config import SENTENCE_POOLINGS

# Written by ``psamf export`` into a model folder's text backbone (config + tokenizer, no weights:
# the model's own weights hold the encoder). Only such a folder is built from its config alone; any
# other folder without weights still fails, so training never starts from random weights unasked.
ARCHITECTURE_ONLY = "psamf-architecture-only.json"


def pool_tokens(hidden: torch.Tensor, mask: torch.Tensor, pooling: str = "first") -> torch.Tensor:
    """One vector per sequence from hidden states (B, L, H): the first token, or the mean over
    positions whose ``mask`` (B, L) is 1."""
    if pooling == "first":
        return hidden[:, 0]  # (B, L, H) -> (B, H)
    if pooling == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, H)
    raise InputError(f"pooling must be one of {list(SENTENCE_POOLINGS)}, got {pooling!r}")


def load_tokenizer(name_or_path: str):
    """The tokenizer of a backbone (short name, hub id or folder)."""
    return AutoTokenizer.from_pretrained(resolve_backbone(name_or_path))


class TextEncoder(nn.Module):
    """A pretrained encoder with access to its layers.

    Build with ``TextEncoder.from_pretrained("minilm")`` (any name ``resolve_backbone`` accepts) or
    ``TextEncoder(model=AutoModel...)``. ``forward`` returns all N+1 hidden states.
    """

    def __init__(self, *, model: nn.Module, name_or_path: str = "") -> None:
        super().__init__()
        layers = getattr(getattr(model, "encoder", None), "layer", None)
        projected = hasattr(model, "embeddings_project")  # ELECTRA with narrow embeddings
        if not hasattr(model, "embeddings") or not isinstance(layers, nn.ModuleList) or projected:
            raise InputError(
                f"text encoder {name_or_path or type(model).__name__}: unsupported architecture "
                f"{type(model).__name__}; psamf needs a BERT-like encoder (model.embeddings + "
                "model.encoder.layer), e.g. BERT, MiniLM, RoBERTa or MPNet"
            )
        self.model = model
        self.name_or_path = name_or_path
        self._relative = hasattr(model.encoder, "relative_attention_bias")  # MPNet

    @classmethod
    def from_pretrained(cls, name_or_path: str) -> TextEncoder:
        """Load weights by short name, hub id or folder (the pooler is dropped: unused)."""
        path = resolve_backbone(name_or_path)
        config = AutoConfig.from_pretrained(path)
        if (Path(path) / ARCHITECTURE_ONLY).is_file():  # an exported model's backbone
            model = AutoModel.from_config(config).float()
        else:
            # float32 master weights whatever the checkpoint's dtype (mixed precision: autocast).
            model = AutoModel.from_pretrained(path, config=config, dtype=torch.float32)
        if getattr(model, "pooler", None) is not None:
            model.pooler = None  # unused: psamf pools itself (and DDP dislikes unused parameters)
        return cls(model=model.train(), name_or_path=path)  # from_pretrained returns eval mode

    @property
    def config(self):
        return self.model.config

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def num_layers(self) -> int:
        return len(self.model.encoder.layer)

    @property
    def layers(self) -> nn.ModuleList:
        return self.model.encoder.layer

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token + position embeddings, state 0."""
        return self.model.embeddings(input_ids=input_ids)  # (B, L) -> (B, L, H)

    def additive_mask(self, mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """(B, L) 1/0 key mask -> (B, 1, 1, L) additive mask: 0 real, dtype-min padding."""
        mask = mask[:, None, None, :].to(dtype)  # (B, L) -> (B, 1, 1, L)
        return (1.0 - mask) * torch.finfo(dtype).min

    def position_bias(self, positions: torch.Tensor) -> torch.Tensor | None:
        """MPNet's relative position bias for per-sample positions (B, L) -> (B, heads, L, L)."""
        if not self._relative:
            return None
        encoder = self.model.encoder
        relative = positions[:, None, :] - positions[:, :, None]  # (B, L, L) key - query
        buckets = encoder.relative_position_bucket(relative)  # (B, L, L), same buckets as stock
        bias = encoder.relative_attention_bias(buckets)  # (B, L, L) -> (B, L, L, heads)
        return bias.permute(0, 3, 1, 2).contiguous()  # (B, L, L, heads) -> (B, heads, L, L)

    def run_layer(
        self,
        index: int,
        hidden: torch.Tensor,
        mask: torch.Tensor,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Layer ``index`` (0-based) on hidden (B, L, H) with additive mask (B, 1, 1, L)."""
        layer = self.layers[index]
        if bias is None:
            out = layer(hidden, attention_mask=mask)
        else:
            out = layer(hidden, attention_mask=mask, position_bias=bias)
        return out[0] if isinstance(out, tuple) else out

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        extra_tokens: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        """All N+1 hidden states; layer N also sees ``extra_tokens`` (B, E, H) appended, mask 1.

        States 0..N-1 are (B, L, H); state N is (B, L+E, H) (its last E rows are the extra tokens).
        """
        hidden = self.embed(input_ids)  # (B, L, H)
        mask = self.additive_mask(attention_mask, hidden.dtype)  # (B, 1, 1, L)
        length = input_ids.shape[1]
        positions = torch.arange(length, device=input_ids.device).expand(input_ids.shape[0], -1)
        bias = self.position_bias(positions)  # (B, heads, L, L) or None
        states = [hidden]
        for index in range(self.num_layers - 1):
            hidden = self.run_layer(index, hidden, mask, bias)  # (B, L, H)
            states.append(hidden)
        if extra_tokens is not None and extra_tokens.shape[1] > 0:
            n_extra = extra_tokens.shape[1]
            hidden = torch.cat([hidden, extra_tokens.to(hidden.dtype)], dim=1)  # (B, L+E, H)
            ones = attention_mask.new_ones(attention_mask.shape[0], n_extra)  # (B, E)
            mask = self.additive_mask(torch.cat([attention_mask, ones], 1), hidden.dtype)
            if self._relative:
                real = attention_mask.sum(1, keepdim=True)  # (B, 1) real tokens per sample
                after = real + torch.arange(n_extra, device=real.device)  # (B, E)
                bias = self.position_bias(torch.cat([positions, after], 1))  # (B, h, L+E, L+E)
        states.append(self.run_layer(self.num_layers - 1, hidden, mask, bias))  # (B, L(+E), H)
        return tuple(states)

    def reset_last_layer(self) -> None:
        """Re-initialise layer N like a fresh transformer layer (the authors' code does this).

        Linear weights ~ N(0, initializer_range), biases 0, LayerNorm weight 1 / bias 0.
        """
        std = float(getattr(self.model.config, "initializer_range", 0.02))
        for module in self.layers[-1].modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
