"""Raw clips -> an MMSA-layout dataset folder (pickle + label.csv + profile.json).

One media file is one work item. Each file's result is cached under ``OUT/.work/`` (written
atomically, keyed by the file's content, the feature profile and the file's given text/timing),
so a killed extraction resumes without redoing finished files. The dataset itself is assembled
from the cache at the end, in file-name order, so ``--workers N`` gives the same pickle as one.

Per file, in one pass over its audio (30 s chunks, memory bounded): acoustic features and, when
needed, speech recognition with word timestamps; then one pass over its frames for the face
features. Outcomes other than success are counted, never silent:

- unreadable / corrupt file: refused (skipped, counted, one warning line);
- no audio stream: audio absent (length 0); refused unless its transcript is given;
- no video stream: vision absent (length 0);
- silence (no words recognised): refused unless its transcript is given;
- no face in any sampled frame: vision length 0.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import pickle
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from psamf.data.readers import ID_SEPARATOR, LABEL_CSV, MMSA_PICKLE_NAMES, LabelRow
from psamf.data.safe_pickle import safe_load
from psamf.errors import InputError, PsamfError
from psamf.io import atomic_path, sha256_file, write_json, write_text
from psamf.media import decode, inputs
from psamf.media.asr import DEFAULT_MODEL, Recognizer, Segment, Word
from psamf.media.inputs import Cue
from psamf.media.profile import build_profile, profile_digest, write_profile
from psamf.progress import bars_enabled

log = logging.getLogger(__name__)

SR = 16000
CHUNK_S = 30.0  # audio chunk: Whisper's window, and what bounds memory on long files
WORK_DIR = ".work"
REPORT_JSON = "extract_report.json"
SPLIT_MODES = ("file", "segments")
ALIGN_MODES = ("none", "words")
CYCLE = ("train", "valid", "test")  # modes given in turn when no label.csv is passed


@dataclass(frozen=True)
class ExtractOptions:
    """Settings of one extraction (the CLI's flags)."""

    acoustic: str | None = "librosa"  # None: --no-audio
    face_fps: float | None = 5.0  # None: --no-vision
    asr_model: str = DEFAULT_MODEL
    split: str = "file"  # "file" | "segments"; a timing file overrides both
    timing: Path | None = None
    align: str = "none"  # "none" | "words"
    labels: Path | None = None
    transcripts: Path | None = None
    workers: int = 1
    progress: bool = True
    # the extractors' other settings (their dataclass fields), e.g. from a run's feature profile
    acoustic_settings: dict[str, Any] | None = None
    face_settings: dict[str, Any] | None = None

    def utterance_mode(self) -> str:
        return "timing" if self.timing else self.split


@dataclass(frozen=True)
class FileJob:
    """One media file and what is given for it (cues: None = decided by the mode)."""

    path: Path
    video_id: str
    cues: tuple[Cue, ...] | None
    from_subtitles: bool = False


@dataclass
class Utterance:
    clip_id: str
    text: str
    start: float
    end: float
    audio: np.ndarray | None  # (T, d) or None when absent
    vision: np.ndarray | None


@dataclass
class FileResult:
    video_id: str
    refused: str | None = None  # reason, when the file gave nothing
    utterances: list[Utterance] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


class Tools:
    """The loaded extractors (one set per process)."""

    def __init__(self, opts: ExtractOptions) -> None:
        self.acoustic = self.face = None
        if opts.acoustic is not None:
            from psamf.media.acoustic import make_acoustic

            self.acoustic = make_acoustic(opts.acoustic, **(opts.acoustic_settings or {}))
        if opts.face_fps is not None:
            from psamf.media.face import make_face

            self.face = make_face("facemesh", **{**(opts.face_settings or {}),
                                                 "fps": opts.face_fps})
        self._asr: Recognizer | None = None
        self.asr_model = opts.asr_model

    @property
    def asr(self) -> Recognizer:
        if self._asr is None:  # loaded on first use: given transcripts may need none
            self._asr = Recognizer(self.asr_model)
        return self._asr

    def close(self) -> None:
        if self.face is not None:
            self.face.close()


# ----------------------------------------------------------------------------- one file


def _rows_in(feats: np.ndarray, times: np.ndarray, start: float, end: float) -> np.ndarray:
    return feats[(times >= start) & (times < end)]


def _per_word(feats: np.ndarray, times: np.ndarray, words: list[Word]) -> np.ndarray:
    """Mean feature row per word (the nearest row when no row falls inside a short word)."""
    out = np.zeros((len(words), feats.shape[1]), dtype=np.float32)
    if not feats.shape[0]:
        return out
    for i, w in enumerate(words):
        rows = _rows_in(feats, times, w.start, max(w.end, w.start + 1e-3))
        if not rows.shape[0]:
            rows = feats[[int(np.argmin(np.abs(times - (w.start + w.end) / 2)))]]
        out[i] = rows.mean(axis=0)
    return out


def _audio_pass(
    job: FileJob, tools: Tools, need_asr: bool
) -> tuple[np.ndarray | None, np.ndarray, list[Segment]]:
    """Acoustic features (+ their times) and recognised segments, streaming the audio."""
    feats: list[np.ndarray] = []
    times: list[np.ndarray] = []
    segments: list[Segment] = []
    offset = 0.0
    for chunk in decode.iter_audio(job.path, sr=SR, chunk_s=CHUNK_S):
        if tools.acoustic is not None:
            rows = np.asarray(tools.acoustic.extract(chunk, SR), dtype=np.float32)
            feats.append(rows)
            times.append(offset + np.arange(rows.shape[0]) * tools.acoustic.hop_s)
        if need_asr:
            segments.extend(tools.asr.transcribe(chunk, offset_s=offset))
        offset += chunk.size / SR
    if tools.acoustic is None:
        return None, np.zeros(0), segments
    dim = tools.acoustic.dim
    return (np.concatenate(feats) if feats else np.zeros((0, dim), np.float32),
            np.concatenate(times) if times else np.zeros(0), segments)


def _vision_pass(job: FileJob, tools: Tools) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Face features, their frame times and the per-frame face-found flags."""
    times: list[float] = []

    def frames() -> Iterator[np.ndarray]:
        for t, image in decode.iter_frames(job.path, fps=tools.face.fps):
            times.append(t)
            yield image

    feats, found = tools.face.extract(frames())
    return (np.asarray(feats, dtype=np.float32).reshape(-1, tools.face.dim),
            np.asarray(times), np.asarray(found, dtype=bool))


def process_file(
    job: FileJob, opts: ExtractOptions, tools: Tools, stage: Callable[[str], None] | None = None
) -> FileResult:
    """Extract one file; refusals become ``FileResult.refused`` (the caller counts them).
    ``stage`` is told which stage starts (the progress bar shows it)."""
    stage = stage or _quiet
    result = FileResult(job.video_id)
    counts: Counter[str] = Counter()
    try:
        info = decode.probe(job.path)
    except PsamfError as err:
        result.refused = f"unreadable: {err}"
        return result
    cues = list(job.cues) if job.cues is not None else None
    by_asr_segments = cues is None and opts.split == "segments"
    text_missing = cues is None and opts.split == "file" or any(c.text is None for c in cues or ())
    need_asr = by_asr_segments or text_missing or opts.align == "words"
    if not info.has_audio:
        counts["no_audio_stream"] += 1
        if need_asr:
            result.refused = ("no audio stream, and no transcript given (pass --transcripts, "
                              "--labels with text, or a subtitle file)")
            return result
    try:
        audio = times_a = None
        segments: list[Segment] = []
        if info.has_audio and (tools.acoustic is not None or need_asr):
            stage("audio+speech" if need_asr else "audio")
            audio, times_a, segments = _audio_pass(job, tools, need_asr)
        vision = times_v = None
        if tools.face is not None and info.has_video:
            stage("face")
            vision, times_v, found = _vision_pass(job, tools)
            if not found.any():
                counts["no_face"] += 1
                vision = vision[:0]
        elif tools.face is not None:
            counts["no_video_stream"] += 1
    except PsamfError as err:
        result.refused = f"corrupt: {err}"
        return result
    words = [w for s in segments for w in s.words]
    if by_asr_segments:
        cues = [Cue(str(i + 1), s.start, s.end, None) for i, s in enumerate(segments)]
    elif cues is None:
        cues = [Cue("1", 0.0, None, None)]
    for cue in cues:
        end = cue.end if cue.end is not None else max(info.duration_s, *(w.end for w in words),
                                                      0.0) + 1e-3
        cue_words = [w for w in words if cue.start <= w.start < end]
        text = cue.text if cue.text is not None else " ".join(w.text for w in cue_words).strip()
        if not text:
            counts["silent"] += 1
            continue
        if opts.align == "words":
            a = None if audio is None or not info.has_audio else _per_word(audio, times_a,
                                                                           cue_words)
            v = None if vision is None or not vision.shape[0] else _per_word(vision, times_v,
                                                                             cue_words)
        else:
            a = None if audio is None else _rows_in(audio, times_a, cue.start, end)
            v = None if vision is None or not vision.shape[0] else _rows_in(
                vision, times_v, cue.start, end)
        result.utterances.append(Utterance(cue.clip_id, text, cue.start, end, a, v))
    counts["asr_used"] += int(need_asr)
    if not result.utterances:
        result.refused = ("silent: no words recognised (give its transcript with --transcripts "
                          "or --labels)")
    result.counts = dict(counts)
    return result


# ----------------------------------------------------------------------------- one clip


@dataclass
class ClipExtraction:
    """One clip's utterances and which extractors were built for it."""

    info: decode.MediaInfo
    utterances: list[Utterance]
    counts: dict[str, int]
    built: list[str]  # "asr", "acoustic", "face": what actually ran


def options_for_profile(
    profile: dict[str, Any] | None, modalities: set[str] | frozenset[str], *, split: str = "file",
    source: str = "the run",
) -> ExtractOptions:
    """Options that reproduce ``profile``'s extractors for ``modalities`` (a subset of audio,
    vision) and nothing else: a text-only reader gets no acoustic/face extractor at all."""
    profile = profile or {}
    acoustic = profile.get("acoustic") if "audio" in modalities else None
    face = profile.get("face") if "vision" in modalities else None
    for name, desc in (("audio", acoustic), ("vision", face)):
        if name in modalities and not desc:
            raise InputError(f"{source}: reads {name} features but its feature profile names no "
                             f"{name} extractor; train on a dataset made by psamf extract")
    face_settings = dict(face.get("settings") or {}) if face else None
    asr = profile.get("asr") or {}
    return ExtractOptions(
        acoustic=acoustic["name"] if acoustic else None,
        acoustic_settings=dict(acoustic.get("settings") or {}) if acoustic else None,
        face_fps=float(face_settings.pop("fps", 5.0)) if face_settings is not None else None,
        face_settings=face_settings,
        asr_model=asr.get("model") or DEFAULT_MODEL,
        split=split, align=profile.get("alignment") or "none", progress=False,
    )


def extract_clip(path: Path, opts: ExtractOptions, *, cues: list[Cue] | None = None,
                 transcript_hint: str = "--transcript") -> ClipExtraction:
    """Extract one clip in memory (no cache): ``cues`` None = the whole clip, or ASR segments
    with ``opts.split == "segments"``. Anything that gives nothing is an ``InputError`` naming
    the file and ``transcript_hint`` (how to give the transcript)."""
    _check(opts)
    info = decode.probe(path)
    if not info.has_audio and (cues is None or any(c.text is None for c in cues)):
        raise InputError(f"{path}: no audio stream to recognise speech in; give the transcript "
                         f"with {transcript_hint}")
    tools = Tools(opts)
    try:
        result = process_file(FileJob(path, path.stem, tuple(cues) if cues else None), opts,
                              tools)
    finally:
        tools.close()
    built = [n for n, t in (("asr", tools._asr), ("acoustic", tools.acoustic),
                            ("face", tools.face)) if t is not None]
    if result.refused and result.refused.startswith("silent"):
        raise InputError(f"{path}: no words recognised in its audio (silence?); give the "
                         f"transcript with {transcript_hint}")
    if result.refused:  # "corrupt: <decoder's one line, naming the file>"
        raise InputError(result.refused.partition(": ")[2] or result.refused)
    return ClipExtraction(info, result.utterances, result.counts, built)


# ----------------------------------------------------------------------------- cache




def cache_key(job: FileJob, profile_sha: str) -> str:
    given = json.dumps([job.video_id, [c.__dict__ for c in job.cues] if job.cues else None])
    text = f"{sha256_file(job.path)}\0{profile_sha}\0{given}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _to_plain(result: FileResult) -> dict[str, Any]:
    return {"video_id": result.video_id, "refused": result.refused, "counts": result.counts,
            "utterances": [u.__dict__ for u in result.utterances]}


def _from_plain(data: dict[str, Any]) -> FileResult:
    return FileResult(data["video_id"], data["refused"],
                      [Utterance(**u) for u in data["utterances"]], dict(data["counts"]))


def write_cached(path: Path, result: FileResult) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(pickle.dumps(_to_plain(result), protocol=4))


def read_cached(path: Path) -> FileResult | None:
    if not path.is_file():
        return None
    try:
        return _from_plain(safe_load(path))
    except Exception:  # noqa: BLE001 - a damaged cache entry is simply redone
        log.warning("%s: unreadable cache entry, extracting the file again", path)
        return None


# ----------------------------------------------------------------------------- workers

_TOOLS: Tools | None = None


def _quiet(_stage: str) -> None:
    """Workers draw no bars: the main process counts finished files."""


def _worker_init(opts: ExtractOptions) -> None:
    global _TOOLS
    import torch

    torch.set_num_threads(1)
    _TOOLS = Tools(opts)


def _worker_run(job: FileJob, opts: ExtractOptions, out: Path) -> str:
    assert _TOOLS is not None
    write_cached(out, process_file(job, opts, _TOOLS, _quiet))
    return job.video_id


# ----------------------------------------------------------------------------- plan + assemble


def plan_jobs(media: list[Path], opts: ExtractOptions) -> list[FileJob]:
    files = inputs.media_files(media)
    timing = inputs.read_timing(opts.timing) if opts.timing else {}
    transcripts = inputs.read_transcripts(opts.transcripts) if opts.transcripts else {}
    labels = inputs.labels_by_video(opts.labels) if opts.labels else {}
    jobs = []
    for path in files:
        stem = path.stem
        cues: list[Cue] | None = None
        subs = False
        if opts.timing:
            cues = timing.get(stem, [])
            if not cues:
                log.warning("%s: not in the timing file %s; skipped", path, opts.timing)
                continue
        elif opts.split == "file":
            text = transcripts.get(stem)
            rows = labels.get(stem, {})
            if text is None and len(rows) == 1:
                text = next(iter(rows.values())).text.strip() or None
            clip = next(iter(rows)) if len(rows) == 1 else "1"
            sub = inputs.subtitles_for(path)
            if text is None and sub is not None:
                text, subs = " ".join(c.text or "" for c in inputs.read_subtitles(sub)), True
            cues = [Cue(clip, 0.0, None, text)]
        elif (sub := inputs.subtitles_for(path)) is not None:  # segments from the subtitles
            cues, subs = inputs.read_subtitles(sub), True
        if cues is not None and opts.labels and not opts.transcripts:
            rows = labels.get(stem, {})
            cues = [Cue(c.clip_id, c.start, c.end, c.text if c.text is not None else (
                rows[c.clip_id].text.strip() or None if c.clip_id in rows else None))
                for c in cues]
        jobs.append(FileJob(path, stem, tuple(cues) if cues is not None else None, subs))
    return jobs


def stack_frames(rows: list[np.ndarray | None], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of several utterances as one zero-padded (N, T, dim) array and their lengths."""
    t = max([1, *(r.shape[0] for r in rows if r is not None)])
    feats = np.zeros((len(rows), t, dim), dtype=np.float32)
    lengths = np.zeros(len(rows), dtype=np.int64)
    for i, r in enumerate(rows):
        if r is not None and r.shape[0]:
            feats[i, : r.shape[0]] = r
            lengths[i] = r.shape[0]
    return feats, lengths


def assemble(
    results: list[FileResult], opts: ExtractOptions, dims: dict[str, int], source: str
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], Counter[str]]:
    """The MMSA split dict and the label.csv rows, from per-file results in file order."""
    labels = inputs.labels_by_video(opts.labels) if opts.labels else None
    counts: Counter[str] = Counter()
    items: list[tuple[str, str, Utterance, LabelRow | None]] = []
    for res in results:
        for u in res.utterances:
            row = None
            if labels is not None:
                row = labels.get(res.video_id, {}).get(u.clip_id)
                if row is None:
                    counts["unlabelled"] += 1
                    log.warning("%s%s%s: not in %s; left out", res.video_id, ID_SEPARATOR,
                                u.clip_id, opts.labels)
                    continue
            items.append((res.video_id, u.clip_id, u, row))
    if labels is None and len(items) < len(CYCLE):
        raise InputError(f"{source}: {len(items)} utterance(s) extracted; without --labels at "
                         "least 3 are needed (one per split); pass --labels label.csv")
    modes = [row.split if row else CYCLE[i % 3] for i, (_, _, _, row) in enumerate(items)]
    splits: dict[str, dict[str, Any]] = {}
    csv_rows = []
    for split in CYCLE:
        chosen = [it for it, m in zip(items, modes, strict=True) if m == split]
        if not chosen:
            raise InputError(f"{opts.labels}: no extracted utterance falls in split '{split}'; "
                             "every split needs one")
        data: dict[str, Any] = {
            "id": np.array([f"{v}{ID_SEPARATOR}{c}" for v, c, _, _ in chosen], dtype=object),
            "raw_text": np.array([u.text for _, _, u, _ in chosen], dtype=object),
            "regression_labels": np.array([row.label if row else 0.0 for *_, row in chosen],
                                          dtype=np.float32),
        }
        for name, dim in dims.items():
            feats, lengths = stack_frames([getattr(u, name) for _, _, u, _ in chosen], dim)
            data[name] = feats
            if opts.align != "words":
                data[f"{name}_lengths"] = lengths
        splits[split] = data
        csv_rows.extend({"video_id": v, "clip_id": c, "text": u.text,
                         "label": row.label if row else 0.0, "mode": split}
                        for v, c, u, row in chosen)
    return splits, csv_rows, counts


def _label_csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["video_id", "clip_id", "text", "label", "mode"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _check(opts: ExtractOptions) -> None:
    if opts.split not in SPLIT_MODES:
        raise InputError(f"--split {opts.split!r}: use one of {', '.join(SPLIT_MODES)}")
    if opts.align not in ALIGN_MODES:
        raise InputError(f"--align {opts.align!r}: use one of {', '.join(ALIGN_MODES)}")
    if opts.workers < 1:
        raise InputError(f"--workers {opts.workers}: must be at least 1")
    if opts.face_fps is not None and opts.face_fps <= 0:
        raise InputError(f"--face-fps {opts.face_fps}: must be positive")


@dataclass
class ExtractReport:
    """What an extraction did (also written to ``OUT/extract_report.json``)."""

    files: int
    extracted: int  # work items run in this call
    reused: int  # work items found finished in OUT/.work
    utterances: int
    counts: dict[str, int]
    refused: dict[str, str]
    pickle: Path

    def lines(self) -> list[str]:
        out = [f"{self.pickle}: {self.utterances} utterance(s) from {self.files} file(s) "
               f"({self.extracted} extracted, {self.reused} reused from {WORK_DIR}/)"]
        if self.counts:
            out.append("  counts: " + ", ".join(f"{k}={v}" for k, v in sorted(self.counts.items())))
        out.extend(f"  refused {name}: {why}" for name, why in self.refused.items())
        return out


def extract(media: list[Path], out: Path, opts: ExtractOptions) -> ExtractReport:
    """Extract ``media`` (files and/or folders) into the dataset folder ``out``."""
    _check(opts)
    jobs = plan_jobs(media, opts)
    tools = Tools(opts)
    try:
        asr_desc = {"model": opts.asr_model}
        if opts.split == "segments" or opts.align == "words" or any(
                j.cues is None or any(c.text is None for c in j.cues) for j in jobs):
            asr_desc = tools.asr.describe()
        profile = build_profile(
            acoustic=tools.acoustic.describe() if tools.acoustic else None,
            face=tools.face.describe() if tools.face else None,
            asr=asr_desc, alignment=opts.align, utterances=opts.utterance_mode(),
        )
        dims = {}
        if tools.acoustic:
            dims["audio"] = int(tools.acoustic.dim)
        if tools.face:
            dims["vision"] = int(tools.face.dim)
        work = out / WORK_DIR
        sha = profile_digest(profile)
        paths = {j.video_id: work / f"{cache_key(j, sha)}.pkl" for j in jobs}
        todo = [j for j in jobs if not paths[j.video_id].is_file()]
        bar = _bar(len(jobs), len(jobs) - len(todo), opts.progress)
        if opts.workers == 1 or len(todo) < 2:
            for job in todo:
                def stage(name: str, file: str = job.path.name[-30:]) -> None:
                    bar.set_postfix_str(f"{file}: {name}")

                write_cached(paths[job.video_id], process_file(job, opts, tools, stage))
                bar.update()
        else:
            tools.close()
            with ProcessPoolExecutor(opts.workers, mp_context=get_context("spawn"),
                                     initializer=_worker_init, initargs=(opts,)) as pool:
                futures = [pool.submit(_worker_run, j, opts, paths[j.video_id]) for j in todo]
                for future in futures:
                    bar.set_postfix_str(future.result()[-30:])
                    bar.update()
        bar.close()
    finally:
        tools.close()
    results: list[FileResult] = []
    refused: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for job in jobs:
        res = read_cached(paths[job.video_id])
        if res is None:  # damaged between the two steps: redo it here
            res = process_file(job, opts, Tools(opts), _quiet)
        counts.update(res.counts)
        if res.refused:
            refused[job.path.name] = res.refused
            counts["refused"] += 1
            log.warning("%s: refused (%s)", job.path, res.refused)
        results.append(res)
    splits, rows, more = assemble(results, opts, dims, ", ".join(map(str, media)))
    counts.update(more)
    name = MMSA_PICKLE_NAMES[1] if opts.align == "words" else MMSA_PICKLE_NAMES[0]
    for other in MMSA_PICKLE_NAMES:  # an older extraction's other layout would be read first
        if other != name:
            (out / other).unlink(missing_ok=True)
    with atomic_path(out / name) as tmp:
        tmp.write_bytes(pickle.dumps(splits, protocol=4))
    write_text(out / LABEL_CSV, _label_csv_text(rows))
    write_profile(out, profile)
    report = ExtractReport(len(jobs), len(todo), len(jobs) - len(todo), len(rows), dict(counts),
                           refused, out / name)
    write_json(out / REPORT_JSON, {**report.__dict__, "pickle": str(report.pickle)})
    return report


def _bar(total: int, done: int, wanted: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc="extract", unit="file",
                disable=not bars_enabled(wanted), leave=False)
