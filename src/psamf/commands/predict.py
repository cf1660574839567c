"""``psamf predict``: the sentiment score of one clip from a trained run, printed as JSON.

Examples::

    psamf predict runs/my-run --text "the plot was really great"
    psamf predict runs/my-mosi-run --text "i loved it" --audio clip_audio.npy
    psamf predict runs/my-run --personality-encoder /backup/personality-minilm --text "great"
    psamf predict runs/my-run --media interview.mp4 --plot timeline.png
    psamf predict runs/my-run --media talk.m4a --transcript talk.srt

--media: any file PyAV/FFmpeg decodes (audio-only too). It is extracted with the extractors and
settings of the run's feature profile, only for the modalities the model reads (a text-only model:
the transcript alone). The transcript comes from --transcript (text, a text file, or .srt/.vtt
with times), else speech recognition with the run's speech model. Per segment (--split segments,
the default: one per recognised segment or subtitle cue; --split file: the whole clip) the JSON
gives the span, transcript, score and class; the Big Five reading is of the whole transcript.
--plot draws the segments' scores over time. A model that reads frame features not made by psamf
extract (e.g. MOSI's COVAREP audio) is refused: train on extracted data, or use a text model.

Audio / vision are .npy arrays of frame features (T, d) with the run's widths (loaded with
allow_pickle=False). A modality the model uses but that is not given counts as absent (length 0).
When the run's personality encoder folder has a trait head, the Big Five reading is included. When
that folder moved, ``--personality-encoder PATH`` names a copy (same content identity only).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from psamf.commands._args import ENCODER_FLAG, add_command, add_encoder_override, add_run_argument
from psamf.device import DEVICES_HELP
from psamf.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from psamf.personality.folder import EncoderFolder

SENTIMENT_CLASSES: dict[int, str] = {
    -3: "strongly negative", -2: "negative", -1: "weakly negative", 0: "neutral",
    1: "weakly positive", 2: "positive", 3: "strongly positive",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers, "predict", doc=__doc__,
        help="sentiment score (and Big Five reading) of one transcript + optional audio/vision",
    )
    add_run_argument(p)
    add_encoder_override(p)
    given = p.add_mutually_exclusive_group(required=True)
    given.add_argument("--text", help="the transcript (not empty)")
    given.add_argument("--media", type=Path, default=None,
                       help="a video or audio file: extract it as the run's data was, then score")
    p.add_argument("--transcript", default=None, metavar="TEXT|FILE",
                   help="with --media: the words spoken (text, a UTF-8 file, or .srt/.vtt); "
                        "skips speech recognition")
    p.add_argument("--split", choices=("file", "segments"), default=None,
                   help="with --media: one reading per recognised segment / subtitle cue "
                        "(default) or for the whole file")
    p.add_argument("--plot", type=Path, default=None, metavar="PNG",
                   help="with --media: draw sentiment over time to this PNG")
    p.add_argument("--audio", type=Path, default=None, help=".npy audio features (T, d_audio)")
    p.add_argument("--vision", type=Path, default=None, help=".npy vision features (T, d_vision)")
    p.add_argument("--seed", type=int, default=None, help="which seed's model (default: first)")
    p.add_argument("--device", default="cpu",
                   help=f"{DEVICES_HELP} (default cpu: one utterance is fastest there)")
    p.set_defaults(func=run)


def sentiment_class(score: float) -> tuple[int, str]:
    """The 7-class reading of a score: round(clip(score, -3, 3)) and its name."""
    value = int(np.round(np.clip(score, -3.0, 3.0)))
    return value, SENTIMENT_CLASSES[value]


def load_frames(path: Path | None, name: str, width: int | None) -> tuple[np.ndarray | None, str]:
    """A (T, d) float32 array from ``path``, checked against the model's width for ``name``."""
    if path is None:
        return None, "absent"
    if width is None:
        raise InputError(f"--{name} {path}: this run's model does not use {name}; drop --{name}")
    if not path.is_file():
        raise NotFoundError(f"--{name} {path}: no such file")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:  # EOFError: an empty or truncated file
        raise InputError(f"--{name} {path}: not a readable .npy array ({err or 'empty file'})") \
            from err
    if not isinstance(array, np.ndarray):  # an .npz archive loads as a mapping of arrays
        array.close()
        raise InputError(f"--{name} {path}: an .npz archive, not one .npy array; save the "
                         f"(T, {width}) frames with numpy.save")
    if array.ndim != 2 or array.shape[0] < 1:
        raise InputError(f"--{name} {path}: expected a (T, {width}) array of frames, got shape "
                         f"{array.shape}")
    if array.shape[1] != width:
        raise InputError(f"--{name} {path}: frames have width {array.shape[1]} but the run's "
                         f"model expects {width} ({name}_dim in config.yaml)")
    if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise InputError(f"--{name} {path}: must hold finite numbers")
    return array.astype(np.float32), "given"


