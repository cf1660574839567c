"""``psamf serve`` under load: requests/s and p50/p99 latency per backend and client count.

Per backend (torch, onnx, onnx-int8 by default), ``psamf serve MODEL --backend B`` starts in a
subprocess on a free 127.0.0.1 port (nothing else is ever contacted). Once ``/healthz`` answers
and a few warm-up requests have run, each client count (1, 8, 32) drives ``POST /v1/predict``
with one MOSI test-split text per request from that many threads, each on its own keep-alive
``http.client`` connection. A level ends at ``--requests`` requests or ``--seconds`` seconds,
whichever comes first. Recorded: every status code and latency, the server's micro-batching
counts (``GET /v1/model`` before and after the level), then SIGTERM and the server's exit status.
A failed request is any reply other than 200, or no reply.

The same model's MOSI test metrics are then computed per backend in this process
(``psamf.load_model(MODEL, backend=B)`` + ``psamf.metrics.regression_metrics``), so int8's accuracy
cost is measured next to its speed. Goals from the serving issue: onnx-int8 >= 2x torch's
throughput, Acc-2 (non0) within 0.5 point of torch's, zero failed requests.

The client threads share the machine with the server; load averages at start and end are
recorded. Writes benchmarks/serve_load.json and .md.

    PYTHONPATH=src python benchmarks/serve_load.py --model models/mosi      # ~6 min on 2 cores
    PYTHONPATH=src python benchmarks/serve_load.py --run runs/mosi-text-p   # exports one first
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
HOST = "127.0.0.1"  # loopback only, by design
MOSI_LABELS = HERE.parent.parent / "shared" / "data" / "mosi" / "label.csv"
BACKENDS = ("torch", "onnx", "onnx-int8")
GOAL_SPEEDUP, GOAL_ACC2_POINTS = 2.0, 0.5


def mosi_test(path: Path = MOSI_LABELS) -> tuple[list[str], np.ndarray]:
    """The MOSI test split's transcripts and labels (label.csv, mode == test)."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["mode"] == "test"]
    return [r["text"] for r in rows], np.array([float(r["label"]) for r in rows])


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def get_json(port: int, path: str, timeout: float = 30) -> tuple[int, dict]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


class Server:
    """``psamf serve MODEL --backend B`` on a free loopback port; ``stop()`` sends SIGTERM."""

    def __init__(self, model: Path, backend: str, log: Path, *, threads: int | None = None,
                 start_timeout_s: float = 180) -> None:
        self.port, self.log = free_port(), log
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        if threads:  # else torch / ONNX Runtime pick their own (all cores)
            env["OMP_NUM_THREADS"] = str(threads)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "psamf", "serve", str(model), "--backend", backend,
             "--host", HOST, "--port", str(self.port), "--device", "cpu"],
            env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        started = time.monotonic()
        while time.monotonic() - started < start_timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"psamf serve exited {self.proc.returncode}: "
                                   f"{log.read_text()[-2000:]}")
            try:
                if get_json(self.port, "/healthz", timeout=2)[0] == 200:
                    self.start_s = time.monotonic() - started
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"psamf serve did not answer /healthz in {start_timeout_s} s: "
                           f"{log.read_text()[-2000:]}")

    def batching(self) -> dict:
        return get_json(self.port, "/v1/model")[1]["batching"]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: in-flight requests finish, exit 0
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@dataclass
class LoadResult:
    clients: int
    wall_s: float
    statuses: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)  # of the 200 replies

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def failed(self) -> int:
        return self.requests - self.statuses.get("200", 0)

    def summary(self) -> dict:
        lat = np.array(self.latencies_ms) if self.latencies_ms else np.array([np.nan])
        return {"clients": self.clients, "requests": self.requests, "failed": self.failed,
                "statuses": dict(sorted(self.statuses.items())), "wall_s": round(self.wall_s, 3),
                "req_per_s": round(self.statuses.get("200", 0) / self.wall_s, 2),
                "p50_ms": round(float(np.percentile(lat, 50)), 1),
                "p99_ms": round(float(np.percentile(lat, 99)), 1),
                "mean_ms": round(float(lat.mean()), 1)}


