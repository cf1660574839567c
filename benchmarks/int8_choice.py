"""Which ``quantize_dynamic`` settings ``psamf export --int8`` should use: accuracy vs speed.

For each candidate setting, the fp32 graphs of an exported model (``--model``, made with
``psamf export RUN --out DIR --onnx``) are quantised again with
``psamf.export.onnx_graphs.quantize_graph`` into a copy of the folder under ``--work`` (the
source folder is never written; unchanged files are hard links), the manifest is rewritten, and
the copy is loaded with ``psamf.load_model(copy, backend="onnx-int8")``. Measured per setting,
with ONNX Runtime (and torch, for the reference rows) on ONE thread:

* MOSI test split (label.csv, mode == test): Acc-2 non0, MAE, largest |score - torch score|;
* throughput: ``predict_texts`` over the first ``--texts`` test texts (tokenising, the
  personality graph and the sentiment graph, batches of 32), median of ``--repeats`` timed
  passes after one warm-up pass, as texts/s and relative to fp32 ONNX and torch.

In dynamic quantisation activations are always quantised to uint8 at run time, so the
weight/activation "combos" are QInt8 or QUInt8 weights with uint8 activations.

Writes benchmarks/int8_choice.json and .md.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/int8_choice.py --model /tmp/exp/mosi-model
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from serve_load import GOAL_ACC2_POINTS, GOAL_SPEEDUP, MOSI_LABELS, mosi_test  # noqa: E402

BASE = {"weight_type": "QInt8", "per_channel": False, "reduce_range": False,
        "op_types_to_quantize": None}
# name -> (settings, substrings of node names kept in fp32 via nodes_to_exclude)
CANDIDATES: dict[str, tuple[dict[str, Any], list[str]]] = {
    "default-qint8": (BASE, []),
    "per-channel": ({**BASE, "per_channel": True}, []),
    "reduce-range": ({**BASE, "reduce_range": True}, []),
    "per-channel+reduce-range": ({**BASE, "per_channel": True, "reduce_range": True}, []),
    "matmul-gemm-only": ({**BASE, "op_types_to_quantize": ["MatMul", "Gemm"]}, []),
    "matmul-only": ({**BASE, "op_types_to_quantize": ["MatMul"]}, []),
    "matmul-only+per-channel": ({**BASE, "op_types_to_quantize": ["MatMul"],
                                 "per_channel": True}, []),
    "per-channel+reduce-range+matmul-only": ({**BASE, "per_channel": True, "reduce_range": True,
                                              "op_types_to_quantize": ["MatMul"]}, []),
    "per-channel+reduce-range+fusion-fp32": ({**BASE, "per_channel": True, "reduce_range": True},
                                             ["/fusion/"]),
    "exclude-first-last": (BASE, ["embeddings", "layer.0/", "layer.5/", "/fusion/"]),
    "quint8-weights": ({**BASE, "weight_type": "QUInt8"}, []),
    "quint8-weights+per-channel": ({**BASE, "weight_type": "QUInt8", "per_channel": True}, []),
}


def excluded_nodes(graph: Path, patterns: list[str]) -> list[str]:
    import onnx

    model = onnx.load(str(graph), load_external_data=False)
    return [n.name for n in model.graph.node if any(p in n.name for p in patterns)]


def make_variant(model: Path, work: Path, settings: dict, patterns: list[str]) -> Path:
    from psamf.export import layout
    from psamf.export.manifest import write_manifest
    from psamf.export.onnx_graphs import quantize_graph

    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(model, work, copy_function=os.link,
                    ignore=lambda _d, names: [n for n in names
                                              if n.endswith(".int8.onnx") or n == "manifest.json"])
    onnx_dir = work / layout.ONNX_DIR
    for graph in (layout.SENTIMENT_GRAPH, layout.PERSONALITY_GRAPH):
        source = onnx_dir / graph
        if not source.is_file():
            continue
        kwargs = dict(settings)
        if patterns:
            kwargs["nodes_to_exclude"] = excluded_nodes(source, patterns)
        quantize_graph(source, onnx_dir / layout.int8_name(graph), kwargs)
    write_manifest(work)
    return work


def single_thread(predictor: Any) -> Any:
    """Reopen the predictor's ONNX sessions on one intra-op thread (torch: set_num_threads)."""
    import onnxruntime as ort
    import torch

    torch.set_num_threads(1)
    sessions = getattr(predictor, "_sessions", None)
    if sessions:
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.log_severity_level = 3
        for key, session in list(sessions.items()):
            sessions[key] = ort.InferenceSession(session._model_path, options,
                                                 providers=["CPUExecutionProvider"])
    return predictor