def run(args: argparse.Namespace) -> int:
    import torch

    from psamf.device import resolve_device
    from psamf.training.batching import model_batch, to_device
    from psamf.training.runs import (
        load_trained_model,
        locate_personality_encoder,
        quiet_transformers,
    )

    quiet_transformers(getattr(args, "verbose", False))

    if args.media is not None:
        return run_media(args)
    for flag in ("transcript", "split", "plot"):
        if getattr(args, flag) is not None:
            raise InputError(f"--{flag} needs --media CLIP; with --text give only the transcript")
    if not args.text.strip():
        raise InputError("--text is empty; give the transcript of the clip to score")
    device = resolve_device(args.device)
    config, seed, model = load_trained_model(args.run, args.seed, device=device)
    config = locate_personality_encoder(args.run, config, args.personality_encoder,
                                        how=ENCODER_FLAG)
    widths = config.model.modality_widths()
    used: dict[str, str] = {}
    frames: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for name in ("audio", "vision"):
        array, status = load_frames(getattr(args, name), name, widths.get(name))
        if name in widths:
            if array is None:  # absent for this clip: one zero frame, length 0
                array = np.zeros((1, widths[name]), dtype=np.float32)
            length = 0 if status == "absent" else array.shape[0]
            frames[name] = (torch.from_numpy(array)[None], torch.tensor([length]))  # (1, T, d)
            used[name] = status
    out: dict = {"run": str(args.run), "seed": seed, "text": args.text}
    big_five, p = None, None
    folder, encoder = _personality(args.run, config, device)
    if encoder is not None:
        p = encoder.encode([args.text])  # (1, H_p)
        big_five = _big_five(folder, p, args.text)
    batch = to_device(model_batch(model.tokenize([args.text]), personality=p, frames=frames),
                      device)
    with torch.no_grad():
        score = float(model(**batch).prediction[0])
    value, label = sentiment_class(score)
    out.update(score=score, sentiment_class=value, label=label, modalities=used)
    out["big_five"] = big_five
    print(json.dumps(out, indent=2))
    return 0


def _personality(run: Path, config, device):
    """(encoder folder, loaded encoder) when the model reads P, else (None, None)."""
    if not config.uses_personality():
        return None, None
    from psamf.personality.encoder import PersonalityEncoder
    from psamf.personality.folder import EncoderFolder
    from psamf.training.runs import personality_check

    folder = EncoderFolder.open(config.personality_encoder,
                                pooling=config.personality_pooling_arg())
    encoder = PersonalityEncoder(folder)
    personality_check(run, how=ENCODER_FLAG)(encoder)
    return folder, encoder.to(device)


def run_media(args: argparse.Namespace) -> int:
    """``--media CLIP``: extract the clip as the run's data was, score each segment."""
    import torch

    from psamf.device import resolve_device
    from psamf.media import reading
    from psamf.training.batching import model_batch, to_device
    from psamf.training.runs import (
        load_trained_model,
        locate_personality_encoder,
        recorded_feature_profile,
    )

    for flag in ("audio", "vision"):
        if getattr(args, flag) is not None:
            raise InputError(f"--{flag} with --media: the clip's {flag} is extracted from it; "
                             f"drop --{flag}")
    transcript = reading.given_transcript(args.transcript)
    split = args.split or "segments"
    if transcript and transcript.source == "given" and args.split == "segments":
        raise InputError("--split segments with a plain --transcript: it has no times to cut at; "
                         "give an .srt/.vtt file, or use --split file")
    if transcript and args.split == "file" and len(transcript.cues) > 1:  # one reading
        transcript = reading.joined(transcript)
    if args.plot is not None and args.plot.parent and not args.plot.parent.is_dir():
        raise NotFoundError(f"--plot {args.plot}: folder {args.plot.parent} does not exist")
    device = resolve_device(args.device)
    config, seed, model = load_trained_model(args.run, args.seed, device=device)
    config = locate_personality_encoder(args.run, config, args.personality_encoder,
                                        how=ENCODER_FLAG)
    widths = config.model.modality_widths()
    profile = recorded_feature_profile(args.run)
    reading.check_readable(args.run, widths, profile)  # before any slow extraction
    folder, encoder = _personality(args.run, config, device)
    clip = reading.extract_for_model(args.media, args.run, widths, profile, split=split,
                                     transcript=transcript)
    utts = clip.utterances
    texts = [u.text for u in utts]
    scores: list[float] = []
    for lo in range(0, len(utts), reading.BATCH):
        rows = slice(lo, lo + reading.BATCH)
        p = encoder.encode(texts[rows]) if encoder is not None else None
        batch = to_device(model_batch(model.tokenize(texts[rows]), personality=p,
                                      frames=reading.frames_for(clip, widths, rows)), device)
        with torch.no_grad():
            scores.extend(float(v) for v in model(**batch).prediction)
    segments = []
    for u, score in zip(utts, scores, strict=True):
        value, label = sentiment_class(score)
        segments.append({"start": round(u.start, 3), "end": round(min(u.end,
                         max(clip.info.duration_s, u.start)), 3), "text": u.text,
                         "score": score, "sentiment_class": value, "label": label})
    whole = " ".join(texts)
    big_five = None
    if encoder is not None:
        big_five = _big_five(folder, encoder.encode([whole]), whole)
    source = transcript.source if transcript else "speech recognition"
    out = {
        "run": str(args.run), "seed": seed, "media": str(args.media),
        "duration_s": round(clip.info.duration_s, 3), "split": split,
        "modalities": reading.modality_report(clip, widths, source),
        "extractors": clip.built,
        "segments": segments,
        "clip": {"text": whole, "mean_score": reading.duration_weighted_mean(segments),
                 "big_five": big_five},
    }
    if args.plot is not None:
        reading.plot_timeline(args.plot, segments, clip.info.duration_s,
                              f"{args.media.name}: sentiment over time")
        out["plot"] = str(args.plot)
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


def _big_five(folder: EncoderFolder, p, text: str) -> dict[str, float] | None:
    """Trait scores from the personality encoder folder's head, or None when it has none."""
    import torch

    head = folder.trait_head()
    if head is None:
        return None
    if not text.strip():
        return dict(zip(head.traits, head.fallback, strict=True))
    with torch.no_grad():
        scores = head.eval()(p.float().cpu())[0]
    return {trait: float(v) for trait, v in zip(head.traits, scores, strict=True)}