def drive(port: int, texts: list[str], clients: int, *, max_requests: int,
          max_seconds: float, timeout_s: float = 60) -> LoadResult:
    """``clients`` threads POST one text each to /v1/predict, each on its own keep-alive
    connection, until ``max_requests`` have been sent or ``max_seconds`` have passed."""
    lock = threading.Lock()
    sent = 0
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    deadline = time.monotonic() + max_seconds

    def next_index() -> int | None:
        nonlocal sent
        with lock:
            if sent >= max_requests or time.monotonic() >= deadline:
                return None
            sent += 1
            return sent - 1

    def client() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
        while (i := next_index()) is not None:
            body = json.dumps({"text": texts[i % len(texts)]}).encode()
            start = time.perf_counter()
            try:
                conn.request("POST", "/v1/predict", body,
                             {"Content-Type": "application/json"})
                resp = conn.getresponse()
                ok = resp.status == 200 and len(json.loads(resp.read())["results"]) == 1
                status = str(resp.status) if resp.status != 200 or ok else "200-bad-body"
            except (OSError, http.client.HTTPException, ValueError, KeyError) as err:
                status = f"error:{type(err).__name__}"
                conn.close()  # a fresh connection for the next request
                conn = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == "200":
                    latencies.append(elapsed)
        conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return LoadResult(clients, time.perf_counter() - start, statuses, latencies)


def batching_delta(before: dict, after: dict) -> dict:
    """What the server's micro-batcher did during one level."""
    calls = after["model_calls"] - before["model_calls"]
    requests = after["requests"] - before["requests"]
    sizes = {k: v - before["requests_per_call"].get(k, 0)
             for k, v in after["requests_per_call"].items()}
    sizes = {k: v for k, v in sizes.items() if v}
    return {"model_calls": calls, "requests": requests, "texts": after["texts"] - before["texts"],
            "mean_requests_per_call": round(requests / calls, 2) if calls else None,
            "max_requests_per_call": max(map(int, sizes), default=0),
            "calls_by_requests": sizes}


