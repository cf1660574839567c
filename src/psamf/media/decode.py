"""Decoding audio and video with PyAV (its wheels bundle FFmpeg: no system ffmpeg is needed).

Every reader streams: audio comes in chunks and frames one at a time, so a two-hour file costs
the memory of one chunk, not of the file. A file FFmpeg cannot open, or a stream that is asked
for but absent, is an ``InputError`` naming the file and what is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from psamf.errors import InputError, NotFoundError

INSTALL_HINT = "install the media extra: pip install 'psamf[media]'"


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise NotFoundError(f"PyAV (module 'av') is not installed; {INSTALL_HINT}") from None
    return av


@dataclass(frozen=True)
class MediaInfo:
    """What a file holds: duration and which streams."""

    path: Path
    duration_s: float
    has_audio: bool
    has_video: bool
    video_fps: float | None


def _open(path: str | Path) -> Any:
    av = _av()
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{path}: media file not found")
    try:
        return av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as err:
        raise InputError(f"{path}: not a readable audio/video file ({_why(err)})") from None


def _why(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def probe(path: str | Path) -> MediaInfo:
    """Duration and streams of ``path`` (a file with neither audio nor video is refused)."""
    path = Path(path)
    with _open(path) as container:
        audio = container.streams.audio
        video = container.streams.video
        if not audio and not video:
            raise InputError(f"{path}: no audio or video stream")
        duration = 0.0
        if container.duration is not None:
            duration = container.duration / 1_000_000  # microseconds (av.time_base)
        else:
            for stream in (*audio, *video):
                if stream.duration is not None and stream.time_base is not None:
                    duration = max(duration, float(stream.duration * stream.time_base))
        fps = None
        if video and video[0].average_rate:
            fps = float(video[0].average_rate)
        return MediaInfo(path, duration, bool(audio), bool(video), fps)


def iter_audio(
    path: str | Path, *, sr: int = 16000, chunk_s: float = 30.0,
    start_s: float | None = None, end_s: float | None = None,
) -> Iterator[np.ndarray]:
    """Mono float32 audio in [-1, 1] at ``sr`` Hz, in chunks of about ``chunk_s`` seconds."""
    av = _av()
    path = Path(path)
    chunk = max(1, int(chunk_s * sr))
    first = 0 if start_s is None else int(round(start_s * sr))
    last = None if end_s is None else int(round(end_s * sr))
    with _open(path) as container:
        if not container.streams.audio:
            raise InputError(f"{path}: no audio stream (give the transcript, or pass --no-audio)")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
        pending: list[np.ndarray] = []
        held = 0
        pos = 0  # samples produced so far (at sr)
        try:
            if start_s:
                container.seek(int(start_s / stream.time_base), stream=stream, backward=True)
                pos = None  # type: ignore[assignment]  # known from the first frame's time
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1)
                    if pos is None:
                        pos = int(round(float(out.time or 0.0) * sr))
                    lo, hi = pos, pos + samples.size
                    pos = hi
                    if hi <= first:
                        continue
                    if last is not None and lo >= last:
                        break
                    samples = samples[max(0, first - lo): None if last is None else last - lo]
                    pending.append(samples)
                    held += samples.size
                    while held >= chunk:
                        joined = np.concatenate(pending)
                        yield np.clip(joined[:chunk], -1.0, 1.0).astype(np.float32, copy=False)
                        pending, held = [joined[chunk:]], joined.size - chunk
                if last is not None and pos is not None and pos >= last:
                    break
            for out in resampler.resample(None):  # flush
                if last is None or (pos is not None and pos < last):
                    pending.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as err:
            raise InputError(f"{path}: audio stream is corrupt ({_why(err)})") from None
        if pending:
            rest = np.concatenate(pending)
            if rest.size:
                yield np.clip(rest, -1.0, 1.0).astype(np.float32, copy=False)


def load_audio(
    path: str | Path, *, sr: int = 16000, start_s: float | None = None, end_s: float | None = None
) -> np.ndarray:
    """The whole (or ``start_s``..``end_s``) mono float32 audio of ``path`` at ``sr`` Hz."""
    parts = list(iter_audio(path, sr=sr, start_s=start_s, end_s=end_s))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def iter_frames(
    path: str | Path, *, fps: float = 5.0, start_s: float | None = None, end_s: float | None = None
) -> Iterator[tuple[float, np.ndarray]]:
    """(time in s, RGB uint8 (H, W, 3)) sampled at ``fps``: the first decoded frame at or after
    each tick ``start + k / fps``; one frame in memory at a time."""
    av = _av()
    path = Path(path)
    if fps <= 0:
        raise InputError(f"frame rate must be positive, got {fps}")
    with _open(path) as container:
        if not container.streams.video:
            raise InputError(f"{path}: no video stream (pass --no-vision for audio-only files)")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        begin = start_s or 0.0
        tick = 0
        try:
            if start_s:
                container.seek(int(start_s / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else 0.0
                if end_s is not None and t >= end_s:
                    break
                if t < begin + tick / fps - 1e-6:
                    continue
                image = frame.to_ndarray(format="rgb24")
                yield t, image
                tick = int(np.floor((t - begin) * fps + 1e-6)) + 1
        except av.FFmpegError as err:
            raise InputError(f"{path}: video stream is corrupt ({_why(err)})") from None
