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
    psamf predict models/my-model --text "i loved it" --backend onnx   # an exported folder

RUN is a run folder (psamf train) or a model folder (psamf export, which needs nothing else).

Audio / vision are .npy arrays of frame features (T, d) with the run's widths (loaded with
allow_pickle=False). A modality the model uses but that is not given counts as absent (length 0).
When the run's personality encoder folder has a trait head, the Big Five reading is included. When
that folder moved, ``--personality-encoder PATH`` names a copy (same content identity only).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from psamf.commands._args import add_command, add_encoder_override, add_run_argument
from psamf.device import DEVICES_HELP
from psamf.errors import InputError, NotFoundError
from psamf.inference import (  # noqa: F401 (SENTIMENT_CLASSES, sentiment_class: re-export)
    BACKENDS,
    SENTIMENT_CLASSES,
    check_frames,
    sentiment_class,
)


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
    p.add_argument("--backend", choices=BACKENDS, default="torch",
                   help="torch, or ONNX Runtime on a folder exported with --onnx (onnx-int8: "
                        "with --int8)")
    p.add_argument("--device", default="cpu",
                   help=f"{DEVICES_HELP} (default cpu: one utterance is fastest there)")
    p.set_defaults(func=run)


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
    return check_frames(array, f"--{name} {path}", width, name), "given"


def run(args: argparse.Namespace) -> int:
    from psamf.inference import Predictor
    from psamf.training.runs import quiet_transformers

    quiet_transformers(getattr(args, "verbose", False))

    if args.media is not None:
        return run_media(args)
    for flag in ("transcript", "split", "plot"):
        if getattr(args, flag) is not None:
            raise InputError(f"--{flag} needs --media CLIP; with --text give only the transcript")
    if not args.text.strip():
        raise InputError("--text is empty; give the transcript of the clip to score")
    predictor = Predictor(args.run, backend=args.backend, device=args.device, seed=args.seed,
                          personality_encoder=args.personality_encoder)
    widths = predictor.config.modality_widths()
    used: dict[str, str] = {}
    frames: dict[str, list[np.ndarray | None]] = {}
    for name in ("audio", "vision"):
        array, status = load_frames(getattr(args, name), name, widths.get(name))
        if name in widths:
            frames[name] = [array]
            used[name] = status
    (reading,) = predictor.predict_texts([args.text], **frames)
    out: dict = {"run": str(args.run), "seed": predictor.seed, "text": args.text,
                 "backend": predictor.backend}
    out.update(score=reading["score"], sentiment_class=reading["sentiment_class"],
               label=reading["label"], modalities=used, big_five=reading["big_five"])
    print(json.dumps(out, indent=2))
    return 0


def run_media(args: argparse.Namespace) -> int:
    """``--media CLIP``: extract the clip as the run's data was, score each segment."""
    from psamf.inference import Predictor
    from psamf.media import reading

    for flag in ("audio", "vision"):
        if getattr(args, flag) is not None:
            raise InputError(f"--{flag} with --media: the clip's {flag} is extracted from it; "
                             f"drop --{flag}")
    # The checks predict_media makes too, here in the flags' words and before the model loads.
    given = reading.given_transcript(args.transcript)
    if given and given.source == "given" and args.split == "segments":
        raise InputError("--split segments with a plain --transcript: it has no times to cut at; "
                         "give an .srt/.vtt file, or use --split file")
    if args.plot is not None and not args.plot.parent.is_dir():
        raise NotFoundError(f"--plot {args.plot}: folder {args.plot.parent} does not exist")
    predictor = Predictor(args.run, backend=args.backend, device=args.device, seed=args.seed,
                          personality_encoder=args.personality_encoder)
    from_file = args.transcript is not None and Path(args.transcript).is_file()
    out = predictor.predict_media(
        args.media, transcript=None if from_file else args.transcript,
        transcript_file=args.transcript if from_file else None, split=args.split, plot=args.plot)
    print(json.dumps({"run": str(args.run), "backend": predictor.backend, **out}, indent=2,
                     ensure_ascii=False))
    return 0
