"""How fast ``psamf extract`` / ``predict --media`` turn media into features, stage by stage.

Clips of 10 s, 1 min and 10 min are made at run time: espeak-ng reading a short review, repeated
to length, over the moving astronaut face of tests/media_fixtures.py (360x360 H.264 at 25 fps,
AAC audio), muxed with PyAV. Per clip, in a fresh process (so peak memory is that clip's):

- stages, one timed pass each over the decoded stream: decode audio (16 kHz mono), ASR
  (faster-whisper, the offline tiny.en, 1 thread), acoustic (librosa), decode frames at 5 fps,
  face (FaceMesh at 5 fps). Decoding is timed apart from the work on what it yields.
- whole: ``psamf.media.extract.extract_clip`` with ASR + acoustic + face at 5 fps, as ``psamf
  predict --media`` runs it: it builds its own extractors (loading counted), after the stage pass
  has warmed the imports and librosa's JIT (that first load is reported apart).

RTF = seconds of processing per second of media (< 1: faster than real time). The goal from the
issue: the whole extraction at or under 0.5x real time. Medians over ``--runs`` (short clips) and
``--long-runs`` (10 min). Writes benchmarks/extract_speed.json and .md.

    PYTHONPATH=src python benchmarks/extract_speed.py            # ~10 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from statistics import median

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
GOAL_RTF = 0.5
TEXT = ("I watched this film last night. The acting was wonderful and the story kept me "
        "interested, although the ending was far too long and a little boring.")
FPS, SIZE, FACE_FPS = 25, 360, 5.0


def make_clip(out: Path, seconds: float, work: Path) -> Path:
    """espeak-ng speech repeated to ``seconds`` over the drifting face, written frame by frame."""
    import av
    import media_fixtures as mf

    speech = mf.speak(TEXT, work / "speech.wav")
    gap = np.zeros(mf.SR // 2, np.float32)
    unit = np.concatenate([speech, gap])
    n = int(seconds * mf.SR)
    audio = np.tile(unit, n // unit.size + 1)[:n]
    cycle = mf.face_frames(4 * FPS, size=SIZE)  # 4 s left to right, then back
    cycle = np.concatenate([cycle, cycle[::-1]])
    with av.open(str(out), mode="w") as container:
        v = container.add_stream("libx264", rate=FPS)
        v.width = v.height = SIZE
        v.pix_fmt = "yuv420p"
        v.options = {"preset": "ultrafast"}
        a = container.add_stream("aac", rate=mf.SR, layout="mono")
        for i in range(int(seconds * FPS)):
            frame = av.VideoFrame.from_ndarray(cycle[i % len(cycle)], format="rgb24")
            container.mux(v.encode(frame))
        container.mux(v.encode(None))
        for start in range(0, audio.size, 1024):
            frame = av.AudioFrame.from_ndarray(audio[None, start:start + 1024], format="fltp",
                                               layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = mf.SR, start, Fraction(1, mf.SR)
            container.mux(a.encode(frame))
        container.mux(a.encode(None))
    return out


def _timed(iterable, clock: list[float]):
    """Yield from ``iterable``, adding the time spent producing each item to ``clock[0]``."""
    it = iter(iterable)
    while True:
        t = time.perf_counter()
        try:
            item = next(it)
        except StopIteration:
            clock[0] += time.perf_counter() - t
            return
        clock[0] += time.perf_counter() - t
        yield item


def measure(path: Path) -> dict:
    """One clip, in this process: the stage pass, then the whole extraction (models warm)."""
    import torch

    from psamf.media import decode
    from psamf.media.acoustic import make_acoustic
    from psamf.media.asr import Recognizer
    from psamf.media.extract import CHUNK_S, SR, ExtractOptions, extract_clip
    from psamf.media.face import make_face

    torch.set_num_threads(1)
    duration = decode.probe(path).duration_s
    t = time.perf_counter()
    recognizer = Recognizer()
    acoustic = make_acoustic("librosa")
    face = make_face("facemesh", fps=FACE_FPS)
    warm = np.asarray(decode.load_audio(path, end_s=2.0))
    recognizer.transcribe(warm)
    acoustic.extract(warm, SR)
    face.extract(img for _, img in decode.iter_frames(path, fps=FACE_FPS, end_s=0.5))
    load_s = time.perf_counter() - t

    stages = {"decode_audio": [0.0], "asr": 0.0, "acoustic": 0.0, "decode_frames": [0.0],
              "face": 0.0}
    for chunk in _timed(decode.iter_audio(path, sr=SR, chunk_s=CHUNK_S), stages["decode_audio"]):
        t = time.perf_counter()
        recognizer.transcribe(chunk)
        stages["asr"] += time.perf_counter() - t
        t = time.perf_counter()
        acoustic.extract(chunk, SR)
        stages["acoustic"] += time.perf_counter() - t
    frames = _timed((img for _, img in decode.iter_frames(path, fps=FACE_FPS)),
                    stages["decode_frames"])
    t = time.perf_counter()
    face.extract(frames)
    stages["face"] = time.perf_counter() - t - stages["decode_frames"][0]
    face.close()
    secs = {k: (v[0] if isinstance(v, list) else v) for k, v in stages.items()}

    opts = ExtractOptions(acoustic="librosa", face_fps=FACE_FPS, split="file", progress=False)
    t = time.perf_counter()
    clip = extract_clip(path, opts)  # builds its own extractors: loading is counted here
    whole = time.perf_counter() - t
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"duration_s": duration, "load_s": load_s, "stage_s": secs, "whole_s": whole,
            "words": len(clip.utterances[0].text.split()) if clip.utterances else 0,
            "peak_rss_mib": peak_mib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="10,60,600", help="clip lengths in seconds")
    parser.add_argument("--runs", type=int, default=3, help="runs per short clip (median)")
    parser.add_argument("--long-runs", type=int, default=1, help="runs for clips >= 300 s")
    parser.add_argument("--out", type=Path, default=HERE / "extract_speed")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for seconds in (float(s) for s in args.lengths.split(",")):
            t = time.perf_counter()
            clip = make_clip(work / f"clip-{int(seconds)}s.mp4", seconds, work)
            made = time.perf_counter() - t
            runs = []
            for _ in range(args.long_runs if seconds >= 300 else args.runs):
                done = subprocess.run([sys.executable, __file__, "--measure", str(clip)],
                                      check=True, capture_output=True, text=True)
                runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"{seconds:.0f} s: whole {runs[-1]['whole_s']:.1f} s", file=sys.stderr)
            dur = runs[0]["duration_s"]
            stage = {k: median(r["stage_s"][k] for r in runs) / dur for k in runs[0]["stage_s"]}
            results.append({
                "seconds": seconds, "runs": len(runs), "make_clip_s": round(made, 1),
                "rtf": {k: round(v, 4) for k, v in stage.items()},
                "rtf_whole": round(median(r["whole_s"] for r in runs) / dur, 4),
                "rtf_whole_all_runs": [round(r["whole_s"] / dur, 4) for r in runs],
                "model_load_s": round(median(r["load_s"] for r in runs), 2),
                "peak_rss_mib": round(max(r["peak_rss_mib"] for r in runs)),
                "words_recognised": runs[0]["words"],
            })
    report = {
        "command": " ".join(["PYTHONPATH=src", "python", "benchmarks/extract_speed.py",
                             *sys.argv[1:]]),
        "machine": f"{platform.processor() or platform.machine()}, "
                   f"{len(__import__('os').sched_getaffinity(0))} cores, shared",
        "clip": f"{SIZE}x{SIZE} H.264 {FPS} fps + AAC 16 kHz mono; face at {FACE_FPS:g} fps",
        "goal_rtf_whole": GOAL_RTF, "results": results,
    }
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    cols = ["decode_audio", "asr", "acoustic", "decode_frames", "face"]
    lines = [
        "# Extraction speed (real-time factor: seconds of processing per second of media)", "",
        f"Command: `{report['command']}`  ", f"Machine: {report['machine']}  ",
        f"Clips: {report['clip']}; one extraction process, one thread per library.", "",
        "| clip | runs | " + " | ".join(cols) + " | **whole** | goal ≤ 0.5× | model load (s) | "
        "peak RSS (MiB) |",
        "|---|---|" + "---|" * (len(cols) + 4),
    ]
    for r in report["results"]:
        whole = r["rtf_whole"]
        verdict = (f"met ({GOAL_RTF / whole:.1f}× margin)" if whole <= GOAL_RTF
                   else f"missed by {whole / GOAL_RTF:.1f}×")
        lines.append(f"| {r['seconds']:.0f} s | {r['runs']} | "
                     + " | ".join(f"{r['rtf'][c]:.3f}" for c in cols)
                     + f" | **{whole:.3f}** | {verdict} | {r['model_load_s']:.1f} | "
                     f"{r['peak_rss_mib']} |")
    lines += ["", "Stage columns: each measured in its own pass; decoding is apart from the "
              "work on what it yields. `whole` is `extract_clip` (decode + ASR + acoustic + face, "
              "models loaded inside it, as `psamf predict --media` does); medians over the runs. "
              "Peak RSS is the process's (models included).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
