"""The statistics that benchmarks/RESULTS.md is generated with (benchmarks/make_results.py)."""

from __future__ import annotations

import pytest
from scipy import stats

from benchmarks import make_results, real_data
from benchmarks import stats as bench_stats


def _runs(values: dict[int, tuple[float, float]]) -> dict[int, dict]:
    """Result-file stand-ins: seed -> test metrics (MAE, Acc-2 non0)."""
    return {seed: {"test": {"mae": mae, "acc2_non0": acc}} for seed, (mae, acc) in values.items()}


def test_paired_p_is_the_paired_t_test_over_common_seeds() -> None:
    variant = _runs({1: (0.80, 82.0), 2: (0.84, 80.5), 3: (0.79, 83.1), 4: (0.90, 79.0)})
    full = _runs({1: (0.78, 83.0), 2: (0.81, 81.0), 3: (0.80, 82.9), 5: (0.70, 85.0)})
    deltas = bench_stats.paired_deltas(variant, full, "mae")
    assert deltas == pytest.approx([0.02, 0.03, -0.01])  # seeds 4 and 5 are unpaired
    expected = stats.ttest_rel([0.80, 0.84, 0.79], [0.78, 0.81, 0.80]).pvalue
    assert bench_stats.paired_p(deltas) == f"{expected:.2f}"


@pytest.mark.parametrize("deltas", [[0.01], [0.02, 0.02, 0.02]])
def test_paired_p_is_undefined_for_one_seed_or_no_spread(deltas: list[float]) -> None:
    assert bench_stats.paired_p(deltas) == "–"


def test_goal_table_says_by_how_much_a_goal_is_missed() -> None:
    psamf = _runs({1: (0.76, 84.0), 2: (0.74, 85.0)})  # mean MAE 0.75, Acc-2 84.5
    text = _runs({1: (0.79, 83.0), 2: (0.80, 83.2)})
    lines = make_results.goals_section({"mosi-minilm/psamf": psamf,
                                        "mosi-minilm/text-finetune": text})
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines if line.startswith("| ")}
    assert "missed by 0.50 (provisional: 2 of 5 seeds)" in rows[
        "PSA-MF (MiniLM): test Acc-2 non0 ≥ 85.00"]
    assert "missed by 0.010" in rows["PSA-MF (MiniLM): test MAE ≤ 0.740"]
    # MAE gain 0.045 against a max std of 0.014: met; MPNet has no runs.
    assert rows["PSA-MF (MiniLM) ahead of text-only by more than one std (MAE)"].endswith(
        "| met |")
    assert "not run yet" in rows["PSA-MF (MPNet): test MAE ≤ 0.680"]


def _with_valid(runs: dict[int, dict], valid_mae: float) -> dict[int, dict]:
    return {seed: {**run, "valid": {"mae": valid_mae}} for seed, run in runs.items()}


def test_goals_add_the_set_up_chosen_on_validation_never_on_test() -> None:
    six = _with_valid(_runs({1: (0.70, 86.0), 2: (0.69, 86.2), 3: (0.70, 86.1)}), 0.67)
    ten_worse_on_test = _runs({1: (0.71, 85.0), 2: (0.72, 85.1), 3: (0.73, 85.2)})
    candidates = real_data.GROUPS["mosi-mpnet"].goal.candidates
    partial = {"mosi-mpnet/psamf": six,
               "mosi-mpnet-10ep/psamf": _with_valid({1: ten_worse_on_test[1]}, 0.60)}
    assert make_results.goal_choice(candidates, partial)[0] == 0  # 1 of 3 seeds: waits
    # A lower validation MAE picks the 10-epoch budget although its test figures are worse.
    full = {"mosi-mpnet/psamf": six,
            "mosi-mpnet-10ep/psamf": _with_valid(ten_worse_on_test, 0.65)}
    chosen, how = make_results.goal_choice(candidates, full)
    assert chosen == 1 and "0.650" in how and "0.670" in how
    rows = "\n".join(make_results.goals_section(full))
    assert "| PSA-MF (MPNet): test MAE ≤ 0.680 | 0.697 (3 seeds) | missed by 0.017 |" in rows
    assert ("| PSA-MF (MPNet, 10 epochs) [chosen on validation]: test MAE ≤ 0.680 | "
            "0.720 (3 seeds) | missed by 0.040 |") in rows
    full["mosi-mpnet-10ep/psamf"] = _with_valid(ten_worse_on_test, 0.68)
    assert make_results.goal_choice(candidates, full)[0] == 0
    assert "[chosen on validation]" not in "\n".join(make_results.goals_section(full))


