"""benchmarks/serve_load.py's server and client against a real ``psamf serve --backend onnx-int8``
of a tiny exported run: a small bounded load, no failures, stats that add up."""

from __future__ import annotations

import pytest
from export_fixtures import tiny_trained_run

from benchmarks.serve_load import Server, batching_delta, drive
from psamf.cli import main

pytest.importorskip("fastapi", reason="psamf serve needs the serve extra: pip install psamf[serve]")
pytest.importorskip("onnxruntime", reason="the int8 backend needs the serve extra")

TEXTS = ["what a wonderful film", "dull and far too long", "it was fine i guess"]


def test_bounded_load_on_the_int8_backend(tmp_path):
    run = tiny_trained_run(tmp_path)
    model = tmp_path / "model"
    assert main(["export", str(run), "--out", str(model), "--onnx", "--int8"]) == 0
    server = Server(model, "onnx-int8", tmp_path / "serve.log", threads=1)
    try:
        before = server.batching()
        result = drive(server.port, TEXTS, 4, max_requests=20, max_seconds=60)
        batching = batching_delta(before, server.batching())
    finally:
        status = server.stop()
    stats = result.summary()
    assert stats["requests"] == 20 and stats["failed"] == 0, result.statuses
    assert stats["statuses"] == {"200": 20}
    assert len(result.latencies_ms) == 20
    assert 0 < stats["p50_ms"] <= stats["p99_ms"] <= result.wall_s * 1000
    assert stats["req_per_s"] == pytest.approx(20 / result.wall_s, rel=0.01)
    # every request went through the micro-batcher; 4 clients never share a call of more than 4
    assert batching["requests"] == batching["texts"] == 20
    assert 5 <= batching["model_calls"] <= 20 and 1 <= batching["max_requests_per_call"] <= 4
    assert sum(int(k) * v for k, v in batching["calls_by_requests"].items()) == 20
    assert status == 0  # SIGTERM: a clean stop


def test_the_load_stops_at_its_time_bound(tmp_path):
    """A level ends at max_seconds even with requests left: nothing listens, so every request
    fails fast, and the failures are counted, not raised."""
    from benchmarks.serve_load import free_port

    result = drive(free_port(), TEXTS, 2, max_requests=10**9, max_seconds=0.5, timeout_s=1)
    assert 0.4 < result.wall_s < 5
    assert result.failed == result.requests > 0 and not result.latencies_ms
    assert all(k.startswith("error:") for k in result.statuses)
