"""Training-step time and parameter counts of every registered model vs text-only fine-tuning.

This module is also the benchmarks' one step-timing harness: ``time_contestants`` times named
``Contestant``s (a model, its inputs, its optimizer, an autocast precision) one training step
each, interleaved in rounds whose order rotates, and returns every contestant's times, median,
minimum and per-round ratios to a reference. Here it compares every registered model with
``text_finetune``; ``benchmarks/precision.py`` compares PSA-MF's precision / compile variants.

Every name in ``psamf.models.list_models()`` is built on the same text backbone and timed on the
same batch: 32 transcripts x 50 tokens, personality embeddings precomputed (as from the cache),
audio 1 frame x 73 and no video (our CMU-MOSI); each model receives only the inputs its registry
entry says it reads. One step = forward + backward + Adam step + zero_grad. After warm-up, every
round runs each model once, the order rotating by one model per round, so that every model's run
of a round shares that round's machine load with the reference's (``text_finetune``). Reported per
model: median, minimum and all step times, the median of the per-round ratios to text_finetune
(the headline ratio), and total / trainable parameter counts. Goal: PSA-MF <= 1.15x text-only.

    .venv/bin/python -m benchmarks.step_time                    # minilm and mpnet, writes JSON + MD
    .venv/bin/python -m benchmarks.step_time --backbones minilm --repeats 5
    .venv/bin/python -m benchmarks.step_time --render-md        # only re-render the .md from JSON

JSON: ``results[i]["models"][model_type]`` = {median_s, min_s, times_s, parameters,
trainable_parameters, ratio_to_text_finetune (median paired ratio), ratio_of_medians,
ratio_of_minima}, one ``results`` entry per backbone; top level: command, commit, machine, loads.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from psamf.io import write_json, write_text
from psamf.models import PSAMFConfig, build_model, list_models
from psamf.provenance import git_commit
from psamf.training.precision import autocast, grad_scaler

HERE = Path(__file__).resolve().parent
REFERENCE = "text_finetune"  # every ratio is to this model's step on the same round
GOAL = 1.15  # PSA-MF's step may cost at most this many text-only steps (the goal)


# --- the harness (benchmarks/precision.py uses it too) --------------------------------------------


def commit() -> str:
    """Short HEAD, ``+dirty`` when tracked files under src/ differ from it (or "unknown")."""
    sha, plus, dirty = git_commit(HERE).partition("+")
    return sha[:7] + plus + dirty if sha != "unknown" else sha


def command(module: str) -> str:
    """How this run was started, for the result file: ``python -m MODULE ARGS...``."""
    return shlex.join([Path(sys.executable).name, "-m", module, *sys.argv[1:]])


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def resolve_device(name: str | None) -> torch.device:
    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def add_step_arguments(parser: argparse.ArgumentParser, *, backbones: list[str], repeats: int,
                       out: Path) -> None:
    """The options every step-time benchmark shares: what to build, how long to time, where to."""
    parser.add_argument("--backbones", nargs="+", default=backbones)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--audio-dim", type=int, default=73)
    parser.add_argument("--repeats", type=int, default=repeats,
                        help="timed rounds (each runs every contestant once)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per contestant first")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for the timed steps (1: stable timings on a shared "
                             "machine; 0 = torch's default)")
    parser.add_argument("--device", default=None, help="cpu / cuda (default: cuda if available)")
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--render-md", action="store_true", help="only rewrite the .md from --out")


def build(backbone: str, args: argparse.Namespace, device: torch.device,
          model_type: str = "psamf") -> tuple[PSAMFConfig, torch.nn.Module]:
    """A registered model on ``backbone`` for ``args``' batch shape, from seed 0, in train mode."""
    torch.manual_seed(0)
    config = PSAMFConfig(model_type=model_type, text_encoder=backbone,
                         audio_dim=args.audio_dim, max_text_length=args.tokens)
    return config, build_model(config).to(device).train()


