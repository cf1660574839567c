"""Speed and memory on CPU: inference throughput and latency, peak memory of a MOSEI training run.

    .venv/bin/python -m benchmarks.speed inference [--run RUN_DIR]  # quick (a minute or two)
    .venv/bin/python -m benchmarks.speed memory                     # a MOSEI run of ~200 steps
    .venv/bin/python -m benchmarks.speed memory --steps 0           # one whole MOSEI epoch

``inference`` times ``psamf predict``'s model path (tokenize, personality encoder -> P, model
forward) on real MOSI test transcripts and audio: utterances/s at batch 64 and single-utterance
latency, for PSA-MF and the text-only baseline (same MiniLM). Weights do not change the cost, so
without a trained run the models are built fresh from their configs (recorded in the result).
``memory`` runs ``psamf train`` on MOSEI (text + personality) for a few hundred steps and records
the peak resident memory of that process (``wait4`` rusage), its wall time and steps/s.

Results: ``benchmarks/results/speed/{inference,mosei_train_memory[_full_epoch]}.json``;
RESULTS.md shows them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import real_data
from psamf.provenance import git_commit, machine

ROOT = real_data.ROOT
SPEED = real_data.RESULTS / "speed"
DEFAULT_RUN = real_data.RUNS / "mosi-minilm--psamf--seed-1"


def _personality_encoder() -> str:
    return real_data.PERSONALITY if real_data.personality_ready() else real_data.UNTUNED_PERSONALITY


# --- inference ------------------------------------------------------------------------------------


def _models(run: Path | None) -> tuple[list[tuple[str, Any, Any]], str]:
    """[(label, model, personality encoder or None)], and where the weights came from."""
    from psamf.models import PSAMFConfig, build_model
    from psamf.personality import PersonalityEncoder

    if run is not None and (run / "config.yaml").is_file():
        from psamf.training.runs import load_trained_model

        config, seed, model = load_trained_model(run)
        p_enc = PersonalityEncoder(config.personality_encoder) if config.uses_personality() \
            else None
        psamf = ("PSA-MF (MiniLM, audio, P computed per call)", model, p_enc)
        source = f"trained run {os.path.relpath(run, ROOT)} seed {seed}"
    else:
        p_name = _personality_encoder()
        p_enc = PersonalityEncoder(str(ROOT / p_name) if p_name != "minilm" else p_name)
        config = PSAMFConfig(text_encoder="minilm", audio_dim=73, personality_dim=p_enc.hidden_size)
        psamf = ("PSA-MF (MiniLM, audio, P computed per call)", build_model(config).eval(), p_enc)
        source = f"untrained weights built from the default config (personality encoder {p_name})"
    text = build_model(PSAMFConfig(text_encoder="minilm", model_type="text_finetune")).eval()
    return [psamf, ("text-only fine-tuning (MiniLM)", text, None)], source


def _predict(model: Any, p_enc: Any, texts: list[str], audio: Any, lengths: Any) -> Any:
    """The model path of ``psamf predict`` for a batch of transcripts (+ audio)."""
    import torch

    from psamf.training.batching import model_batch

    with torch.no_grad():
        p = p_enc.encode(texts) if p_enc is not None else None
        batch = model_batch(model.tokenize(texts), personality=p,
                            frames={"audio": (audio, lengths)},
                            modalities=tuple(model.config.modality_widths()))
        return model(**batch).prediction


def inference(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from psamf.data import load_dataset

    if args.threads:
        torch.set_num_threads(args.threads)
    load_at_start, commit = machine(), git_commit()  # as they were when it started
    test = load_dataset("mosi").splits["test"]
    texts = list(test.texts)
    frames = torch.from_numpy(test.modalities["audio"].features)
    lengths = torch.from_numpy(test.modalities["audio"].lengths)
    run = Path(args.run) if args.run else (DEFAULT_RUN if DEFAULT_RUN.is_dir() else None)
    models, source = _models(run)
    batch, n_batches = 64, args.batches
    if n_batches * batch > len(texts):
        raise SystemExit(f"--batches {n_batches}: MOSI test has {len(texts)} utterances, room for "
                         f"{len(texts) // batch} full batches of {batch}")
    rows, raw = [], {}
    for label, model, p_enc in models:
        _predict(model, p_enc, texts[:batch], frames[:batch], lengths[:batch])  # warm-up
        rates = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for b in range(n_batches):
                sl = slice(b * batch, (b + 1) * batch)
                _predict(model, p_enc, texts[sl], frames[sl], lengths[sl])
            rates.append(batch * n_batches / (time.perf_counter() - start))
        for i in range(3):
            _predict(model, p_enc, texts[i:i + 1], frames[i:i + 1], lengths[i:i + 1])
        latencies = []
        for i in range(args.single):
            start = time.perf_counter()
            _predict(model, p_enc, texts[i:i + 1], frames[i:i + 1], lengths[i:i + 1])
            latencies.append((time.perf_counter() - start) * 1000)
        latencies.sort()
        raw[label] = {"utt_per_s": rates, "latency_ms": latencies}
        rows.append([label, f"{statistics.median(rates):.1f}",
                     f"{min(rates):.1f}–{max(rates):.1f}",
                     f"{statistics.median(latencies):.1f}",
                     f"{latencies[int(0.9 * (len(latencies) - 1))]:.1f}"])
    cli = _cli_predict(run)
    notes = [f"Weights: {source}.",
             f"Throughput: {n_batches} batches of {batch} MOSI test utterances, {args.repeats} "
             "repeats (median and range shown), after one warm-up batch; includes tokenization "
             "and, for PSA-MF, the personality encoder computing P (as `psamf predict` does).",
             f"Latency: {args.single} single utterances one after another, median and p90.",
             f"torch threads: {torch.get_num_threads()}. The machine is a shared virtual one "
             "(its load average at start is above): other work only slows these down, so treat "
             "them as lower bounds on speed."]
    if cli is not None:
        notes.append(f"Whole `psamf predict` process (start-up, loading the run and both "
                     f"encoders, one prediction): {cli:.1f} s.")
    return {
        "title": "Inference on CPU: `psamf predict`'s model path",
        "command": "python -m benchmarks.speed " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "git_commit": commit,
        "machine": load_at_start,
        "measured_at": real_data.now(),
        "header": ["model", "utterances/s (batch 64)", "range", "latency ms (1 utterance, "
                   "median)", "latency ms p90"],
        "rows": rows,
        "notes": notes,
        "raw": raw,
        "predict_process_s": cli,
    }


def _cli_predict(run: Path | None) -> float | None:
    if run is None or not (run / "seed-1" / "best" / "model.safetensors").is_file():
        return None
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "psamf", "predict", str(run), "--text",
                           "i really liked this movie"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TRANSFORMERS_VERBOSITY": "error"})
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"psamf predict {run} failed (exit {proc.returncode}):\n{proc.stderr}")
    return wall


# --- memory ---------------------------------------------------------------------------------------


def memory(args: argparse.Namespace) -> dict[str, Any]:
    load_at_start, commit = machine(), git_commit()  # as they were when it started
    out = Path(args.out).resolve()
    full = args.steps == 0
    name = f"mosei-memory-{'full-' if full else ''}{int(time.time())}"
    limits = [] if full else [f"data.limit_train={args.steps * 32}", "data.limit_valid=256",
                              "data.limit_test=256"]
    train_args = ["train", *real_data.BUDGETS["mosei-minilm"].args(), "model.model_type=psamf",
                  "epochs=1", "seeds=1", *limits,
                  f"personality_encoder={_personality_encoder()}",
                  "--out", str(out.relative_to(ROOT) if out.is_relative_to(ROOT) else out),
                  "--name", name, "--no-progress"]
    command = "psamf " + " ".join(shlex.quote(a) for a in train_args)
    print(command, flush=True)
    env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    log_path = out / f"{name}.log"
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen([sys.executable, "-m", "psamf", *train_args], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            proc.wait()
        except BaseException:  # Ctrl-C or SIGTERM (see main): do not leave the run behind
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
            raise
    wall = time.perf_counter() - start
    rc = proc.returncode
    if rc != 0:
        sys.exit(f"training failed ({rc}); see {log_path}")
    # The process's own peak resident set, as psamf train records its call in run.json
    run_info = json.loads((out / name / "run.json").read_text(encoding="utf-8"))
    peak_mib = run_info["sessions"][-1]["peak_memory_mib"]["rss"]
    text = log_path.read_text(encoding="utf-8")
    start_line = re.search(r"^(\d\d):(\d\d):(\d\d) INFO \S+: run folder", text, re.M)
    epoch_line = re.search(r"^(\d\d):(\d\d):(\d\d) INFO \S+: seed \d+ epoch 1/1", text, re.M)
    epoch_s = None
    if start_line and epoch_line:
        def secs(m: re.Match[str]) -> int:
            return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3))
        epoch_s = (secs(epoch_line) - secs(start_line)) % 86400
    sizes = run_info["dataset"]["sizes"]
    steps = -(-sizes["train"] // 32)  # batches of 32, the last one partial
    label = "whole epoch" if full else f"{sizes['train']} utterances"
    rows = [[f"PSA-MF text + personality (MiniLM), MOSEI ({label}), batch 32", str(steps),
             f"{peak_mib:.0f}", f"{wall:.0f}",
             f"{epoch_s}" if epoch_s is not None else "–",
             f"{steps / epoch_s:.2f}" if epoch_s else "–"]]
    scope = "one whole epoch of" if full else "one epoch of a subset of"
    return {
        "title": "Peak memory of a MOSEI training run (CPU)" + (", whole epoch" if full else ""),
        "command": command,
        "git_commit": commit,
        "machine": load_at_start,
        "measured_at": real_data.now(),
        "header": ["run", "training steps", "peak RSS MiB", "process wall s",
                   "training + validation s", "steps/s (incl. validation)"],
        "rows": rows,
        "notes": [f"Peak resident set size of the `psamf train` process (run.json's record), "
                  f"over {scope} the MOSEI training split ({sizes['train']} utterances), "
                  f"validation ({sizes['valid']}) and test "
                  f"({sizes['test']}), data loading and the personality cache (P computed for "
                  "uncached texts).",
                  f"Personality encoder: {_personality_encoder()}.",
                  *([f"Derived, not measured: a full MOSEI epoch (16,274 utterances = 509 steps) "
                     f"at this rate would take about {509 / (steps / epoch_s) / 60:.0f} min "
                     "plus validation on 1,861."] if epoch_s and not full else []),
                  "Process wall time includes start-up, data loading and computing P; "
                  "'training + validation' runs from the run folder's creation to the end of "
                  "the epoch's validation (log timestamps, 1 s resolution)."],
        "peak_rss_mib": peak_mib,
        "wall_s": wall,
        "steps": steps,
        "epoch_s": epoch_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="part", required=True)
    inf = sub.add_parser("inference")
    inf.add_argument("--run", default=None, help="trained run folder (default: the MOSI MiniLM "
                                                 "PSA-MF seed-1 benchmark run if present)")
    inf.add_argument("--batches", type=int, default=8, help="batches of 64 per repeat")
    inf.add_argument("--repeats", type=int, default=3)
    inf.add_argument("--single", type=int, default=50, help="single-utterance calls timed")
    inf.add_argument("--threads", type=int, default=0,
                     help="torch threads (0 = torch's default); 1 is steadier on a busy machine")
    mem = sub.add_parser("memory")
    mem.add_argument("--steps", type=int, default=200,
                     help="training steps (batch 32), with validation and test cut to 256 "
                          "utterances each; 0 = one whole epoch with full validation and test")
    mem.add_argument("--out", default=str(ROOT / "artifacts" / "bench-speed"),
                     help="where the training run and its log go (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.part == "memory" and args.steps < 0:
        parser.error("--steps must be 0 (one whole epoch) or more")
    # SIGTERM (a session ending) unwinds like Ctrl-C, so memory() stops its training child.
    signal.signal(signal.SIGTERM, real_data.interrupt_on_signal)
    try:
        result = inference(args) if args.part == "inference" else memory(args)
    except KeyboardInterrupt as stop:
        print(f"stopped ({stop or 'interrupt'}); nothing was written", file=sys.stderr)
        return 130
    name = "inference" if args.part == "inference" else "mosei_train_memory"
    if args.part == "memory" and args.steps == 0:
        name += "_full_epoch"
    path = SPEED / f"{name}.json"
    real_data.write_json(path, result)
    print(f"wrote {os.path.relpath(path, ROOT)}")
    for row in result["rows"]:
        print(" | ".join(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
