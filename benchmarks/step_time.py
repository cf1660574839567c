"""Training-step time and parameter counts of every registered model vs text-only fine-tuning.

Every name in ``psamf.models.list_models()`` is built on the same text backbone and timed on the
same batch: 32 transcripts x 50 tokens, personality embeddings precomputed (as from the cache),
audio 1 frame x 73 and no video (our CMU-MOSI); each model receives only the inputs its registry
entry says it reads. One step = forward + backward + Adam step + zero_grad. After warm-up, every
round runs each model once, the order rotating by one model per round, so that every model's run
of a round shares that round's machine load with the reference's (``text_finetune``). Reported per
model: median, minimum and all step times, the median of the per-round ratios to text_finetune
(the headline ratio), and total / trainable parameter counts. Goal: PSA-MF <= 1.15x text-only.

    .venv/bin/python benchmarks/step_time.py                    # minilm and mpnet, writes JSON + MD
    .venv/bin/python benchmarks/step_time.py --backbones minilm --repeats 5
    .venv/bin/python benchmarks/step_time.py --render-md        # only re-render the .md from JSON

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
from pathlib import Path

import torch

from psamf.io import write_json, write_text
from psamf.models import PSAMFConfig, build_model, list_models
from psamf.provenance import git_commit

HERE = Path(__file__).resolve().parent
REFERENCE = "text_finetune"  # every ratio is to this model's step on the same round
GOAL = 1.15  # PSA-MF's step may cost at most this many text-only steps (the goal)


def _commit() -> str:
    """Short HEAD, ``+dirty`` when tracked files under src/ differ from it (or "unknown")."""
    sha, plus, dirty = git_commit(HERE).partition("+")
    return sha[:7] + plus + dirty if sha != "unknown" else sha


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _batch(model, *, batch: int, tokens: int, audio_dim: int, device: torch.device) -> dict:
    gen = torch.Generator().manual_seed(0)
    hidden = model.text_encoder.hidden_size
    vocab = int(model.text_encoder.config.vocab_size)
    ids = torch.randint(1000, min(vocab, 20000), (batch, tokens), generator=gen)
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones(batch, tokens, dtype=torch.long, device=device),
        "personality": torch.randn(batch, hidden, generator=gen).to(device),
        "audio": torch.randn(batch, 1, audio_dim, generator=gen).to(device),
        "audio_lengths": torch.ones(batch, dtype=torch.long, device=device),
        "labels": (torch.rand(batch, generator=gen) * 6 - 3).to(device),
    }


def _inputs_for(config: PSAMFConfig, batch: dict) -> dict:
    """The part of ``batch`` this model reads (its registry entry), as a training batch has."""
    keep = {"input_ids", "attention_mask", "labels"}
    if config.uses_personality():
        keep.add("personality")
    for m in config.modality_widths():
        keep |= {m, f"{m}_lengths"}
    return {k: v for k, v in batch.items() if k in keep}


def _step(model, optimizer, batch: dict, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = model(**batch)
    out.loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def rotations(names: list[str], repeats: int) -> list[list[str]]:
    """Round r runs ``names`` rotated left by r, so each model takes each slot about equally."""
    return [names[r % len(names):] + names[:r % len(names)] for r in range(repeats)]


def bench_backbone(backbone: str, model_types: list[str], args, device: torch.device) -> dict:
    built = {}
    for model_type in model_types:
        torch.manual_seed(0)
        config = PSAMFConfig(model_type=model_type, text_encoder=backbone,
                             audio_dim=args.audio_dim, max_text_length=args.tokens)
        model = build_model(config).to(device).train()
        groups = model.parameter_groups(encoder_lr=5e-5, other_lr=5e-4, weight_decay=1e-4)
        built[model_type] = (config, model, torch.optim.Adam(groups))
    reference = built[REFERENCE][1]
    batch = _batch(reference, batch=args.batch, tokens=args.tokens, audio_dim=args.audio_dim,
                   device=device)
    inputs = {name: _inputs_for(config, batch) for name, (config, _, _) in built.items()}
    for name, (_, model, opt) in built.items():
        for _ in range(args.warmup):
            _step(model, opt, inputs[name], device)
    times: dict[str, list[float]] = {name: [] for name in model_types}
    loads = []  # 1/5/15-minute load averages after each round: how busy the machine was
    for order in rotations(model_types, args.repeats):
        for name in order:
            _, model, opt = built[name]
            times[name].append(_step(model, opt, inputs[name], device))
        loads.append(_load())
        print(f"  {backbone} round {len(loads)}/{args.repeats} done, load {loads[-1]}",
              file=sys.stderr, flush=True)
    ref = times[REFERENCE]
    models = {}
    for name, (_, model, _) in built.items():
        t = times[name]
        models[name] = {
            "median_s": statistics.median(t),
            "min_s": min(t),
            "times_s": t,
            "parameters": sum(p.numel() for p in model.parameters()),
            "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            # The headline: runs of one round are close in time, so they share the machine's load.
            "ratio_to_text_finetune": statistics.median(a / b for a, b in zip(t, ref, strict=True)),
            "ratio_of_medians": statistics.median(t) / statistics.median(ref),
            "ratio_of_minima": min(t) / min(ref),
            "inputs": sorted(k for k in inputs[name] if k != "labels"),
        }
    row = {
        "backbone": backbone,
        "encoder": reference.text_encoder.name_or_path,
        "layers": reference.text_encoder.num_layers,
        "hidden": reference.text_encoder.hidden_size,
        "reference": REFERENCE,
        "load_average_per_round": loads,
        "models": models,
    }
    del built, reference, batch, inputs
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["minilm", "mpnet"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--audio-dim", type=int, default=73)
    parser.add_argument("--repeats", type=int, default=11, help="rounds (each runs every model)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model first")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: stable timings on a shared machine; 0 = torch's)")
    parser.add_argument("--device", default=None, help="cpu / cuda (default: cuda if available)")
    parser.add_argument("--out", type=Path, default=HERE / "step_time.json")
    parser.add_argument("--render-md", action="store_true", help="only rewrite the .md from --out")
    args = parser.parse_args()
    md_path = args.out.with_suffix(".md")
    if args.render_md:
        write_text(md_path, render_md(json.loads(args.out.read_text(encoding="utf-8"))))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    # The registry, reference first so that it is built (and its batch made) before the others.
    model_types = [REFERENCE, *(m for m in list_models() if m != REFERENCE)]
    load = _load()
    results = [bench_backbone(b, model_types, args, device) for b in args.backbones]
    import transformers

    result = {
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "commit": _commit(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {_cpu_model()}",
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_start": load,
        "load_average_end": _load(),
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