def measure(folder: Path, backend: str, texts: list[str], labels: np.ndarray, n_speed: int,
            repeats: int) -> dict:
    import psamf
    from psamf.metrics import regression_metrics

    predictor = single_thread(psamf.load_model(folder, backend=backend, device="cpu"))
    scores = np.array([r["score"] for r in predictor.predict_texts(texts)])
    metrics = regression_metrics(scores, labels)
    speed = texts[:n_speed]
    predictor.predict_texts(speed)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predictor.predict_texts(speed)
        times.append(time.perf_counter() - start)
    return {"acc2_non0": round(metrics["acc2_non0"], 3), "mae": round(metrics["mae"], 4),
            "texts_per_s": round(n_speed / statistics.median(times), 2),
            "times_s": [round(t, 3) for t in times], "scores": scores}


def int8_size_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in (folder / "onnx").glob("*.int8.onnx")) / 2**20, 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True, help="a folder from psamf export --onnx")
    ap.add_argument("--work", type=Path, default=Path("/tmp/int8-try"),
                    help="where the quantised copies go")
    ap.add_argument("--only", nargs="+", choices=list(CANDIDATES), default=list(CANDIDATES))
    ap.add_argument("--texts", type=int, default=256, help="test texts per timed pass")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--labels", type=Path, default=MOSI_LABELS)
    ap.add_argument("--out", type=Path, default=HERE / "int8_choice")
    args = ap.parse_args(argv)

    texts, labels = mosi_test(args.labels)
    rows: list[dict] = []
    reference: dict[str, dict] = {}
    for backend in ("torch", "onnx"):
        result = measure(args.model, backend, texts, labels, args.texts, args.repeats)
        reference[backend] = result
        print(f"{backend:>28}: acc2 {result['acc2_non0']:.2f} mae {result['mae']:.4f} "
              f"{result['texts_per_s']:.1f} texts/s", flush=True)
    torch_scores = reference["torch"]["scores"]
    for name in args.only:
        settings, patterns = CANDIDATES[name]
        folder = make_variant(args.model, args.work / name, settings, patterns)
        result = measure(folder, "onnx-int8", texts, labels, args.texts, args.repeats)
        result.update(name=name, settings=settings, keep_fp32=patterns,
                      int8_mb=int8_size_mb(folder))
        rows.append(result)
        print(f"{name:>28}: acc2 {result['acc2_non0']:.2f} mae {result['mae']:.4f} "
              f"{result['texts_per_s']:.1f} texts/s", flush=True)
    for backend, result in reference.items():
        rows.insert(len(reference) - 1 if backend == "onnx" else 0,
                    {**result, "name": backend, "settings": None, "keep_fp32": []})
    for row in rows:
        scores = row.pop("scores")
        row["max_abs_diff_vs_torch"] = round(float(np.abs(scores - torch_scores).max()), 4)
        row["acc2_points_vs_torch"] = round(row["acc2_non0"] - reference["torch"]["acc2_non0"], 3)
        row["x_fp32_onnx"] = round(row["texts_per_s"] / reference["onnx"]["texts_per_s"], 2)
        row["x_torch"] = round(row["texts_per_s"] / reference["torch"]["texts_per_s"], 2)
        row["meets_acc2_goal"] = abs(row["acc2_points_vs_torch"]) <= GOAL_ACC2_POINTS
    report = {
        "command": "PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/int8_choice.py "
                   + shlex.join(sys.argv[1:] if argv is None else argv),
        "model": str(args.model), "n_test": len(texts), "n_speed_texts": args.texts,
        "repeats": args.repeats, "threads": 1, "goal_acc2_points": GOAL_ACC2_POINTS,
        "goal_speedup_vs_torch": GOAL_SPEEDUP, "machine": platform.processor() or
        platform.machine(), "cpus": os.cpu_count(),
        "loadavg_end": [round(x, 2) for x in os.getloadavg()], "rows": rows}
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"Command: `{report['command']}`", "",
             f"Model: {args.model}; MOSI test n={len(texts)}; speed on {args.texts} texts, "
             f"median of {args.repeats}, one thread; load average at end "
             f"{report['loadavg_end']}.", "",
             "| setting | Acc-2 non0 | Δ vs torch | MAE | max abs Δ score | texts/s | × fp32 ONNX "
             "| × torch | int8 MB |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['acc2_non0']:.2f} | {r['acc2_points_vs_torch']:+.2f} "
                     f"| {r['mae']:.4f} | {r['max_abs_diff_vs_torch']:.4f} "
                     f"| {r['texts_per_s']:.1f} | {r['x_fp32_onnx']:.2f} | {r['x_torch']:.2f} "
                     f"| {r.get('int8_mb', '')} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
