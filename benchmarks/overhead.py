"""How much of a training epoch is spent outside forward/backward/optimizer step?

Trains PSA-MF (MiniLM) for one epoch on CMU-MOSI with the trainer's own timers and reports the share
of the epoch's wall time that is not model compute: batching, data loading, logging, TensorBoard,
the validation pass's bookkeeping and the end-of-epoch checkpoint. Goal: under 5 %.
One-off setup (reading the data, personality embeddings cold and cached, tokenizing, building the
model) is reported separately in seconds.

    .venv/bin/python benchmarks/overhead.py                      # MOSI, 1 epoch, batch 32
    .venv/bin/python benchmarks/overhead.py --data sample epochs=1 batch_size=16

Writes benchmarks/overhead.json and benchmarks/overhead.md (override with --out).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import torch

from psamf.io import write_json, write_text
from psamf.provenance import git_commit
from psamf.training.config import apply_overrides
from psamf.training.prepare import load_multimodal, prepare
from psamf.training.presets import get_preset
from psamf.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE training config overrides")
    parser.add_argument("--data", default="mosi")
    parser.add_argument("--root", default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "overhead",
                        help="output stem: writes STEM.json and STEM.md")
    args = parser.parse_args(argv)
    args.out = args.out.resolve()
    os.chdir(ROOT)  # personality_encoder=auto and the data root resolve from the repository
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    base = ["epochs=1", "batch_size=32", "progress=false", "checkpoint_every_steps=0",
            f"data.name={args.data}"] + ([f"data.root={args.root}"] if args.root else [])
    with tempfile.TemporaryDirectory() as tmp:
        overrides = base + [f"cache_dir={tmp}/cache", *args.overrides]
        config = apply_overrides(get_preset("mosi_authors"), overrides)
        setup: dict[str, float] = {}
        t0 = time.perf_counter()
        dataset = load_multimodal(config.data.name, config.data.root)
        setup["load_data_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        prepared = prepare(config, dataset)  # personality embeddings computed (cold cache)
        setup["prepare_cold_cache_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        prepared = prepare(config, dataset)  # the same, read from the cache
        setup["prepare_warm_cache_s"] = time.perf_counter() - t0

        trainer = Trainer(prepared.config, prepared.splits, seed=0, folder=Path(tmp) / "seed-0")
        t0 = time.perf_counter()
        results = trainer.fit()
        fit_s = time.perf_counter() - t0
    timers = trainer.timers.as_dict()
    epoch = timers["epochs_wall"]
    compute = timers["compute"] + timers["eval_compute"]
    report = {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "git_commit": git_commit(),
        "seed": 0,
        "personality": prepared.personality,
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "device": str(trainer.device), "python": platform.python_version(),
                    "torch": torch.__version__},
        "config": {"data": config.data.name, "text_encoder": config.model.text_encoder,
                   "batch_size": config.batch_size, "epochs": config.epochs,
                   "train_utterances": len(prepared.splits["train"]),
                   "valid_utterances": len(prepared.splits["valid"])},
        "epoch_wall_s": epoch,
        "compute_s": compute,
        "train_compute_s": timers["compute"],
        "valid_compute_s": timers["eval_compute"],
        "checkpoint_s": timers["checkpoint"],
        "overhead_s": epoch - compute,
        "overhead_share": (epoch - compute) / epoch,
        "checkpoint_share": timers["checkpoint"] / epoch,
        "setup": setup,
        "fit_total_s": fit_s,
        "valid_mae_after_epoch": results.valid["mae"],
    }
    out_json = args.out.with_suffix(".json")
    write_json(out_json, report)
    md = [
        "# Training overhead outside forward/backward",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Machine: {report['machine']}",
        f"Run: {report['config']}",
        "",
        "| measure | value |",
        "|---|---|",
        f"| epoch wall time (train + validation + checkpoint) | {epoch:.1f} s |",
        f"| forward/backward/step + validation forward | {compute:.1f} s |",
        f"| overhead (everything else) | {epoch - compute:.2f} s "
        f"(**{100 * report['overhead_share']:.2f} %** of the epoch; goal < 5 %) |",
        f"| of which end-of-epoch checkpoint | {timers['checkpoint']:.2f} s "
        f"({100 * report['checkpoint_share']:.2f} %) |",
        f"| setup: load data | {setup['load_data_s']:.1f} s |",
        f"| setup: personality embeddings + tokenize, cold cache | "
        f"{setup['prepare_cold_cache_s']:.1f} s |",
        f"| setup: the same, warm cache | {setup['prepare_warm_cache_s']:.1f} s |",
        "",
    ]
    write_text(args.out.with_suffix(".md"), "\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
