"""From a clip to a reading: what ``psamf predict RUN --media CLIP`` does.

The clip is extracted with exactly the extractors (and settings) of the run's feature profile,
and only for the modalities the run's model reads: a text-only model gets the transcript alone,
with no acoustic or face extractor built. A model that reads frame features which were not made
by ``psamf extract`` (no profile: e.g. MOSI's COVAREP-derived audio) cannot read a clip's, so it
is refused rather than fed features that mean something else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from psamf.errors import InputError, NotFoundError
from psamf.media.extract import ClipExtraction, extract_clip, options_for_profile, stack_frames
from psamf.media.inputs import SUBTITLE_SUFFIXES, Cue, read_subtitles

TRANSCRIPT_FLAG = "--transcript TEXT|FILE"
BATCH = 16  # utterances per forward pass: bounds memory on long clips


@dataclass(frozen=True)
class GivenTranscript:
    """What ``--transcript`` gave: cues with text (and times, from subtitles) and its source."""

    cues: list[Cue]
    source: str  # "given" | "subtitles"


def transcript_from_text(text: str) -> GivenTranscript:
    """The words spoken, as text (never read as a path: a server passes its clients' text here)."""
    words = " ".join(str(text).split())
    if not words:
        raise InputError("transcript is empty; give the words spoken in the clip")
    return GivenTranscript([Cue("1", 0.0, None, words)], "given")


def transcript_from_file(path: str | Path) -> GivenTranscript:
    """A .srt/.vtt file (timed cues) or a UTF-8 text file of the words spoken."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"transcript file {path}: not found")
    if path.suffix.lower() in SUBTITLE_SUFFIXES:
        return GivenTranscript(read_subtitles(path), "subtitles")
    try:
        return transcript_from_text(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"transcript file {path}: not UTF-8 text; save it as UTF-8") from None


def given_transcript(value: str | None) -> GivenTranscript | None:
    """``--transcript TEXT|FILE`` on the command line: a file when one exists at that path, else
    the text itself."""
    if value is None:
        return None
    return transcript_from_file(value) if Path(value).is_file() else transcript_from_text(value)


def joined(given: GivenTranscript) -> GivenTranscript:
    """All cues as one, for the whole clip (``--split file`` with subtitles)."""
    text = " ".join(c.text for c in given.cues if c.text)
    return GivenTranscript([Cue("1", 0.0, None, text)], given.source)


def check_readable(run: Path, widths: dict[str, int], profile: dict[str, Any] | None) -> None:
    """A model reading frame features needs the profile they were made with."""
    if widths and profile is None:
        raise InputError(
            f"run {run} reads {'+'.join(sorted(widths))} features that were not made by psamf "
            "extract (no feature profile in run.json, e.g. MOSI's COVAREP audio), so a clip's "
            "features cannot stand in for them; train on a dataset made by psamf extract, or use a "
            "text model (--preset clips or model.model_type=text_finetune)")


def extract_for_model(
    media: Path, run: Path, widths: dict[str, int], profile: dict[str, Any] | None, *,
    split: str, transcript: GivenTranscript | None,
) -> ClipExtraction:
    """The clip's utterances with the features ``widths`` names, made as the run's were."""
    check_readable(run, widths, profile)
    opts = options_for_profile(profile, set(widths), split=split, source=f"run {run}")
    clip = extract_clip(media, opts, cues=transcript.cues if transcript else None,
                        transcript_hint=TRANSCRIPT_FLAG)
    for name, dim in widths.items():
        got = next((u for u in clip.utterances if getattr(u, name) is not None), None)
        if got is not None and getattr(got, name).shape[1] != dim:
            raise InputError(f"{media}: {name} features have width {getattr(got, name).shape[1]} "
                             f"but run {run}'s model expects {dim}; re-train on this profile")
    return clip


def frames_for(clip: ClipExtraction, widths: dict[str, int], rows: slice) -> dict[str, Any]:
    """Per modality the model reads: (features (B, T, d), lengths (B,)) as tensors; a modality
    the clip lacks (no video stream, no face) is absent: length 0, as in training."""
    import torch

    out = {}
    for name, dim in widths.items():
        feats, lengths = stack_frames([getattr(u, name) for u in clip.utterances[rows]], dim)
        out[name] = (torch.from_numpy(feats), torch.from_numpy(lengths))
    return out


def modality_report(clip: ClipExtraction, widths: dict[str, int], text_source: str) -> dict:
    """What the model read, per modality, and why one is absent."""
    report = {"text": text_source}
    for name, stream, lost in (("audio", clip.info.has_audio, None),
                               ("vision", clip.info.has_video, "no_face")):
        if name not in widths:
            continue
        has_rows = any(getattr(u, name) is not None and getattr(u, name).shape[0]
                       for u in clip.utterances)
        if has_rows:
            report[name] = "extracted"
        elif not stream:
            report[name] = f"absent (no {'audio' if name == 'audio' else 'video'} stream)"
        elif lost and clip.counts.get(lost):
            report[name] = "absent (no face found)"
        else:
            report[name] = "absent"
    return report


def plot_timeline(path: Path, segments: list[dict[str, Any]], duration: float, title: str) -> None:
    """Sentiment over time: each segment's score as a bar over its span, on the -3..+3 scale."""
    from psamf.training.plots import pyplot, save_png

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3))
    for seg in segments:
        colour = "tab:green" if seg["score"] > 0 else "tab:red"
        ax.fill_between([seg["start"], seg["end"]], 0, seg["score"], color=colour, alpha=0.35, lw=0)
        ax.hlines(seg["score"], seg["start"], seg["end"], color=colour, lw=2)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlim=(0, max(duration, max((s["end"] for s in segments), default=0.0), 1e-3)),
           ylim=(-3.2, 3.2), yticks=list(range(-3, 4)), xlabel="time (s)",
           ylabel="sentiment (-3 … +3)", title=title)
    ax.grid(axis="y", alpha=0.3)
    save_png(fig, path)
    plt.close(fig)


def duration_weighted_mean(segments: list[dict[str, Any]]) -> float:
    spans = np.array([max(s["end"] - s["start"], 1e-3) for s in segments])
    scores = np.array([s["score"] for s in segments])
    return float((spans * scores).sum() / spans.sum())