def load_backend(model: Path, backend: str, texts: list[str], levels: list[int], *,
                 max_requests: int, max_seconds: float, warmup: int, work: Path,
                 threads: int | None) -> dict:
    server = Server(model, backend, work / f"serve-{backend}.log", threads=threads)
    try:
        drive(server.port, texts, 1, max_requests=warmup, max_seconds=60)
        rows = []
        for clients in levels:
            before = server.batching()
            result = drive(server.port, texts, clients, max_requests=max_requests,
                           max_seconds=max_seconds)
            row = result.summary()
            row["batching"] = batching_delta(before, server.batching())
            row["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
            rows.append(row)
            print(f"{backend:>9} x{clients:>2}: {row['req_per_s']:7.1f} req/s  p50 "
                  f"{row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms  failed {row['failed']}",
                  flush=True)
    finally:
        exit_status = server.stop()
    return {"backend": backend, "server_start_s": round(server.start_s, 2),
            "exit_status": exit_status, "levels": rows}


def mosi_metrics(model: Path, backend: str, texts: list[str], labels: np.ndarray) -> dict:
    import psamf
    from psamf.metrics import regression_metrics

    predictor = psamf.load_model(model, backend=backend, device="cpu")
    start = time.perf_counter()
    scores = np.array([r["score"] for r in predictor.predict_texts(texts)])
    metrics = regression_metrics(scores, labels)
    return {"backend": backend, "acc2_non0": round(metrics["acc2_non0"], 3),
            "acc2_has0": round(metrics["acc2_has0"], 3), "mae": round(metrics["mae"], 4),
            "corr": round(metrics["corr"], 4), "n": len(texts),
            "predict_s": round(time.perf_counter() - start, 2), "scores": scores.tolist()}


def parity(metrics: list[dict], labels: np.ndarray) -> None:
    """Per backend, against torch's scores: the largest score difference and how many non-zero
    labelled clips change sides of 0 (what moves Acc-2 non0); the scores themselves are dropped."""
    scores = {m["backend"]: np.array(m.pop("scores")) for m in metrics}
    if "torch" not in scores:
        return
    non0 = labels != 0
    for m in metrics:
        s = scores[m["backend"]]
        m["max_abs_diff_vs_torch"] = round(float(np.abs(s - scores["torch"]).max()), 4)
        m["sides_changed_vs_torch"] = int(((s[non0] > 0) != (scores["torch"][non0] > 0)).sum())


def export_model(run: Path, out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "psamf", "export", str(run), "--out", str(out),
                    "--onnx", "--int8"], check=True, env={**os.environ, "PYTHONPATH": str(SRC)})
    return out


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def write_markdown(report: dict, path: Path) -> None:
    by = {(b["backend"], r["clients"]): r for b in report["load"] for r in b["levels"]}
    levels, backends = report["levels"], [b["backend"] for b in report["load"]]
    lines = ["# psamf serve under load (text requests, loopback)", "",
             f"Command: `{report['command']}`  ",
             f"Machine: {report['machine']}; load average (1/5/15 min) at start "
             f"{report['loadavg_start']}, at end {report['loadavg_end']}  ",
             f"Model: `{report['model']}` — {report['model_note']}  ",
             f"Per level: {report['max_requests']} requests or {report['max_seconds']:g} s, "
             f"whichever first, after {report['warmup']} warm-up requests; one MOSI test text "
             "per request; server defaults (micro-batching: max 32 texts, 5 ms wait); client "
             "threads run on the same cores as the server.", "",
             "| backend | clients | requests | req/s | p50 (ms) | p99 (ms) | failed | "
             "requests per model call: mean (max) |", "|---|---|---|---|---|---|---|---|"]
    for b in backends:
        for c in levels:
            r = by[(b, c)]
            lines.append(f"| {b} | {c} | {r['requests']} | {r['req_per_s']} | {r['p50_ms']} | "
                         f"{r['p99_ms']} | {r['failed']} | "
                         f"{r['batching']['mean_requests_per_call']} (max "
                         f"{r['batching']['max_requests_per_call']}) |")
    lines += ["", "Throughput relative to torch, same run:", "",
              "| clients | " + " | ".join(f"{b} / torch" for b in backends if b != "torch")
              + " |", "|---|" + "---|" * (len(backends) - 1)]
    for c in levels:
        lines.append(f"| {c} | " + " | ".join(f"{report['ratios'][b][str(c)]}×"
                                              for b in backends if b != "torch") + " |")
    lines += ["", f"MOSI test metrics of the same model per backend (n = "
                  f"{report['metrics'][0]['n']}, `psamf.load_model` + `regression_metrics`):", "",
              "| backend | Acc-2 non0 | Acc-2 has0 | MAE | Corr | max abs score diff vs torch | "
              "non-0 clips whose side of 0 differs from torch's |", "|---|---|---|---|---|---|---|"]
    for m in report["metrics"]:
        lines.append(f"| {m['backend']} | {m['acc2_non0']} | {m['acc2_has0']} | {m['mae']} | "
                     f"{m['corr']} | {m.get('max_abs_diff_vs_torch')} | "
                     f"{m.get('sides_changed_vs_torch')} |")
    lines += ["", "## Goals", ""] + [f"- {g}" for g in report["goals"]] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")


