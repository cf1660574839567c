"""The frozen personality encoder and the on-disk cache of its embeddings P.

PSA-MF uses one vector per transcript from a personality-pretrained encoder: P, its last layer
pooled the way the folder's trait head was trained (``trait_head.json``; psamf's recipe mean-pools,
the paper reads the first token). The encoder is frozen, so P depends on the text only and is
computed once per utterance and cached; the model itself receives P as an input tensor and never
holds the personality encoder, which therefore cannot be trained by accident.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from psamf.backbones import is_short_name, resolve_backbone
from psamf.errors import InputError
from psamf.io import save_tensors
from psamf.models.text_encoder import TextEncoder, load_tokenizer, pool_tokens

POOLINGS: tuple[str, ...] = ("cls", "mean")
_POOLING_ALIASES = {"first": "cls", "cls": "cls", "mean": "mean"}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
# Files that decide how text is split into ids (hashed into the identity with config and weights).
_TOKENIZER_FILES = frozenset({
    "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
})


class PersonalityEncoder(nn.Module):
    """A frozen text encoder giving P (N, H_p) for transcripts; always eval mode, no gradients.

    ``pooling``: ``"cls"`` (first token, default; ``"first"`` is accepted too) or ``"mean"`` over
    real tokens. None = the folder's ``trait_head.json`` ``pooling`` field if present, else cls.
    """

    def __init__(
        self, name_or_path: str, *, pooling: str | None = None, max_length: int = 128
    ) -> None:
        super().__init__()
        path = resolve_backbone(name_or_path)
        # A hub id keeps its id-based identity even when it loads from the local HF cache folder.
        name = str(name_or_path)
        local = path == name or is_short_name(name) or Path(name).is_dir()
        self._hub_id = None if local else name
        if pooling is None:
            pooling = _folder_pooling(path) or "cls"
        if pooling not in _POOLING_ALIASES:
            raise InputError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}")
        if max_length < 1:
            raise InputError(f"max_length must be >= 1, got {max_length}")
        self.path = path
        self.pooling = _POOLING_ALIASES[pooling]
        self.max_length = int(max_length)
        self.encoder = TextEncoder.from_pretrained(path)
        self.tokenizer = load_tokenizer(path)
        self.encoder.requires_grad_(False)
        self.eval()
        # The cache key of P: what the encoder computes, not where it lives.
        self.identity = f"{self._content_id()}:{self.pooling}:{self.max_length}"

    @property
    def hidden_size(self) -> int:
        return self.encoder.hidden_size

    def train(self, mode: bool = True) -> PersonalityEncoder:
        """Stays in eval mode whatever is asked: the encoder is frozen (no dropout)."""
        return super().train(False)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> torch.Tensor:
        """P for each text, float32 on CPU, shape (N, H_p)."""
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        device = next(self.encoder.parameters()).device
        chunks: list[torch.Tensor] = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(device)
            mask = batch["attention_mask"]
            last = self.encoder(batch["input_ids"], mask)[-1]  # (B, L, H_p)
            pooling = "first" if self.pooling == "cls" else "mean"
            pooled = pool_tokens(last, mask, pooling)  # (B, L, H_p) -> (B, H_p)
            chunks.append(pooled.float().cpu())
        if not chunks:
            return torch.zeros(0, self.hidden_size)
        out = torch.cat(chunks)  # (N, H_p)
        if not torch.isfinite(out).all():
            raise InputError(f"personality encoder {self.path} produced NaN/inf embeddings")
        return out

    def _content_id(self) -> str:
        """A local folder: sha256 of its config, weight and tokenizer files (names and bytes), so
        a copied or re-downloaded encoder keeps its identity. Otherwise (a hub id whose files are
        not local): the id plus a sha256 of the loaded config and weights."""
        digest = hashlib.sha256()
        folder = Path(self.path)
        files = _content_files(folder) if folder.is_dir() and self._hub_id is None else []
        if any(f.suffix in _WEIGHT_SUFFIXES for f in files):
            for file in files:
                digest.update(f"{file.name}\0{file.stat().st_size}\0".encode())
                with open(file, "rb") as handle:
                    for block in iter(lambda h=handle: h.read(1 << 20), b""):
                        digest.update(block)
            return f"sha256-{digest.hexdigest()[:16]}"
        digest.update(self.encoder.config.to_json_string(use_diff=False).encode())
        for name, tensor in sorted(self.encoder.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy())
        return f"{self._hub_id or self.path}#{digest.hexdigest()[:16]}"


def _content_files(folder: Path) -> list[Path]:
    """The files of an encoder folder that decide P: config, weights (not the trait head), and
    tokenizer; sorted by name."""
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith("trait_head")
        and (p.name == "config.json" or p.suffix in _WEIGHT_SUFFIXES
             or p.name in _TOKENIZER_FILES)
    )


def _folder_pooling(path: str) -> str | None:
    """The ``pooling`` field of ``trait_head.json`` beside a local encoder, if any."""
    head = Path(path) / "trait_head.json"
    if not head.is_file():
        return None
    try:
        pooling = json.loads(head.read_text(encoding="utf-8")).get("pooling")
    except (json.JSONDecodeError, AttributeError) as err:
        raise InputError(
            f"{head}: not valid JSON ({err}); re-run psamf pretrain-personality"
        ) from err
    return pooling


class PersonalityEmbeddingCache:
    """On-disk cache of P keyed by (encoder identity, text).

    Layout: ``folder/<sha256(identity)[:16]>/`` holds safetensors chunks, each with ``keys``
    (n, 32) uint8 (sha256 of identity and text) and ``embeddings`` (n, H_p) float32, plus the
    identity in the metadata. Chunks are written atomically and named by their content, so two
    processes filling the same cache never clash; a chunk is only ever added, never rewritten.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._loaded: dict[str, dict[bytes, torch.Tensor]] = {}

    def _entries(self, identity: str) -> dict[bytes, torch.Tensor]:
        if identity not in self._loaded:
            entries: dict[bytes, torch.Tensor] = {}
            for chunk in sorted(self._dir(identity).glob("chunk-*.safetensors")):
                try:
                    tensors = load_file(str(chunk))
                except (SafetensorError, OSError) as err:
                    raise InputError(
                        f"{chunk}: unreadable personality cache chunk ({err}); "
                        "delete it to recompute"
                    ) from err
                keys, values = tensors.get("keys"), tensors.get("embeddings")
                if keys is None or values is None or keys.shape[0] != values.shape[0]:
                    raise InputError(f"{chunk}: malformed cache chunk; delete it to recompute")
                for key, value in zip(keys, values, strict=True):
                    entries[bytes(key.tolist())] = value
            self._loaded[identity] = entries
        return self._loaded[identity]

    def _dir(self, identity: str) -> Path:
        return self.folder / hashlib.sha256(identity.encode()).hexdigest()[:16]

    @staticmethod
    def key(identity: str, text: str) -> bytes:
        return hashlib.sha256(f"{identity}\0{text}".encode()).digest()

    def get_or_compute(
        self, encoder: PersonalityEncoder, texts: Sequence[str], *, batch_size: int = 64
    ) -> torch.Tensor:
        """P (N, H_p) for ``texts`` in order, computing (and storing) only the missing ones."""
        identity = encoder.identity
        entries = self._entries(identity)
        keys = [self.key(identity, text) for text in texts]
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in entries:
                missing.setdefault(key, text)
        if missing:
            new = encoder.encode(list(missing.values()), batch_size=batch_size)  # (M, H_p)
            key_tensor = torch.tensor([list(k) for k in missing], dtype=torch.uint8)  # (M, 32)
            name = hashlib.sha256(b"".join(missing)).hexdigest()[:16]
            save_tensors(
                self._dir(identity) / f"chunk-{name}.safetensors",
                {"keys": key_tensor, "embeddings": new},
                metadata={"identity": identity},
            )
            entries.update(zip(missing, new, strict=True))
        if not keys:
            return torch.zeros(0, encoder.hidden_size)
        out = torch.stack([entries[key] for key in keys])  # (N, H_p)
        if out.shape[1] != encoder.hidden_size:
            raise InputError(
                f"{self._dir(identity)}: cached width {out.shape[1]} != encoder width "
                f"{encoder.hidden_size}; delete the folder to recompute"
            )
        return out
