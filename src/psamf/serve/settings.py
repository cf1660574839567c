"""The server's limits and batching settings (every one a ``psamf serve`` flag)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from psamf.errors import InputError


@dataclass(frozen=True)
class ServeSettings:
    """Limits that keep one client from exhausting the server; defaults suit one CPU model."""

    max_texts: int = 64  # texts in one POST /v1/predict
    max_text_chars: int = 2000  # characters in one text
    max_body_bytes: int = 1_000_000  # a JSON request body (features included)
    max_clip_bytes: int = 50_000_000  # an uploaded clip
    max_clip_seconds: float = 600.0  # an uploaded clip's duration
    request_timeout_s: float = 30.0  # one text request, queueing included
    media_timeout_s: float = 300.0  # one clip: decoding, speech recognition, features, model
    max_concurrent: int = 64  # requests in flight at once; beyond it: 503 (retry later)
    max_batch: int = 32  # texts in one micro-batched model call
    batch_wait_ms: float = 5.0  # how long the first request of a batch waits for company

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not value > 0:
                raise InputError(f"serve setting {f.name}={value}: must be > 0 "
                                 f"(--{f.name.replace('_', '-')})")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        return cls(**json.loads(text))