def adam(model: torch.nn.Module) -> torch.optim.Adam:
    """Adam over the model's parameter groups at the trainer's learning rates."""
    return torch.optim.Adam(model.parameter_groups(encoder_lr=5e-5, other_lr=5e-4,
                                                   weight_decay=1e-4))


def synthetic_batch(model: torch.nn.Module, args: argparse.Namespace,
                    device: torch.device) -> dict[str, torch.Tensor]:
    """A fixed batch for ``model``'s text encoder: ``args.batch`` x ``args.tokens`` token ids,
    precomputed personality embeddings, audio of 1 frame x ``args.audio_dim``, labels in [-3, 3]."""
    gen = torch.Generator().manual_seed(0)
    hidden = model.text_encoder.hidden_size
    vocab = int(model.text_encoder.config.vocab_size)
    batch, tokens = args.batch, args.tokens
    cpu = {
        "input_ids": torch.randint(1000, min(vocab, 20000), (batch, tokens), generator=gen),
        "attention_mask": torch.ones(batch, tokens, dtype=torch.long),
        "personality": torch.randn(batch, hidden, generator=gen),
        "audio": torch.randn(batch, 1, args.audio_dim, generator=gen),
        "audio_lengths": torch.ones(batch, dtype=torch.long),
        "labels": torch.rand(batch, generator=gen) * 6 - 3,
    }
    return {k: v.to(device) for k, v in cpu.items()}


@dataclass
class Contestant:
    """One timed training step: ``model(**inputs).loss`` under ``precision``'s autocast, backward
    through a GradScaler (active for fp16 only), gradients clipped to ``clip_norm`` if set, then
    ``optimizer`` steps and zeroes. Compiling is the caller's: pass a compiled model."""

    name: str
    model: torch.nn.Module
    inputs: dict[str, torch.Tensor]
    optimizer: torch.optim.Optimizer
    precision: str = "fp32"
    clip_norm: float | None = None


def rotations(names: list[str], repeats: int) -> list[list[str]]:
    """Round r runs ``names`` rotated left by r, each contestant takes each slot in turn."""
    return [names[r % len(names):] + names[:r % len(names)] for r in range(repeats)]


