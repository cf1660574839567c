"""PersonalityEmbeddingCache: P on disk, keyed by the encoder's identity and the text.

The personality encoder is frozen, so P is a function of (identity, text): computed once per
utterance, then read back by every run, seed and evaluation that uses the same encoder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from psamf.errors import InputError
from psamf.io import save_tensors

if TYPE_CHECKING:
    from psamf.personality.encoder import PersonalityEncoder


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
