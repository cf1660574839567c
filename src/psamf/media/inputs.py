"""What the user gives beside the media: label.csv rows, a transcripts file, a timing file,
subtitles next to a clip. All are read in the main process and turned into per-file plans."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from psamf.data.readers import ID_SEPARATOR, LabelRow, read_label_rows
from psamf.errors import InputError, NotFoundError

SUBTITLE_SUFFIXES = (".srt", ".vtt")
NOT_MEDIA = {".csv", ".json", ".txt", ".pkl", ".md", *SUBTITLE_SUFFIXES}


@dataclass(frozen=True)
class Cue:
    """A stretch of a file: clip id, times (``end`` None = to the end of the file), given text."""

    clip_id: str
    start: float
    end: float | None
    text: str | None


def media_files(paths: list[Path]) -> list[Path]:
    """The media files named or inside the folders named (not recursive), sorted by name."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.is_file() and not
                                p.name.startswith(".") and p.suffix.lower() not in NOT_MEDIA))
        elif path.is_file():
            files.append(path)
        else:
            raise NotFoundError(f"{path}: media file or folder not found")
    if not files:
        raise InputError(f"no media files in {', '.join(map(str, paths))}")
    seen: dict[str, Path] = {}
    for f in files:
        if ID_SEPARATOR in f.stem:
            raise InputError(f"{f}: a file name may not contain '{ID_SEPARATOR}' (the id separator)"
                             "; rename it")
        if f.stem in seen:
            raise InputError(f"{f} and {seen[f.stem]}: two files with the same name stem "
                             f"'{f.stem}' (the video id); rename one")
        seen[f.stem] = f
    return files


def _csv_rows(path: Path, required: set[str]) -> list[tuple[int, dict[str, str]]]:
    if not path.is_file():
        raise NotFoundError(f"{path}: file not found")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = required - set(reader.fieldnames or ())
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))} (needs "
                             f"{', '.join(sorted(required))})")
        return [(reader.line_num, row) for row in reader]


def _stem(name: str) -> str:
    return Path(name.strip()).stem if Path(name.strip()).suffix else name.strip()


def read_transcripts(path: Path) -> dict[str, str]:
    """A transcripts CSV: columns ``file`` (name or stem) and ``text``; stem -> text."""
    return {_stem(row["file"]): row["text"] or "" for _, row in _csv_rows(path, {"file", "text"})}


def read_timing(path: Path) -> dict[str, list[Cue]]:
    """A timing CSV: ``file, start, end[, text]`` (seconds); stem -> cues in file order."""
    out: dict[str, list[Cue]] = {}
    for line, row in _csv_rows(path, {"file", "start", "end"}):
        try:
            start, end = float(row["start"]), float(row["end"])
        except (TypeError, ValueError):
            raise InputError(f"{path}: line {line}: start/end must be seconds, got "
                             f"{row['start']!r}, {row['end']!r}") from None
        if not 0 <= start < end:
            raise InputError(f"{path}: line {line}: needs 0 <= start < end, got {start}, {end}")
        cues = out.setdefault(_stem(row["file"]), [])
        text = (row.get("text") or "").strip() or None
        cues.append(Cue(str(len(cues) + 1), start, end, text))
    return out


_TIME = re.compile(r"(?:(\d+):)?(\d+):(\d+)[.,](\d+)")


def _seconds(stamp: str) -> float:
    m = _TIME.fullmatch(stamp.strip().split(" ")[0])
    if not m:
        raise ValueError(stamp)
    h, mi, s, frac = m.groups()
    return int(h or 0) * 3600 + int(mi) * 60 + int(s) + float(f"0.{frac}")


def read_subtitles(path: Path) -> list[Cue]:
    """Cues of an .srt or .vtt file (text joined per cue, markup tags dropped)."""
    cues: list[Cue] = []
    blocks = re.split(r"\n\s*\n", path.read_text(encoding="utf-8-sig").replace("\r", ""))
    for block in blocks:
        lines = [ln for ln in block.strip().split("\n") if ln.strip()]
        timing = next((i for i, ln in enumerate(lines) if "-->" in ln), None)
        if timing is None:
            continue
        left, right = lines[timing].split("-->")
        try:
            start, end = _seconds(left), _seconds(right)
        except ValueError:
            raise InputError(f"{path}: bad cue time line {lines[timing]!r}") from None
        text = " ".join(re.sub(r"<[^>]+>", "", ln).strip() for ln in lines[timing + 1:])
        cues.append(Cue(str(len(cues) + 1), start, end, text.strip() or None))
    if not cues:
        raise InputError(f"{path}: no subtitle cues found")
    return cues


def subtitles_for(media: Path) -> Path | None:
    for suffix in SUBTITLE_SUFFIXES:
        candidate = media.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def labels_by_video(path: Path) -> dict[str, dict[str, LabelRow]]:
    """label.csv rows grouped: video_id -> clip_id -> row."""
    out: dict[str, dict[str, LabelRow]] = {}
    for uid, row in read_label_rows(path).items():
        video, _, clip = uid.partition(ID_SEPARATOR)
        out.setdefault(video, {})[clip] = row
    return out
