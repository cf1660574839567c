"""psamf.metrics against small cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import pearsonr

from psamf.metrics import (
    SENTIMENT_KEYS,
    format_metrics,
    personality_metrics,
    regression_metrics,
)


def test_hand_worked_example():
    # p = [2.6, -0.4, 0.0, 1.4], t = [3.0, -1.0, 0.5, 0.0]
    # |p - t| = 0.4, 0.6, 0.5, 1.4 -> MAE 2.9 / 4 = 0.725
    # acc7: round -> p [3, -0, 0, 1], t [3, -1, 0 (0.5 half-to-even), 0] -> 2/4 equal = 50 %
    # acc5: clip to ±2 first -> p [2, -0, 0, 1], t [2, -1, 0, 0] -> 2/4 = 50 %
    # has0: t>=0 [T,F,T,T], p>=0 [T,F,T,T] -> 100 %, weighted F1 100 %
    # non0: drop t=0 (index 3): t>0 [T,F,T], p>0 [T,F,F] -> acc 2/3; F1 per class 2/3 and 2/3
    m = regression_metrics([2.6, -0.4, 0.0, 1.4], [3.0, -1.0, 0.5, 0.0])
    assert tuple(m) == SENTIMENT_KEYS
    assert m["mae"] == pytest.approx(0.725)
    assert m["acc7"] == pytest.approx(50.0)
    assert m["acc5"] == pytest.approx(50.0)
    assert m["acc2_has0"] == pytest.approx(100.0)
    assert m["f1_has0"] == pytest.approx(100.0)
    assert m["acc2_non0"] == pytest.approx(200 / 3)
    assert m["f1_non0"] == pytest.approx(200 / 3)
    assert m["corr"] == pytest.approx(pearsonr([2.6, -0.4, 0.0, 1.4], [3.0, -1.0, 0.5, 0.0])[0])


def test_weighted_f1_uses_truth_supports():
    # truth t>0 = [T,T,T,T,F,F], pred p>0 = [T,T,T,F,F,F]: tp=3, tn=2, fp=0, fn=1
    # F1(T) = 6/7, F1(F) = 4/5; weighted by truth supports (4, 2): (4*6/7 + 2*4/5)/6 = 176/210.
    # Swapping the argument order would weight by prediction supports (3, 3): 58/70 instead.
    t = [1.0, 2.0, 0.5, 1.5, -1.0, -2.0]
    p = [1.0, 1.0, 1.0, -1.0, -1.0, -1.0]
    m = regression_metrics(p, t)
    assert m["f1_non0"] == pytest.approx(100 * 176 / 210)
    assert m["f1_has0"] == pytest.approx(100 * 176 / 210)
    assert m["acc2_non0"] == pytest.approx(100 * 5 / 6)


def test_half_to_even_rounding_and_clipping():
    # numpy rounds 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0, -2.5 -> -2 (half to even).
    labels = [0.5, 1.5, 2.5, -0.5, -2.5]
    preds = [0.0, 2.0, 2.0, 0.0, -2.0]
    m = regression_metrics(preds, labels)
    assert m["acc7"] == pytest.approx(100.0)
    assert m["acc5"] == pytest.approx(100.0)
    # Half away from zero would have made every one of these a miss.
    assert regression_metrics([1.0, 3.0], [0.5, 2.5])["acc7"] == pytest.approx(0.0)
    # 2.9 vs 2.1: different 7-class bins (3 vs 2) but the same 5-class bin after clipping to 2.
    m = regression_metrics([2.9, -3.7], [2.1, -2.6])
    assert m["acc7"] == pytest.approx(50.0)  # -3.7 clips to -3, -2.6 rounds to -3
    assert m["acc5"] == pytest.approx(100.0)


def test_all_labels_zero_gives_nan_non0_with_warning():
    with pytest.warns(RuntimeWarning, match="undefined") as caught:
        m = regression_metrics([0.3, -0.2, 0.1], [0.0, 0.0, 0.0])
    assert any("non0" in str(w.message) for w in caught)
    assert math.isnan(m["acc2_non0"]) and math.isnan(m["f1_non0"])
    assert math.isnan(m["corr"])  # constant labels
    # has0: truth all non-negative; preds [T, F, T] -> 2/3
    assert m["acc2_has0"] == pytest.approx(200 / 3)


def test_one_sample_and_constant_predictions():
    with pytest.warns(RuntimeWarning, match="corr"):
        m = regression_metrics([1.2], [1.0])
    assert m["mae"] == pytest.approx(0.2)
    assert m["acc7"] == pytest.approx(100.0)
    assert math.isnan(m["corr"])
    with pytest.warns(RuntimeWarning, match="constant"):
        m = regression_metrics([0.5, 0.5, 0.5, 0.5], [-1.0, 1.0, 2.0, -2.0])
    assert math.isnan(m["corr"])
    assert m["acc2_non0"] == pytest.approx(50.0)
    assert not any(math.isnan(v) for k, v in m.items() if k != "corr")


@pytest.mark.parametrize(
    ("preds", "labels", "match"),
    [
        ([1.0, 2.0], [1.0], "differ in length"),
        ([[1.0, 2.0]], [[1.0, 2.0]], "1-D"),
        ([], [], "empty"),
        ([1.0, float("nan")], [1.0, 2.0], "preds has 1 non-finite"),
        ([1.0, 2.0], [float("inf"), 2.0], "labels has 1 non-finite"),
    ],
)
def test_invalid_inputs_raise(preds, labels, match):
    with pytest.raises(ValueError, match=match):
        regression_metrics(preds, labels)


def test_personality_metrics_by_hand():
    traits = ("openness", "neuroticism")
    y = np.array([[0.2, 0.5], [0.4, 0.7], [0.6, 0.9]])
    p = np.array([[0.3, 0.5], [0.4, 0.6], [0.5, 0.9]])
    # openness: |err| = .1, 0, .1 -> acc 1 - 0.2/3; SSE = .02, SST = .08 -> R2 = 0.75
    # neuroticism: |err| = 0, .1, 0 -> acc 1 - 0.1/3; SSE = .01, SST = .08 -> R2 = 0.875
    m = personality_metrics(p, y, traits)
    assert set(m) == {"acc_openness", "r2_openness", "acc_neuroticism", "r2_neuroticism",
                      "acc_mean", "r2_mean"}
    assert m["acc_openness"] == pytest.approx(1 - 0.2 / 3)
    assert m["r2_openness"] == pytest.approx(0.75)
    assert m["r2_neuroticism"] == pytest.approx(0.875)
    assert m["acc_mean"] == pytest.approx(1 - 0.15 / 3)
    assert m["r2_mean"] == pytest.approx(0.8125)


def test_personality_metrics_errors_and_constant_targets():
    with pytest.raises(ValueError, match="trait names"):
        personality_metrics(np.zeros((3, 2)), np.zeros((3, 2)), ("openness",))
    with pytest.raises(ValueError, match=r"\(N, n_traits\)"):
        personality_metrics(np.zeros((3, 2)), np.zeros((3, 3)), ("a", "b"))
    with pytest.warns(RuntimeWarning, match="constant"):
        m = personality_metrics(np.full((2, 1), 0.4), np.full((2, 1), 0.5), ("a",))
    assert m["acc_a"] == pytest.approx(0.9)
    assert math.isnan(m["r2_a"])


def test_format_metrics_rounds_only_for_display():
    m = {"mae": 0.123456, "corr": float("nan")}
    assert format_metrics(m, digits=3) == "mae=0.123  corr=nan"
    assert m["mae"] == 0.123456
