"""The benchmarks' one step-timing harness (benchmarks/step_time.py), which step_time.py's model
comparison and precision.py's variants both use: interleaved rounds, per-round paired ratios."""

from __future__ import annotations

import argparse
import math
import statistics

import pytest
import torch
from training_fixtures import tiny_encoder

from benchmarks.step_time import (
    Contestant,
    adam,
    build,
    inputs_for,
    rotations,
    synthetic_batch,
    time_contestants,
)

SHAPE = argparse.Namespace(batch=4, tokens=16, audio_dim=5)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def contestants(tmp_path_factory) -> list[Contestant]:
    encoder = tiny_encoder(tmp_path_factory.mktemp("encoder"))
    out = []
    for name, model_type, precision in [("text_finetune", "text_finetune", "fp32"),
                                        ("psamf", "psamf", "fp32"),
                                        ("psamf-bf16", "psamf", "bf16")]:
        config, model = build(encoder, SHAPE, CPU, model_type)
        inputs = inputs_for(config, synthetic_batch(model, SHAPE, CPU))
        out.append(Contestant(name, model, inputs, adam(model), precision=precision,
                              clip_norm=1.0 if model_type == "psamf" else None))
    return out


def test_rounds_rotate_so_every_contestant_takes_every_slot():
    assert rotations(["a", "b", "c"], 4) == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"],
                                              ["a", "b", "c"]]


def test_timing_reports_every_contestant_with_per_round_paired_ratios(contestants):
    repeats = 3
    result = time_contestants(contestants, reference="text_finetune", repeats=repeats, warmup=1,
                              device=CPU, label="tiny")
    assert result["reference"] == "text_finetune"
    assert len(result["load_average_per_round"]) == repeats
    timed = result["contestants"]
    assert list(timed) == ["text_finetune", "psamf", "psamf-bf16"]
    ref = timed["text_finetune"]["times_s"]
    for t in timed.values():
        times = t["times_s"]
        assert len(times) == repeats and all(s > 0 for s in times)
        assert t["median_s"] == statistics.median(times) and t["min_s"] == min(times)
        # One ratio per round, each against the reference's step of that same round.
        assert t["paired_ratios"] == [a / b for a, b in zip(times, ref, strict=True)]
        assert t["ratio_to_reference"] == statistics.median(t["paired_ratios"])
        assert t["ratio_of_medians"] == pytest.approx(t["median_s"] / statistics.median(ref))
        assert t["ratio_of_minima"] == pytest.approx(t["min_s"] / min(ref))
        assert t["first_step_s"] > 0
        assert math.isfinite(t["first_loss"]) and math.isfinite(t["last_loss"])
    assert timed["text_finetune"]["paired_ratios"] == [1.0] * repeats
    # The contestants trained: warm-up + rounds moved the weights, so the loss changed.
    assert timed["psamf"]["last_loss"] != timed["psamf"]["first_loss"]


def test_a_missing_reference_is_refused(contestants):
    with pytest.raises(ValueError, match="fp32"):
        time_contestants(contestants, reference="fp32", repeats=1, warmup=0, device=CPU)