def _step(c: Contestant, scaler: torch.amp.GradScaler, device: torch.device) -> tuple[float, float]:
    """(seconds, loss) of one training step of ``c``; CUDA is synchronised around the clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    with autocast(c.precision, device):
        loss = c.model(**c.inputs).loss
    scaler.scale(loss).backward()
    if c.clip_norm is not None:
        scaler.unscale_(c.optimizer)
        torch.nn.utils.clip_grad_norm_(c.model.parameters(), c.clip_norm)
    scaler.step(c.optimizer)
    scaler.update()
    c.optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return seconds, float(loss.detach())


def time_contestants(contestants: Sequence[Contestant], *, reference: str, repeats: int,
                     warmup: int, device: torch.device, label: str = "") -> dict:
    """Time ``contestants``: ``warmup`` untimed steps each, then ``repeats`` rounds that run every
    contestant once, in ``rotations`` order, so each round's runs share that round's machine load.

    Returns ``{"reference", "load_average_per_round", "contestants": {name: {times_s, median_s,
    min_s, paired_ratios (per round: this step / the reference's), ratio_to_reference (their
    median), ratio_of_medians, ratio_of_minima, first_step_s (the very first step: for a compiled
    model, compilation), first_loss, last_loss}}}``."""
    names = [c.name for c in contestants]
    if reference not in names or len(set(names)) != len(names) or repeats < 1:
        raise ValueError(f"need unique contestant names including {reference!r} and repeats >= 1, "
                         f"got {names} and {repeats}")
    by_name = {c.name: c for c in contestants}
    scalers = {c.name: grad_scaler(c.precision, device) for c in contestants}
    steps: dict[str, list[tuple[float, float]]] = {name: [] for name in names}

    def run(name: str) -> float:
        if not steps[name]:
            torch.manual_seed(1)  # the same dropout draws for every eager contestant's first step
        steps[name].append(_step(by_name[name], scalers[name], device))
        return steps[name][-1][0]

    for name in names:
        warm = [run(name) for _ in range(warmup)]
        if warm:
            print(f"  {label} {name}: warm-up {', '.join(f'{t:.2f}' for t in warm)} s",
                  file=sys.stderr, flush=True)
    times: dict[str, list[float]] = {name: [] for name in names}
    loads = []  # 1/5/15-minute load averages after each round: how busy the machine was
    for order in rotations(names, repeats):
        for name in order:
            times[name].append(run(name))
        loads.append(load_average())
        print(f"  {label} round {len(loads)}/{repeats} done, load {loads[-1]}",
              file=sys.stderr, flush=True)
    ref = times[reference]
    out = {}
    for name, t in times.items():
        # The headline: runs of one round are close in time, so they share the machine's load.
        paired = [a / b for a, b in zip(t, ref, strict=True)]
        out[name] = {
            "times_s": t,
            "median_s": statistics.median(t),
            "min_s": min(t),
            "paired_ratios": paired,
            "ratio_to_reference": statistics.median(paired),
            "ratio_of_medians": statistics.median(t) / statistics.median(ref),
            "ratio_of_minima": min(t) / min(ref),
            "first_step_s": steps[name][0][0],
            "first_loss": steps[name][0][1],
            "last_loss": steps[name][-1][1],
        }
    return {"reference": reference, "load_average_per_round": loads, "contestants": out}


# --- every registered model vs text_finetune ------------------------------------------------------


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def inputs_for(config: PSAMFConfig, batch: dict) -> dict:
    """The part of ``batch`` this model reads (its registry entry), as a training batch has."""
    keep = {"input_ids", "attention_mask", "labels"}
    if config.uses_personality():
        keep.add("personality")
    for m in config.modality_widths():
        keep |= {m, f"{m}_lengths"}
    return {k: v for k, v in batch.items() if k in keep}


def bench_backbone(backbone: str, model_types: list[str], args, device: torch.device) -> dict:
    built = {model_type: build(backbone, args, device, model_type) for model_type in model_types}
    reference = built[REFERENCE][1]
    batch = synthetic_batch(reference, args, device)
    contestants = [Contestant(name, model, inputs_for(config, batch), adam(model))
                   for name, (config, model) in built.items()]
    timing = time_contestants(contestants, reference=REFERENCE, repeats=args.repeats,
                              warmup=args.warmup, device=device, label=backbone)
    models = {}
    for c in contestants:
        t = timing["contestants"][c.name]
        models[c.name] = {
            "median_s": t["median_s"],
            "min_s": t["min_s"],
            "times_s": t["times_s"],
            "parameters": sum(p.numel() for p in c.model.parameters()),
            "trainable_parameters": sum(p.numel() for p in c.model.parameters()
                                        if p.requires_grad),
            "ratio_to_text_finetune": t["ratio_to_reference"],
            "ratio_of_medians": t["ratio_of_medians"],
            "ratio_of_minima": t["ratio_of_minima"],
            "inputs": sorted(k for k in c.inputs if k != "labels"),
        }
    row = {
        "backbone": backbone,
        "encoder": reference.text_encoder.name_or_path,
        "layers": reference.text_encoder.num_layers,
        "hidden": reference.text_encoder.hidden_size,
        "reference": REFERENCE,
        "load_average_per_round": timing["load_average_per_round"],
        "models": models,
    }
    del built, reference, batch, contestants
    gc.collect()  # free this backbone's models and optimizer states before the next backbone
    return row


def render_md(result: dict) -> str:
    lines = [
        "# Training-step time and parameters: every model vs text-only fine-tuning",
        "",
        f"Generated by `benchmarks/step_time.py` from `step_time.json`. Command: "
        f"`{result['command']}`; commit {result['commit']}; torch {result['torch']}; "
        f"device {result['device']}; {result['threads']} threads; load average at start "
        f"{result['load_average_start']}, at the end {result['load_average_end']} "
        f"({result['cpu_count']} cores, shared with other jobs).",
        "",
        f"Batch {result['batch']} x {result['tokens']} tokens, personality embeddings "
        f"precomputed, audio {result['audio_frames']} frame x {result['audio_dim']}, no video; "
        "each model gets only the inputs it reads. Step = forward + backward + Adam step + "
        f"zero_grad; {result['repeats']} rounds after {result['warmup']} warm-up step(s) per "
        "model, each round running every model once in an order rotated by one per round.",
        "",
        "Ratio = median over rounds of (model's step / text_finetune's step in the same round): "
        "the two runs are close in time, so share the machine's load; its quartiles over the "
        "rounds show how noisy the machine was. The ratio of minima (robust when other jobs only "
        "add time) is given beside it.",
        "",
    ]
    for row in result["results"]:
        models = row["models"]
        ref = models[row["reference"]]
        lines += [
            f"## {row['backbone']} ({row['layers']} layers x {row['hidden']})",
            "",
            "| model | median step (s) | min step (s) | ratio to text-only | its quartiles "
            "| ratio of minima | parameters | trainable | params vs text-only |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, m in sorted(models.items(), key=lambda kv: kv[1]["ratio_to_text_finetune"]):
            paired = [a / b for a, b in zip(m["times_s"], ref["times_s"], strict=True)]
            q1, _, q3 = statistics.quantiles(paired, n=4) if len(paired) > 1 else paired * 3
            lines.append(
                f"| {name} | {m['median_s']:.3f} | {m['min_s']:.3f} | "
                f"{m['ratio_to_text_finetune']:.3f} | {q1:.2f}–{q3:.2f} | "
                f"{m['ratio_of_minima']:.3f} | "
                f"{m['parameters']:,} | {m['trainable_parameters']:,} | "
                f"{m['parameters'] / ref['parameters']:.3f} |"
            )
        if "psamf" in models:
            ratio = models["psamf"]["ratio_to_text_finetune"]
            verdict = "met" if ratio <= GOAL else "NOT met"
            lines += ["", f"Goal PSA-MF <= {GOAL}x text-only: {ratio:.3f}x, {verdict}."]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.step_time",
                                     description=__doc__.splitlines()[0])
    add_step_arguments(parser, backbones=["minilm", "mpnet"], repeats=11,
                       out=HERE / "step_time.json")
    args = parser.parse_args()
    md_path = args.out.with_suffix(".md")
    if args.render_md:
        write_text(md_path, render_md(json.loads(args.out.read_text(encoding="utf-8"))))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    # The registry, reference first so that it is built (and its batch made) before the others.
    model_types = [REFERENCE, *(m for m in list_models() if m != REFERENCE)]
    load = load_average()
    results = [bench_backbone(b, model_types, args, device) for b in args.backbones]
    import transformers

    result = {
        "command": command("benchmarks.step_time"),
        "commit": commit(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {_cpu_model()}",
        "device": device_name(device),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_start": load,
        "load_average_end": load_average(),
        "batch": args.batch,
        "tokens": args.tokens,
        "audio_dim": args.audio_dim,
        "audio_frames": 1,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "order": "rotating: round r runs the models of `model_types` rotated left by r",
        "model_types": model_types,
        "reference": REFERENCE,
        "goal_psamf_ratio": GOAL,
        "results": results,
    }
    write_json(args.out, result)
    write_text(md_path, render_md(result))
    for row in results:
        for name, m in row["models"].items():
            print(f"{row['backbone']} {name}: median {m['median_s']:.3f}s  "
                  f"ratio {m['ratio_to_text_finetune']:.3f}  params {m['parameters']:,}")


if __name__ == "__main__":
    main()