def test_figures_are_drawn_from_the_result_histories(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(make_results.make_figures, "FIGURES", tmp_path / "figures")
    monkeypatch.setattr(make_results, "OUT", tmp_path / "RESULTS.md")

    def run(maes: list[float], acc: float) -> dict:
        best = maes.index(min(maes)) + 1
        return {"test": {"mae": min(maes), "acc2_non0": acc}, "best_epoch": best,
                "history": [{"epoch": i + 1, "valid": {"mae": m}} for i, m in enumerate(maes)]}

    results = {"mosi-minilm/psamf": {1: run([1.1, 0.9, 0.85], 82.0), 2: run([1.0, 0.8], 83.0)},
               "mosi-minilm/text-finetune": {1: run([0.9, 0.82], 83.0)},
               "ablation/no-prefusion": {1: run([1.0, 0.95], 81.0), 3: run([0.9], 80.0)}}
    curves = make_results.curves_figure(results)
    deltas = make_results.deltas_figure(results)
    assert "![validation MAE by epoch](figures/valid_mae_by_epoch.png)" in curves
    assert any("(figures/ablation_deltas.png)" in line for line in deltas)
    for name in ("valid_mae_by_epoch.png", "ablation_deltas.png"):
        assert (tmp_path / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Nothing to draw: no figure and no dangling link.
    assert make_results.deltas_figure({"mosi-minilm/psamf": results["mosi-minilm/psamf"]}) == []


def test_a_nan_metric_gives_a_nan_mean_not_a_crash() -> None:
    # Corr is NaN for a seed whose predictions were constant; statistics.stdev raises on it.
    mean, std = bench_stats.mean_std([0.7, float("nan")])
    assert mean != mean and std != std
    assert bench_stats.fmt_ms("corr", [0.7, float("nan")]) == "–"
    assert bench_stats.paired_p([0.01, float("nan"), 0.02]) == "–"


def test_ahead_by_more_than_one_std_compares_the_same_seeds() -> None:
    psamf = _runs({1: (0.70, 85.0), 2: (0.72, 84.0), 3: (0.95, 70.0)})  # seed 3 has no pair
    text = _runs({1: (0.80, 83.0), 2: (0.82, 82.0)})
    gain, spread = bench_stats.gain_and_spread(psamf, text, "mae")
    assert gain == pytest.approx(0.10)  # not 0.81 - 0.79 over unequal seed sets
    assert spread == pytest.approx(0.0141421, rel=1e-4)


def test_a_budget_with_no_finished_run_is_estimated_from_one_differing_only_in_epochs() -> None:
    walls = {"mosi-mpnet": [1800.0, 2400.0, 2100.0], "mosi-minilm": [600.0]}
    # mosi-mpnet-10ep is mosi-mpnet with epochs=10 instead of 6.
    budgets = real_data.BUDGETS
    per_run, source = make_results._expected_wall(budgets["mosi-mpnet-10ep"], walls)
    assert per_run == pytest.approx(2100.0 * 10 / 6) and "mosi-mpnet" in source
    assert make_results._expected_wall(budgets["mosi-minilm"], walls) == (600.0, "")
    assert make_results._expected_wall(budgets["mosei-minilm"], walls) == (None, "")
    # The lr 1e-4 budget differs from mosi-minilm in more than epochs: not scaled from it.
    assert make_results._expected_wall(budgets["mosi-minilm-lr1e-4"], walls) == (None, "")


def test_deltas_over_fewer_seeds_show_the_reference_over_those_seeds() -> None:
    full = _runs({1: (0.78, 83.0), 2: (0.85, 80.0), 3: (0.84, 80.0), 4: (0.78, 84.0),
                  5: (0.81, 82.0)})
    variant = _runs({1: (0.77, 83.0), 2: (0.80, 82.0), 3: (0.80, 82.0)})
    results = {"mosi-minilm/psamf": full, "design/fusion-layer-fresh": variant}
    for runs in results.values():
        for run in runs.values():
            run["test"].update(corr=0.7, f1_non0=80.0, acc2_has0=80.0, acc7=40.0)
    lines = make_results.delta_section(real_data.GROUPS["design"], results)
    subset = [line for line in lines if line.startswith("| full PSA-MF (absolute, seeds 1,2,3)")]
    assert len(subset) == 1 and "| 0.823 ± 0.038 |" in subset[0]


def _p_run(identity: str | None, *, encoder: str | None = "artifacts/personality-minilm",
           source: str | None = None) -> dict:
    """A result-file stand-in holding only what the identity table reads."""
    run = {"personality_encoder": encoder, "personality_identity": identity}
    if source is not None:
        run["personality_identity_source"] = source
    return run


def test_identity_table_names_each_experiments_p_and_marks_backfilled_seeds() -> None:
    lines = make_results.identity_section({
        "mosi-minilm/psamf": {1: _p_run("sha-a:mean:128", source="backfilled"),
                              2: _p_run("sha-a:mean:128")},
        "mosi-minilm/text-finetune": {1: _p_run(None, encoder=None, source="none")},
    })
    rows = {line.split(" | ")[0].lstrip("| "): line for line in lines if line.startswith("| ")}
    assert "`sha-a:mean:128` (seeds 1*,2)" in rows["mosi-minilm/psamf"]
    assert "no P (seeds 1)" in rows["mosi-minilm/text-finetune"]
    assert not any("Warning" in line for line in lines)


def test_identity_table_warns_about_unknown_and_mixed_p() -> None:
    lines = make_results.identity_section({
        "mosi-minilm/psamf": {1: _p_run(None), 2: _p_run("sha-a:mean:128")},
    })
    text = "\n".join(lines)
    assert "P of unknown identity** (the run did not record it" in text
    assert "`mosi-minilm/psamf` seed 1" in text
    assert "seeds of one experiment used different P**: `mosi-minilm/psamf`" in text


def test_every_committed_result_states_its_personality_identity() -> None:
    """A P-using result names its P (recorded or backfilled with evidence); a result without P
    says so with an explicit null."""
    for path in sorted(make_results.RESULTS.glob("*/*/seed-*.json")):
        run = make_results.json.loads(path.read_text(encoding="utf-8"))
        assert "personality_identity" in run, path
        if run.get("personality_encoder") is None:
            assert run["personality_identity"] is None, path
        else:
            assert run["personality_identity"], path
            if run.get("personality_identity_source") == "backfilled":
                assert run.get("personality_identity_note"), path
