"""EncoderFolder: what psamf knows about a personality encoder before loading it.

A personality encoder is named by a folder, a short name (``minilm``) or a hub id. Its folder is a
plain Hugging Face encoder folder, plus ``trait_head.json`` / ``trait_head.safetensors`` when
``pretrain-personality`` trained it on the Big Five. Every caller asks this object — never the
files — where the encoder lives, how P is pooled, whether it was personality-pretrained, its trait
head, and its content identity (the key of cached P and what result files record).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from psamf.backbones import is_short_name, resolve_backbone
from psamf.errors import InputError
from psamf.personality.pooling import canonical_pooling

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from torch import nn

    from psamf.personality.head import TraitHead

HEAD_CONFIG = "trait_head.json"
HEAD_WEIGHTS = "trait_head.safetensors"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")
# Files that decide how text is split into ids (hashed into the identity with config and weights).
_TOKENIZER_FILES = frozenset({
    "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
})


def identity_string(content_id: str, pooling: str, max_length: int) -> str:
    """P's identity: ``<content id>:<pooling>:<max_length>``.

    Committed result files record these strings and the on-disk cache is keyed by them, so the
    format is frozen: the first token renders as ``cls`` (the word used when they were first
    written), e.g. ``sha256-2dfdcbcd51980946:cls:128`` / ``...:mean:128``.
    """
    word = "cls" if canonical_pooling(pooling) == "first" else pooling
    return f"{content_id}:{word}:{int(max_length)}"


def read_head_config(folder: str | Path) -> dict | None:
    """``trait_head.json`` in ``folder`` as a dict (its ``pooling`` canonical), None if absent."""
    path = Path(folder) / HEAD_CONFIG
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err}); re-run psamf pretrain-personality") \
            from err
    if not isinstance(config, dict):
        raise InputError(f"{path}: expected a JSON object; re-run psamf pretrain-personality")
    if "pooling" in config:
        config["pooling"] = canonical_pooling(config["pooling"], where=f"{path} 'pooling'")
    return config


@dataclass(frozen=True, kw_only=True)
class EncoderFolder:
    """A personality encoder as named (``name``) and where it loads from (``path``).

    Fields:
        name: as given (a folder, a short name such as ``minilm``, or a hub id).
        path: what ``from_pretrained`` reads (``resolve_backbone(name)``).
        pooling: ``first`` or ``mean``; when not asked for, the pooling the folder's trait head
            was trained with, else ``first`` (the paper's reading).
        max_length: tokens of each transcript P reads.
        hub_id: the hub id when ``name`` is one (it keeps an id-based identity even when it loads
            from the local Hugging Face cache); None for folders and short names.
    """

    name: str
    path: str
    pooling: str
    max_length: int = 128
    hub_id: str | None = None

    @classmethod
    def open(
        cls, name_or_path: str | Path, *, pooling: str | None = None, max_length: int = 128
    ) -> EncoderFolder:
        """Resolve ``name_or_path``; ``pooling`` None = the trait head's, else ``first``."""
        name = str(name_or_path)
        path = resolve_backbone(name)
        local = path == name or is_short_name(name) or Path(name).is_dir()
        if max_length < 1:
            raise InputError(f"max_length must be >= 1, got {max_length}")
        if pooling is None:
            head = read_head_config(path) or {}
            pooling = head.get("pooling") or "first"
        return cls(name=name, path=path, pooling=canonical_pooling(pooling),
                   max_length=int(max_length), hub_id=None if local else name)

    @property
    def is_folder(self) -> bool:
        """A local folder (not a hub id)."""
        return self.hub_id is None and Path(self.path).is_dir()

    @property
    def pretrained(self) -> bool:
        """Whether ``pretrain-personality`` trained it: it has a trait head."""
        return (Path(self.path) / HEAD_CONFIG).is_file()

    def head_config(self) -> dict | None:
        return read_head_config(self.path)

    def trait_head(self) -> TraitHead | None:
        """The Big Five head saved beside the encoder; None when it has none, or when this folder
        was opened with another pooling than the head was trained on (its reading would be
        meaningless: the head only knows P pooled its own way)."""
        from psamf.personality.head import load_trait_head

        if not self.is_folder or not self.pretrained:
            return None
        trained = canonical_pooling((self.head_config() or {}).get("pooling") or "first")
        if trained != self.pooling:
            log.warning("%s: its trait head reads P pooled by %s, but P is pooled by %s here; "
                        "no Big Five reading", self.path, trained, self.pooling)
            return None
        return load_trait_head(self.path)

    def content_id(self, model: nn.Module | None = None) -> str:
        """What the encoder computes, not where it lives.

        A local folder: sha256 of its config, weight and tokenizer files (names and bytes), so a
        copied or re-downloaded encoder keeps its identity. Otherwise (a hub id whose files are
        not local): the id plus a sha256 of ``model``'s config and weights (the loaded encoder).
        """
        digest = hashlib.sha256()
        folder = Path(self.path)
        files = _content_files(folder) if folder.is_dir() and self.hub_id is None else []
        if any(f.suffix in _WEIGHT_SUFFIXES for f in files):
            for file in files:
                digest.update(f"{file.name}\0{file.stat().st_size}\0".encode())
                with open(file, "rb") as handle:
                    for block in iter(lambda h=handle: h.read(1 << 20), b""):
                        digest.update(block)
            return f"sha256-{digest.hexdigest()[:16]}"
        if model is None:  # a hub id: only the loaded weights say what it computes
            raise InputError(f"personality encoder {self.name}: no weight files under "
                             f"{self.path}; load it (PersonalityEncoder) to hash its weights")
        import torch

        digest.update(model.config.to_json_string(use_diff=False).encode())
        for name, tensor in sorted(model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy())
        return f"{self.hub_id or self.path}#{digest.hexdigest()[:16]}"

    def identity(self, model: nn.Module | None = None) -> str:
        """P's identity (``identity_string``) for this encoder, pooling and length."""
        return identity_string(self.content_id(model), self.pooling, self.max_length)


def _content_files(folder: Path) -> list[Path]:
    """The files of an encoder folder that decide P: config, weights (not the trait head), and
    tokenizer; sorted by name."""
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith("trait_head")
        and (p.name == "config.json" or p.suffix in _WEIGHT_SUFFIXES
             or p.name in _TOKENIZER_FILES)
    )
