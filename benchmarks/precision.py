"""Mixed precision and torch.compile against fp32: step time and metrics (not a test).

Two parts, each optional:

- ``step``: PSA-MF training-step time (forward + loss under autocast, backward, Adam step) for
  each variant (``fp32``, ``bf16``, ``fp16`` (CUDA, with a GradScaler), ``compile``,
  ``compile-bf16``) on one fixed batch (32 transcripts x 50 tokens, personality precomputed, audio
  1 x 73), each variant its own model from the same seed. Rounds are interleaved (the order
  rotates every round) after warm-up, so a shared machine's load falls on every variant alike;
  the first warm-up step of a compiled variant is reported apart (it includes compilation). The
  timing is benchmarks/step_time.py's harness (``time_contestants``).
- ``train``: a short real ``psamf train`` on CMU-MOSI per backbone and precision (one seed), as a
  subprocess, reporting validation MAE per epoch and the test metrics of the checkpoint chosen on
  validation, as the protocol does, plus epoch seconds.

    python -m benchmarks.precision                                  # CPU: step + 3-epoch MOSI
    python -m benchmarks.precision --parts step --variants fp32 bf16 --repeats 5
    python -m benchmarks.precision --device cuda --parts train --epochs 1 --backbones minilm mpnet
    python -m benchmarks.precision --render-md                      # only re-render the .md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.step_time import (
    Contestant,
    adam,
    add_step_arguments,
    build,
    command,
    commit,
    device_name,
    load_average,
    resolve_device,
    synthetic_batch,
    time_contestants,
)
from psamf.io import write_json, write_text

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The mosi-minilm budget of benchmarks/experiments.yaml, shortened by --epochs.
TRAIN_SETTINGS = ["batch_size=32", "eval_batch_size=64", "optim.encoder_lr=5e-5",
                  "optim.other_lr=5e-4", "optim.plateau_patience=1", "early_stopping_patience=3"]


# --- step time ----------------------------------------------------------------------------------


def variant(name: str, backbone: str, args, device: torch.device) -> Contestant:
    """PSA-MF trained as the trainer does for variant ``name`` (a precision, ``compile`` or
    ``compile-PRECISION``): autocast, GradScaler for fp16, gradients clipped to norm 1; every
    variant from the same seed, on the same fixed batch."""
    precision = name.removeprefix("compile-") if name != "compile" else "fp32"
    _, model = build(backbone, args, device)
    if name.startswith("compile"):
        model.compile()  # as psamf.training.precision.compile_model
    return Contestant(name, model, synthetic_batch(model, args, device), adam(model),
                      precision=precision, clip_norm=1.0)


def bench_steps(backbone: str, args, device: torch.device) -> dict:
    variants = [variant(name, backbone, args, device) for name in args.variants]
    timing = time_contestants(variants, reference="fp32", repeats=args.repeats,
                              warmup=args.warmup, device=device, label=backbone)["contestants"]

    def each(key: str) -> dict:
        return {name: t[key] for name, t in timing.items()}

    return {
        "backbone": backbone,
        "encoder": variants[0].model.text_encoder.name_or_path,
        "first_step_s": each("first_step_s"),
        "times_s": each("times_s"),
        "median_s": each("median_s"),
        "min_s": each("min_s"),
        # Per round, the variants ran back to back and share the load: the median of per-round
        # ratios to fp32 is the most load-robust comparison.
        "median_paired_ratio_to_fp32": each("ratio_to_reference"),
        # The same batch and weights start alike; after warm-up + repeats the losses drift apart
        # only by rounding (and compiled dropout draws its own random numbers).
        "first_loss": each("first_loss"),
        "last_loss": each("last_loss"),
    }


# --- short real training --------------------------------------------------------------------------


def train_once(backbone: str, precision: str, args, out: Path) -> dict:
    name = f"{Path(backbone).name}-{precision}"
    command = [
        sys.executable, "-m", "psamf", "train", "--preset", "cpu", "--data", args.data,
        "--out", str(out), "--name", name, "--seeds", str(args.seed), "--no-progress",
        f"model.text_encoder={backbone}", f"personality_encoder={backbone}",
        f"epochs={args.epochs}", *TRAIN_SETTINGS, f"precision={precision}",
        f"device={args.device or 'auto'}", *args.train_extra,
    ]
    if args.data_root:
        command += ["--root", args.data_root]
    print("  " + shlex.join(command[1:]), flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                          capture_output=True, text=True, timeout=args.train_timeout)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return {"backbone": backbone, "precision": precision, "ok": False,
                "returncode": done.returncode, "error": tail, "wall_s": round(wall, 1)}
    metrics = json.loads((out / name / f"seed-{args.seed}" / "metrics.json").read_text())
    history = metrics["history"]
    return {
        "backbone": backbone, "precision": precision, "ok": True,
        "command": "psamf " + shlex.join(command[3:]),
        "wall_s": round(wall, 1),
        "epoch_train_s": [h["seconds"]["train"] for h in history],
        "epoch_valid_s": [h["seconds"]["valid"] for h in history],
        "valid_mae_by_epoch": [h["valid"]["mae"] for h in history],
        "train_loss_by_epoch": [h["train"]["loss"] for h in history],
        "best_epoch": metrics["best_epoch"],
        "valid": metrics["valid"],
        "test": metrics["test"],
    }


# --- report ---------------------------------------------------------------------------------------


def render_md(result: dict) -> str:
    lines = [
        "# Mixed precision and torch.compile against fp32",
        "",
        f"Generated by `benchmarks/precision.py` from `{result['json_name']}`. Command: "
        f"`{result['command']}`; commit {result['commit']}; torch {result['torch']}; device "
        f"{result['device']}; {result['threads']} torch threads for the step part; load average "
        f"at start {result['load_average_start']}, at the end {result['load_average_end']} "
        f"({result['cpu_count']} cores, shared with other jobs); {result['wall_s']:.0f} s in all.",
        "",
    ]
    if result.get("steps"):
        lines += [
            f"## Step time (PSA-MF; batch {result['batch']} x {result['tokens']} tokens)",
            "",
            f"Median of {result['repeats']} interleaved rounds after {result['warmup']} warm-up "
            "steps per variant. Paired ratio: median over rounds of (variant / fp32) from the same "
            "round. First step: the first warm-up step (for compiled variants, compilation).",
            "",
            "| backbone | variant | median (s) | min (s) | paired ratio to fp32 | first step (s) "
            "| first loss | last loss |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in result["steps"]:
            for name, med in row["median_s"].items():
                ratio = row["median_paired_ratio_to_fp32"].get(name, float("nan"))
                lines.append(
                    f"| {row['backbone']} | {name} | {med:.3f} | {row['min_s'][name]:.3f} | "
                    f"{ratio:.3f} | {row['first_step_s'][name]:.1f} | "
                    f"{row['first_loss'][name]:.4f} | {row['last_loss'][name]:.4f} |")
        lines.append("")
    if result.get("train"):
        lines += [
            f"## Short training on {result.get('data', 'mosi')} ({result['epochs']} epochs, seed "
            f"{result['seed']})",
            "",
            "Settings of the mosi-minilm budget (benchmarks/experiments.yaml) but "
            f"epochs={result['epochs']}; personality from the untuned backbone. Test metrics of "
            "the checkpoint chosen on validation MAE, computed once at the end.",
            "",
            "| backbone | precision | valid MAE by epoch | best epoch | valid MAE | test MAE "
            "| test Acc-2 (non0) | test corr | train s / epoch |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in result["train"]:
            if not row["ok"]:
                lines.append(f"| {row['backbone']} | {row['precision']} | failed (exit "
                             f"{row['returncode']}): {' / '.join(row['error'])[-200:]} "
                             "| | | | | | |")
                continue
            by_epoch = ", ".join(f"{m:.4f}" for m in row["valid_mae_by_epoch"])
            per_epoch = statistics.median(row["epoch_train_s"])
            lines.append(
                f"| {row['backbone']} | {row['precision']} | {by_epoch} | {row['best_epoch']} | "
                f"{row['valid']['mae']:.4f} | {row['test']['mae']:.4f} | "
                f"{row['test']['acc2_non0']:.2f} | {row['test']['corr']:.4f} | {per_epoch:.1f} |")
        lines.append("")
    if result.get("notes"):
        lines += ["## Notes", "", *result["notes"], ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.precision",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=["step", "train"], default=["step", "train"])
    parser.add_argument("--variants", nargs="+", default=None,
                        choices=["fp32", "bf16", "fp16", "compile", "compile-bf16"],
                        help="step variants (default fp32 bf16 compile; on CUDA also fp16 and "
                             "compile-bf16); fp32 is always included")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"],
                        help="train part: precisions to train with")
    parser.add_argument("--train-extra", nargs="*", default=[], metavar="KEY=VALUE",
                        help="train part: more psamf train overrides (e.g. compile=true)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", default="mosi", help="train part: dataset (sample: a dry run)")
    parser.add_argument("--data-root", default=None, help="default: psamf's ($PSAMF_DATA_ROOT or "
                                                          "../shared/data)")
    parser.add_argument("--train-timeout", type=float, default=1800, help="seconds per run")
    add_step_arguments(parser, backbones=["minilm"], repeats=7, out=HERE / "precision.json")
    parser.add_argument("--note", action="append", default=[], help="a line for the Notes")
    args = parser.parse_args()
    md_path = args.out.with_suffix(".md")
    if args.render_md:
        write_text(md_path, render_md(json.loads(args.out.read_text(encoding="utf-8"))))
        return
    device = resolve_device(args.device)
    if args.variants is None:
        args.variants = ["fp32", "bf16", "compile"] + (
            ["fp16", "compile-bf16"] if device.type == "cuda" else [])
    if "fp32" not in args.variants:
        args.variants.insert(0, "fp32")
    started, load = time.perf_counter(), load_average()
    result: dict = {
        "command": command("benchmarks.precision"),
        "commit": commit(), "json_name": args.out.name,
        "torch": torch.__version__, "python": platform.python_version(),
        "device": device_name(device),
        "cpu_count": os.cpu_count(), "load_average_start": load,
        "batch": args.batch, "tokens": args.tokens, "repeats": args.repeats,
        "warmup": args.warmup, "epochs": args.epochs, "seed": args.seed, "data": args.data,
        "notes": args.note,
    }
    threads = torch.get_num_threads()
    if "step" in args.parts:
        if args.threads:
            torch.set_num_threads(args.threads)
        result["steps"] = []
        for backbone in args.backbones:
            result["steps"].append(bench_steps(backbone, args, device))
            row = result["steps"][-1]
            print(f"{backbone}: " + "  ".join(
                f"{n} {m:.3f}s (x{row['median_paired_ratio_to_fp32'][n]:.3f})"
                for n, m in row["median_s"].items()), flush=True)
    result["threads"] = torch.get_num_threads()
    torch.set_num_threads(threads)
    if "train" in args.parts:
        result["train"] = []
        with tempfile.TemporaryDirectory(prefix="psamf-precision-") as tmp:
            for backbone in args.backbones:
                for precision in args.precisions:
                    row = train_once(backbone, precision, args, Path(tmp))
                    result["train"].append(row)
                    print(f"{backbone} {precision}: " + (
                        f"valid MAE {row['valid']['mae']:.4f} test MAE {row['test']['mae']:.4f}"
                        if row["ok"] else f"failed: {row['error']}"), flush=True)
    result["load_average_end"] = load_average()
    result["wall_s"] = time.perf_counter() - started
    write_json(args.out, result)
    write_text(md_path, render_md(result))
    failed = [f"{r['backbone']} {r['precision']}" for r in result.get("train", []) if not r["ok"]]
    if failed:
        sys.exit(f"benchmarks.precision: training failed for {', '.join(failed)} (see {args.out})")


if __name__ == "__main__":
    main()
