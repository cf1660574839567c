"""Real media made at test time: espeak-ng speech, a scikit-image face moving across frames,
muxed with PyAV into .mp4 / .m4a / .wav, plus the bad cases (silence, no face, no audio, corrupt).
"""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

ESPEAK = shutil.which("espeak-ng") or "/usr/bin/espeak-ng"
SR = 16000


def speak(text: str, out: Path) -> np.ndarray:
    """espeak-ng's voice saying ``text``, as mono float32 at 16 kHz (also left in ``out``)."""
    from psamf.media.decode import load_audio

    subprocess.run([ESPEAK, "-s", "150", "-w", str(out), text], check=True, capture_output=True)
    return load_audio(out, sr=SR)


def face_frames(n: int, *, size: int = 256, face: bool = True, seed: int = 0) -> np.ndarray:
    """``n`` RGB frames: the astronaut's face (or a plain grey-noise scene) drifting right."""
    from skimage import data, transform

    rng = np.random.default_rng(seed)
    if face:
        crop = data.astronaut()[0:300, 100:400]  # head and shoulders
        tile = (transform.resize(crop, (size * 3 // 4, size * 3 // 4)) * 255).astype(np.uint8)
    else:
        tile = rng.integers(90, 110, (size * 3 // 4, size * 3 // 4, 3), dtype=np.uint8)
    frames = np.full((n, size, size, 3), 40, dtype=np.uint8)
    span = size - tile.shape[1]
    for i in range(n):
        x = int(span * i / max(1, n - 1))
        frames[i, size // 8: size // 8 + tile.shape[0], x: x + tile.shape[1]] = tile
    return frames


def write_media(
    out: Path, *, audio: np.ndarray | None = None, frames: np.ndarray | None = None,
    fps: int = 10, audio_codec: str = "aac",
) -> Path:
    """Mux ``frames`` (H.264) and/or ``audio`` (mono float at 16 kHz) into ``out`` with PyAV."""
    import av

    with av.open(str(out), mode="w") as container:
        vstream = astream = None
        if frames is not None:
            vstream = container.add_stream("libx264", rate=fps)
            vstream.width, vstream.height = frames.shape[2], frames.shape[1]
            vstream.pix_fmt = "yuv420p"
            vstream.options = {"preset": "ultrafast"}
        if audio is not None:
            rate = SR if audio_codec != "aac" else 16000
            astream = container.add_stream(audio_codec, rate=rate, layout="mono")
        if vstream is not None:
            for image in frames:
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                container.mux(vstream.encode(frame))
            container.mux(vstream.encode(None))
        if astream is not None:
            fmt = "s16" if audio_codec.startswith("pcm") else "fltp"
            samples = np.clip(audio, -1, 1)
            if fmt == "s16":
                samples = (samples * 32767).astype(np.int16)
            block = 1024
            for start in range(0, samples.size, block):
                piece = samples[start:start + block]
                frame = av.AudioFrame.from_ndarray(piece.reshape(1, -1).astype(
                    np.int16 if fmt == "s16" else np.float32), format=fmt, layout="mono")
                frame.sample_rate = SR
                frame.pts = start
                frame.time_base = Fraction(1, SR)
                container.mux(astream.encode(frame))
            container.mux(astream.encode(None))
    return out


def talking_face(folder: Path, name: str, text: str, *, face: bool = True,
                 size: int = 160) -> Path:
    """An .mp4 of the astronaut's face (or no face) with espeak-ng saying ``text``."""
    audio = speak(text, folder / f".{abs(hash(name))}.wav")
    fps = 10
    frames = face_frames(max(2, int(audio.size / SR * fps)), size=size, face=face)
    return write_media(folder / name, audio=audio, frames=frames, fps=fps)


def tone(seconds: float, *, freq: float = 220.0, level: float = 0.1) -> np.ndarray:
    t = np.arange(int(seconds * SR), dtype=np.float32) / SR
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over words / reference words (case and punctuation ignored)."""
    def words(s: str) -> list[str]:
        return "".join(c.lower() if c.isalnum() or c.isspace() else " " for c in s).split()

    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))
