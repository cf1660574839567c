"""Benchmark: personality pretraining of the offline MiniLM on First Impressions V2 (CPU).

Runs ``psamf pretrain-personality`` on ../shared/data/first_impressions into
``artifacts/personality-minilm`` (the default personality encoder of PSA-MF runs), then writes
``benchmarks/personality_pretrain.json`` (test figures of the fine-tuned encoder, the constant
predictor and the frozen encoder + ridge, wall time, command, git commit) and a Markdown report
generated from it. ``--report-only`` regenerates the Markdown from the JSON.

    .venv/bin/python benchmarks/personality_pretrain.py [-- extra pretrain-personality options]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from psamf.io import write_json, write_text
from psamf.provenance import git_commit, machine

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "first_impressions"
OUT = ROOT / "artifacts" / "personality-minilm"
RESULT_JSON = ROOT / "benchmarks" / "personality_pretrain.json"
RESULT_MD = ROOT / "benchmarks" / "personality_pretrain.md"
# The recipe: every option spelled out, so the command in the report is the whole story.
# (Recorded results before the recipe CLI took key=value overrides show the old --flags and a
# different epoch shuffle; the settings are the same.)
RECIPE = [
    "--backbone", "minilm", "epochs=4", "batch_size=32", "encoder_lr=5e-5",
    "head_lr=1e-3", "weight_decay=0.01", "warmup=0.1", "max_tokens=128",
    "pooling=mean", "activation=sigmoid", "loss=mse", "seed=0",
]
PREDICTORS = (("constant", "constant (train means)"),
              ("frozen_ridge", "frozen MiniLM mean-pool + ridge"),
              ("fine_tuned", "fine-tuned MiniLM + trait head"))


def run(extra: list[str]) -> dict:
    if not DATA.is_dir():
        sys.exit(f"{DATA}: First Impressions not found (see ../shared/data/README.md)")
    args = ["pretrain-personality", "--data", os.path.relpath(DATA, ROOT),
            "--out", "artifacts/personality-minilm", *RECIPE, *extra]
    command = "psamf " + " ".join(shlex.quote(a) for a in args)
    print(command, flush=True)
    commit = git_commit(ROOT)  # the code that runs, taken before the run starts
    started = time.time()
    code = subprocess.run([sys.executable, "-m", "psamf", *args], cwd=ROOT).returncode
    wall = time.time() - started
    if code != 0:
        sys.exit(f"pretrain-personality failed with exit code {code}")
    return collect(command, commit, wall)


def collect(command: str, commit: str, wall: float, note: str | None = None) -> dict:
    """Build the result JSON from the finished output folder (and re-score it, see verify)."""
    metrics = json.loads((OUT / "metrics.json").read_text(encoding="utf-8"))
    traits = metrics["traits"]
    result = {
        "command": command,
        "git_commit": commit,
        "note": note,
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "machine": machine("at the end"),
        "wall_seconds": round(wall, 1),
        "epochs_completed": metrics.get("epochs_completed", len(metrics["history"])),
        "epochs_planned": metrics.get("epochs_planned"),
        "output": "artifacts/personality-minilm",
        "traits": traits,
        "selection": metrics["selection"],
        "best_epoch": metrics["best_epoch"],
        "history": metrics["history"],
        "counts": metrics["counts"],
        "ridge_alpha": metrics.get("ridge_alpha"),
        "test_clips": metrics["test"]["clips"],
        "test": {k: metrics["test"][k] for k, _ in PREDICTORS if k in metrics["test"]},
        "valid": {k: metrics["valid"][k] for k, _ in PREDICTORS if k in metrics["valid"]},
        "goal": {"test_acc_mean": 0.895, "test_r2_mean": 0.15},
    }
    write_json(RESULT_JSON, result)  # kept even if the check below fails
    verify(result)
    return result


def verify(result: dict) -> None:
    """Re-score the test split from the saved folder through the public API (predict_traits,
    psamf.data, psamf.metrics) and store it beside the in-run figures: they must agree."""
    import numpy as np

    from psamf.data import read_first_impressions
    from psamf.metrics import personality_metrics
    from psamf.personality import predict_traits

    test = read_first_impressions(DATA).splits["test"]
    traits = result["traits"]
    started = time.time()
    scores = predict_traits(OUT, test.texts)
    preds = np.array([[s[t] for t in traits] for s in scores])
    reloaded = personality_metrics(preds, test.targets, traits)
    in_run = result["test"]["fine_tuned"]
    result["reloaded_test"] = {
        "acc_mean": reloaded["acc_mean"], "r2_mean": reloaded["r2_mean"],
        "max_abs_diff_vs_in_run": max(abs(reloaded[k] - in_run[k]) for k in in_run),
        "seconds": round(time.time() - started, 1),
    }
    write_json(RESULT_JSON, result)
    diff = result["reloaded_test"]["max_abs_diff_vs_in_run"]
    if diff > 1e-6:
        raise SystemExit(f"{OUT}: re-scored test metrics differ from the run's by {diff:.2e}; "
                         "the saved folder does not reproduce its own figures")


def render(result: dict) -> str:
    traits = result["traits"]
    lines = [
        "# Personality pretraining benchmark (MiniLM, First Impressions V2)",
        "",
        f"Generated from `benchmarks/personality_pretrain.json` — {result['date_utc']} UTC, "
        f"commit `{result['git_commit']}`, {result['machine']}, wall time "
        f"{result['wall_seconds'] / 60:.1f} min.",
        "",
        f"Command (from the repository root): `{result['command']}`",
        "",
        *([f"Note: {result['note']}", ""] if result.get("note") else []),
        f"Test split: all {result['test_clips']} clips (empty transcripts get the training means). "
        f"Checkpoint selection: {result['selection']}, epoch {result['best_epoch']}; test scored "
        f"once. Ridge alpha (chosen on validation): {result['ridge_alpha']}. Epochs completed: "
        f"{result['epochs_completed']} of {result['epochs_planned']} planned.",
        "",
        "| predictor (test) | acc_mean | r2_mean | "
        + " | ".join(f"acc {t}" for t in traits) + " | "
        + " | ".join(f"R² {t}" for t in traits) + " |",
        "|---" * (3 + 2 * len(traits)) + "|",
    ]
    for key, label in PREDICTORS:
        m = result["test"].get(key)
        if m:
            lines.append(
                f"| {label} | {m['acc_mean']:.4f} | {m['r2_mean']:.4f} | "
                + " | ".join(f"{m[f'acc_{t}']:.4f}" for t in traits) + " | "
                + " | ".join(f"{m[f'r2_{t}']:.4f}" for t in traits) + " |"
            )
    goal = result["goal"]
    ft = result["test"]["fine_tuned"]
    lines += [
        "",
        f"Goal: test acc_mean ≥ {goal['test_acc_mean']} and r2_mean ≥ {goal['test_r2_mean']}: "
        f"reached {ft['acc_mean']:.4f} / {ft['r2_mean']:.4f}.",
        "",
        "Validation (the split used for selection):",
        "",
        "| predictor (valid) | acc_mean | r2_mean |",
        "|---|---|---|",
    ]
    lines += [f"| {label} | {result['valid'][k]['acc_mean']:.4f} | "
              f"{result['valid'][k]['r2_mean']:.4f} |"
              for k, label in PREDICTORS if k in result["valid"]]
    lines += [
        "",
        "Per epoch (validation):",
        "",
        "| epoch | train loss | valid acc_mean | valid r2_mean | seconds |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {h['epoch']} | {h['train_loss']:.5f} | {h['valid_acc_mean']:.4f} | "
        f"{h['valid_r2_mean']:.4f} | {h['seconds']:.0f} |"
        for h in result["history"]
    ]
    if "reloaded_test" in result:
        r = result["reloaded_test"]
        lines += ["", f"Reloaded from `{result['output']}` with `predict_traits` and re-scored: "
                  f"test acc_mean {r['acc_mean']:.4f}, r2_mean {r['r2_mean']:.4f} (largest "
                  f"difference from the in-run figures {r['max_abs_diff_vs_in_run']:.1e})."]
    lines += ["", "Clip counts:", ""]
    lines += [f"- {k}: {c['clips']} clips, {c['empty']} empty transcripts, {c['truncated']} "
              "truncated" for k, c in result["counts"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report-only", action="store_true",
                        help="only regenerate the Markdown from the JSON")
    parser.add_argument("--verify", action="store_true",
                        help="with --report-only: re-score the saved folder's test figures")
    parser.add_argument("--collect", action="store_true",
                        help="build the JSON from an output folder made by hand (no run); give "
                             "--command, --commit, --wall-seconds and --note")
    parser.add_argument("--command", default="")
    parser.add_argument("--commit", default="unknown")
    parser.add_argument("--wall-seconds", type=float, default=float("nan"))
    parser.add_argument("--note", default=None)
    parser.add_argument("extra", nargs="*", help="extra pretrain-personality options (after --)")
    args = parser.parse_args()
    if args.report_only:
        result = json.loads(RESULT_JSON.read_text(encoding="utf-8"))
        if args.verify:
            verify(result)
    elif args.collect:
        result = collect(args.command, args.commit, args.wall_seconds, args.note)
    else:
        result = run(args.extra)
    write_text(RESULT_MD, render(result))
    print(RESULT_MD.read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