def goals(report: dict) -> list[str]:
    out = []
    if "onnx-int8" in report["ratios"]:
        r = report["ratios"]["onnx-int8"]
        met = [c for c, v in r.items() if v is not None and v >= GOAL_SPEEDUP]
        out.append(f"onnx-int8 ≥ {GOAL_SPEEDUP:g}× torch throughput: "
                   f"{'met' if len(met) == len(r) else 'missed'} — "
                   + ", ".join(f"{v}× at {c} client{'s' * (c != '1')}" for c, v in r.items())
                   + (f" (met at {', '.join(met)})" if met and len(met) < len(r) else ""))
    metrics = {m["backend"]: m for m in report["metrics"]}
    if {"torch", "onnx-int8"} <= metrics.keys():
        diff = metrics["onnx-int8"]["acc2_non0"] - metrics["torch"]["acc2_non0"]
        mae = metrics["onnx-int8"]["mae"] - metrics["torch"]["mae"]
        out.append(f"onnx-int8 Acc-2 (non0) within {GOAL_ACC2_POINTS} point of torch: "
                   f"{'met' if abs(diff) <= GOAL_ACC2_POINTS else 'missed'} — int8 − torch = "
                   f"{diff:+.2f} points (MAE {mae:+.4f})")
    failed = sum(r["failed"] for b in report["load"] for r in b["levels"])
    total = sum(r["requests"] for b in report["load"] for r in b["levels"])
    out.append(f"zero failed requests: {'met' if failed == 0 else 'missed'} — {failed} of "
               f"{total} failed")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", type=Path, help="a folder from psamf export --onnx --int8")
    source.add_argument("--run", type=Path, help="a run folder: exported (--onnx --int8) first")
    ap.add_argument("--model-note", default="", help="what the model is, for the report")
    ap.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    ap.add_argument("--clients", nargs="+", type=int, default=[1, 8, 32])
    ap.add_argument("--requests", type=int, default=400, help="most requests per level")
    ap.add_argument("--seconds", type=float, default=20.0, help="most seconds per level")
    ap.add_argument("--warmup", type=int, default=10, help="requests before the first level")
    ap.add_argument("--threads", type=int, default=None,
                    help="OMP_NUM_THREADS for the server (default: the libraries' own choice)")
    ap.add_argument("--labels", type=Path, default=MOSI_LABELS, help="MOSI label.csv")
    ap.add_argument("--out", type=Path, default=HERE / "serve_load")
    args = ap.parse_args(argv)
    if args.seconds > 20 or args.requests < 1:
        ap.error("--seconds must be <= 20 and --requests >= 1 (the load is bounded)")
    texts, labels = mosi_test(args.labels)
    loadavg_start = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="psamf-serve-load-") as tmp:
        work = Path(tmp)
        model = args.model or export_model(args.run, work / "model")
        load = [load_backend(model, b, texts, args.clients, max_requests=args.requests,
                             max_seconds=args.seconds, warmup=args.warmup, work=work,
                             threads=args.threads) for b in args.backends]
        metrics = [mosi_metrics(model, b, texts, labels) for b in args.backends]
    parity(metrics, labels)
    rps = {b["backend"]: {r["clients"]: r["req_per_s"] for r in b["levels"]} for b in load}
    report = {
        "command": "PYTHONPATH=src python benchmarks/serve_load.py "
                   + shlex.join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared",
        "loadavg_start": loadavg_start, "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "model": str(args.model or args.run), "model_note": args.model_note,
        "levels": args.clients, "max_requests": args.requests, "max_seconds": args.seconds,
        "warmup": args.warmup, "server_threads": args.threads or "library default",
        "load": load, "metrics": metrics,
        "ratios": {b: {str(c): ratio(rps[b][c], rps["torch"][c]) for c in args.clients}
                   for b in rps if b != "torch" and "torch" in rps},
    }
    report["goals"] = goals(report)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n",
                                             encoding="utf-8")
    write_markdown(report, args.out.with_suffix(".md"))
    print("\n".join(report["goals"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
