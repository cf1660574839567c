"""Mixed precision and torch.compile against fp32: step time and metrics (not a test).

Two parts, each optional:

- ``step``: PSA-MF training-step time (forward + loss under autocast, backward, Adam step) for
  each variant (``fp32``, ``bf16``, ``fp16`` (CUDA, with a GradScaler), ``compile``,
  ``compile-bf16``) on one fixed batch (32 transcripts x 50 tokens, personality precomputed, audio
  1 x 73), each variant its own model from the same seed. Rounds are interleaved (the order
  rotates every round) after warm-up, so a shared machine's load falls on every variant alike;
  the first warm-up step of a compiled variant is reported apart (it includes compilation).
- ``train``: a short real ``psamf train`` on CMU-MOSI per backbone and precision (one seed), as a
  subprocess, reporting validation MAE per epoch and the test metrics of the checkpoint chosen on
  validation, as the protocol does, plus epoch seconds.

    python benchmarks/precision.py                                  # CPU: step + 3-epoch MOSI
    python benchmarks/precision.py --parts step --variants fp32 bf16 --repeats 5
    python benchmarks/precision.py --device cuda --parts train --epochs 1 --backbones minilm mpnet
    python benchmarks/precision.py --render-md                      # only re-render the .md
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

from psamf.io import write_json, write_text
from psamf.models import PSAMFConfig, build_model
from psamf.provenance import git_commit
from psamf.training.precision import autocast, grad_scaler

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The mosi-minilm budget of benchmarks/experiments.yaml, shortened by --epochs.
TRAIN_SETTINGS = ["batch_size=32", "eval_batch_size=64", "optim.encoder_lr=5e-5",
                  "optim.other_lr=5e-4", "optim.plateau_patience=1", "early_stopping_patience=3"]


def _commit() -> str:
    sha, plus, dirty = git_commit(HERE).partition("+")
    return sha[:7] + plus + dirty if sha != "unknown" else sha


# --- step time ----------------------------------------------------------------------------------


def _batch(model, *, batch: int, tokens: int, audio_dim: int, device: torch.device) -> dict:
    gen = torch.Generator().manual_seed(0)
    hidden = model.text_encoder.hidden_size
    vocab = int(model.text_encoder.config.vocab_size)
    return {
        "input_ids": torch.randint(1000, min(vocab, 20000), (batch, tokens), generator=gen),
        "attention_mask": torch.ones(batch, tokens, dtype=torch.long),
        "personality": torch.randn(batch, hidden, generator=gen),
        "audio": torch.randn(batch, 1, audio_dim, generator=gen),
        "audio_lengths": torch.ones(batch, dtype=torch.long),
        "labels": torch.rand(batch, generator=gen) * 6 - 3,
    }


class Variant:
    """One model + optimizer (+ scaler) trained as the trainer does for a precision/compile."""

    def __init__(self, name: str, backbone: str, args, device: torch.device) -> None:
        self.name = name
        self.precision = name.removeprefix("compile-") if name != "compile" else "fp32"
        self.device = device
        torch.manual_seed(0)
        config = PSAMFConfig(text_encoder=backbone, audio_dim=args.audio_dim,
                             max_text_length=args.tokens)
        self.model = build_model(config).to(device).train()
        if name.startswith("compile"):
            self.model.compile()  # as psamf.training.precision.compile_model
        groups = self.model.parameter_groups(encoder_lr=5e-5, other_lr=5e-4, weight_decay=1e-4)
        self.optimizer = torch.optim.Adam(groups)
        self.scaler = grad_scaler(self.precision, device)
        self.losses: list[float] = []

    def step(self, batch: dict) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        with autocast(self.precision, self.device):
            loss = self.model(**batch).loss
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.losses.append(float(loss.detach()))
        return time.perf_counter() - start


def bench_steps(backbone: str, args, device: torch.device) -> dict:
    variants = [Variant(name, backbone, args, device) for name in args.variants]
    batch = _batch(variants[0].model, batch=args.batch, tokens=args.tokens,
                   audio_dim=args.audio_dim, device=device)
    batch = {k: v.to(device) for k, v in batch.items()}
    first: dict[str, float] = {}
    for v in variants:
        torch.manual_seed(1)  # the same dropout draws for every eager variant's first step
        warm = [v.step(batch) for _ in range(args.warmup)]
        first[v.name] = warm[0]
        print(f"  {backbone} {v.name}: warm-up {', '.join(f'{t:.2f}' for t in warm)} s",
              flush=True)
    times: dict[str, list[float]] = {v.name: [] for v in variants}
    for r in range(args.repeats):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for v in order:
            times[v.name].append(v.step(batch))
    median = {name: statistics.median(t) for name, t in times.items()}
    # Per round, the variants ran back to back and share the load: the median of per-round
    # ratios to fp32 is the most load-robust comparison.
    paired = {name: statistics.median(t / b for t, b in zip(times[name], times["fp32"],
                                                             strict=True))
              for name in times if "fp32" in times}
    return {
        "backbone": backbone,
        "encoder": variants[0].model.text_encoder.name_or_path,
        "first_step_s": first,
        "times_s": times,
        "median_s": median,
        "min_s": {name: min(t) for name, t in times.items()},
        "median_paired_ratio_to_fp32": paired,
        # The same batch and weights start alike; after warm-up + repeats the losses drift apart
        # only by rounding (and compiled dropout draws its own random numbers).
        "first_loss": {v.name: v.losses[0] for v in variants},
        "last_loss": {v.name: v.losses[-1] for v in variants},
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=["step", "train"], default=["step", "train"])
    parser.add_argument("--backbones", nargs="+", default=["minilm"])
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
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--audio-dim", type=int, default=73)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for the step part (0 = torch's default)")
    parser.add_argument("--device", default=None, help="cpu / cuda (default: cuda if available)")
    parser.add_argument("--out", type=Path, default=HERE / "precision.json")
    parser.add_argument("--note", action="append", default=[], help="a line for the Notes")
    parser.add_argument("--render-md", action="store_true", help="only rewrite the .md from --out")
    args = parser.parse_args()
    md_path = args.out.with_suffix(".md")
    if args.render_md:
        write_text(md_path, render_md(json.loads(args.out.read_text(encoding="utf-8"))))
        return
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.variants is None:
        args.variants = ["fp32", "bf16", "compile"] + (
            ["fp16", "compile-bf16"] if device.type == "cuda" else [])
    if "fp32" not in args.variants:
        args.variants.insert(0, "fp32")
    started, load = time.perf_counter(), [round(x, 2) for x in os.getloadavg()]
    result: dict = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "commit": _commit(), "json_name": args.out.name,
        "torch": torch.__version__, "python": platform.python_version(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
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
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    result["wall_s"] = time.perf_counter() - started
    write_json(args.out, result)
    write_text(md_path, render_md(result))
    failed = [f"{r['backbone']} {r['precision']}" for r in result.get("train", []) if not r["ok"]]
    if failed:
        sys.exit(f"precision.py: training failed for {', '.join(failed)} (see {args.out})")


if __name__ == "__main__":
    main()
