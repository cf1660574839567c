"""Acoustic frame features: one row of numbers per hop of a mono waveform.

Two extractors, chosen by name through one registry (``make_acoustic``):

``librosa`` (default; librosa is ISC-licensed, needs no model)
    At a 10 ms hop (25 ms analysis window), per frame: 13 MFCCs, log RMS energy (dBFS), F0 (Hz,
    0 on unvoiced frames), a voicing flag (0/1), periodicity (normalised autocorrelation at the F0
    period), spectral centroid, bandwidth and 85 % roll-off (Hz), spectral flatness and the
    zero-crossing rate. F0 comes from YIN, not pYIN: on one core pYIN took 0.08x real time for
    10 s of speech, YIN 0.003x, and the whole extractor about 0.004x once librosa is warm (the
    first call in a process adds a second or two of imports and JIT compilation). YIN gives no
    voicing decision, so a frame is voiced when its periodicity and its energy pass the two
    thresholds in the settings. 10 ms is the field's usual hop (COVAREP and eGeMAPS use it), and
    at this cost there is no reason to coarsen it.

``egemaps``
    openSMILE's eGeMAPSv02 low-level descriptors (25 per frame, 10 ms hop). The openSMILE library
    that the ``opensmile`` package bundles is under audEERING's research-only licence: no
    commercial or product use. Needs the ``egemaps`` extra.

``describe()`` returns every setting that changes the numbers; it is stored in a dataset's feature
profile, so features made with different settings are never mixed silently.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from psamf.errors import InputError
from psamf.media._optional import build_named, require


class AcousticExtractor(Protocol):
    """What every acoustic extractor offers (see the module docstring for the two there are)."""

    dim: int
    hop_s: float
    feature_names: tuple[str, ...]

    def extract(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """(T, dim) float32 features of a mono float waveform sampled at ``sr`` Hz."""
        ...

    def describe(self) -> dict[str, Any]:
        """{"name", "version", "settings"}: everything that identifies the numbers."""
        ...


def _check_audio(audio: np.ndarray, sr: int) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise InputError(
            f"audio has shape {audio.shape}; acoustic features need mono 1-D samples "
            "(average the channels first)"
        )
    if audio.size == 0:
        raise InputError("audio is empty (0 samples); give at least one hop of sound")
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise InputError(f"sample rate {sr!r} is not a positive integer number of Hz")
    audio = audio.astype(np.float32, copy=False)
    if not np.isfinite(audio).all():
        raise InputError("audio contains NaN or infinite samples; decode the file again")
    return audio


@dataclass(frozen=True)
class LibrosaAcoustic:
    """Frame features from librosa (see the module docstring); every field is a setting."""

    sr: int = 16000  # input at another rate is resampled to this first
    hop_s: float = 0.010
    win_s: float = 0.025
    n_mfcc: int = 13
    n_mels: int = 40
    fmin: float = 60.0  # F0 search range: covers adult speech
    fmax: float = 500.0
    voicing_periodicity: float = 0.6  # a frame is voiced at or above this periodicity ...
    voicing_min_db: float = -50.0  # ... and at or above this RMS level in dBFS

    name = "librosa"

    def __post_init__(self) -> None:
        if not 0 < self.win_s <= 0.2 or not 0 < self.hop_s <= self.win_s:
            raise InputError(
                f"librosa acoustic settings: hop_s={self.hop_s}, win_s={self.win_s} must satisfy "
                "0 < hop_s <= win_s <= 0.2 seconds"
            )
        if not 0 < self.fmin < self.fmax < self.sr / 2:
            raise InputError(
                f"librosa acoustic settings: need 0 < fmin ({self.fmin}) < fmax ({self.fmax}) "
                f"< sr/2 ({self.sr / 2})"
            )

    @property
    def feature_names(self) -> tuple[str, ...]:
        return (
            *(f"mfcc{i}" for i in range(self.n_mfcc)),
            "log_rms_db", "f0_hz", "voiced", "periodicity",
            "centroid_hz", "bandwidth_hz", "rolloff_hz", "flatness", "zcr",
        )  # fmt: skip

    @property
    def dim(self) -> int:
        return len(self.feature_names)

    @property
    def _hop(self) -> int:
        return round(self.hop_s * self.sr)

    @property
    def _win(self) -> int:
        return round(self.win_s * self.sr)

    @property
    def _n_fft(self) -> int:
        return 1 << math.ceil(math.log2(self._win))

    @property
    def _yin_frame(self) -> int:
        # YIN compares a half-frame with itself shifted by up to one longest period (sr / fmin).
        return 1 << math.ceil(math.log2(2 * self.sr / self.fmin + 2))

    def describe(self) -> dict[str, Any]:
        librosa = require("librosa", purpose="librosa acoustic features")
        return {
            "name": self.name,
            "version": librosa.__version__,
            "settings": dataclasses.asdict(self),
            "features": list(self.feature_names),
        }

    def extract(self, audio: np.ndarray, sr: int) -> np.ndarray:
        librosa = require("librosa", purpose="librosa acoustic features")
        y = _check_audio(audio, sr)
        if sr != self.sr:
            y = librosa.resample(y, orig_sr=sr, target_sr=self.sr)
        sr, hop = self.sr, self._hop

        magnitude = np.abs(
            librosa.stft(y, n_fft=self._n_fft, hop_length=hop, win_length=self._win)
        )  # (F, T)
        power = magnitude**2
        mel_db = librosa.power_to_db(
            librosa.feature.melspectrogram(S=power, sr=sr, n_mels=self.n_mels), ref=1.0, amin=1e-10
        )
        mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=self.n_mfcc)  # (n_mfcc, T)
        rms = librosa.feature.rms(S=magnitude, frame_length=self._n_fft)[0]
        log_rms = 20.0 * np.log10(np.maximum(rms, 1e-5))  # silence floors at -100 dBFS

        f0 = librosa.yin(
            y, fmin=self.fmin, fmax=self.fmax, sr=sr, frame_length=self._yin_frame, hop_length=hop
        )
        periodicity = _periodicity(y, f0, sr=sr, frame_length=self._yin_frame, hop=hop)
        voiced = (periodicity >= self.voicing_periodicity) & (log_rms >= self.voicing_min_db)

        rows = [
            mfcc,
            log_rms[None],
            np.where(voiced, f0, 0.0)[None],  # F0 is meaningless where nothing is voiced
            voiced[None].astype(np.float32),
            periodicity[None],
            librosa.feature.spectral_centroid(S=magnitude, sr=sr),
            librosa.feature.spectral_bandwidth(S=magnitude, sr=sr),
            librosa.feature.spectral_rolloff(S=magnitude, sr=sr),
            librosa.feature.spectral_flatness(S=magnitude),
            librosa.feature.zero_crossing_rate(y, frame_length=self._n_fft, hop_length=hop),
        ]
        frames = min(r.shape[1] for r in rows)  # all centred at the same hop: equal in practice
        out = np.concatenate([r[:, :frames] for r in rows]).T.astype(np.float32)  # (T, dim)
        # Silent frames divide zero by zero in a few spectral shapes; they carry no information.
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def _periodicity(
    y: np.ndarray, f0: np.ndarray, *, sr: int, frame_length: int, hop: int, chunk: int = 2048
) -> np.ndarray:
    """Normalised autocorrelation of each frame at its YIN period: ~1 voiced, ~0 noise/silence.

    Frames are centred like librosa's (zero padding of half a frame), so row t matches f0[t].
    """
    half = frame_length // 2
    padded = np.pad(y, half)
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop]  # (T', L)
    frames = frames[: len(f0)]
    lags = np.rint(sr / f0).astype(np.int64)  # (T,)
    out = np.zeros(len(f0), dtype=np.float32)
    offsets = np.arange(half)
    for start in range(0, len(frames), chunk):  # chunks keep memory flat on long files
        block = frames[start : start + chunk]  # (B, L)
        lag = lags[start : start + chunk, None]  # (B, 1)
        head = block[:, :half]  # (B, half)
        shifted = np.take_along_axis(block, offsets[None, :] + lag, axis=1)  # (B, half)
        num = (head * shifted).sum(axis=1)
        den = np.sqrt((head**2).sum(axis=1) * (shifted**2).sum(axis=1))
        out[start : start + len(block)] = np.where(den > 1e-12, num / np.maximum(den, 1e-12), 0.0)
    return np.clip(out, 0.0, 1.0)


@dataclass(frozen=True)
class EgemapsAcoustic:
    """openSMILE eGeMAPSv02 low-level descriptors (research-only licence, see module docstring)."""

    sr: int = 16000  # openSMILE resamples input at another rate to this

    name = "egemaps"
    hop_s = 0.010  # fixed by the eGeMAPS configuration

    def _smile(self) -> Any:
        opensmile = require("opensmile", extra="egemaps", purpose="eGeMAPS features")
        smile = getattr(self, "_cached", None)
        if smile is None:
            smile = opensmile.Smile(
                feature_set=opensmile.FeatureSet.eGeMAPSv02,
                feature_level=opensmile.FeatureLevel.LowLevelDescriptors,
                sampling_rate=self.sr,
                resample=True,
            )
            object.__setattr__(self, "_cached", smile)  # building the graph is the slow part
        return smile

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self._smile().feature_names)

    @property
    def dim(self) -> int:
        return len(self.feature_names)

    def describe(self) -> dict[str, Any]:
        opensmile = require("opensmile", extra="egemaps", purpose="eGeMAPS features")
        return {
            "name": self.name,
            "version": opensmile.__version__,
            "settings": {
                **dataclasses.asdict(self),
                "feature_set": "eGeMAPSv02",
                "feature_level": "LowLevelDescriptors",
            },
            "features": list(self.feature_names),
            "licence": "openSMILE: audEERING research-only licence (no commercial use)",
        }

    def extract(self, audio: np.ndarray, sr: int) -> np.ndarray:
        y = _check_audio(audio, sr)
        table = self._smile().process_signal(y, sr)
        out = table.to_numpy(dtype=np.float32)  # (T, 25)
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


ACOUSTIC_EXTRACTORS: dict[str, Callable[..., AcousticExtractor]] = {
    "librosa": LibrosaAcoustic,
    "egemaps": EgemapsAcoustic,
}


def make_acoustic(name: str = "librosa", **settings: Any) -> AcousticExtractor:
    """Build the acoustic extractor called ``name`` with ``settings`` (its dataclass fields)."""
    return build_named("acoustic", ACOUSTIC_EXTRACTORS, name, settings)
