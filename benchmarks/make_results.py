"""Generate ``benchmarks/RESULTS.md`` from the JSON result files (never edit RESULTS.md by hand).

Reads ``benchmarks/results/<group>/<name>/seed-<k>.json`` (written by ``real_data.py``) and
``benchmarks/results/speed/*.json`` (written by ``speed.py``); the queue in ``real_data.py`` says
what is still pending.

    .venv/bin/python -m benchmarks.make_results
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import make_figures, real_data
from benchmarks.real_data import EXPERIMENTS, FULL, GROUPS, Group, members
from benchmarks.stats import (
    LOWER_IS_BETTER,
    METRICS,
    fmt,
    fmt_ms,
    gain_and_spread,
    mean_std,
    paired_deltas,
    paired_p,
    seeds_text,
    table,
)
from psamf.io import write_text
from psamf.models.config import PSAMFConfig
from psamf.training.config import TrainConfig

ROOT = real_data.ROOT
RESULTS = real_data.RESULTS
OUT = ROOT / "benchmarks" / "RESULTS.md"
MAIN_GROUPS = sorted((g for g in GROUPS.values() if g.main is not None), key=lambda g: g.main)


def load_results() -> dict[str, dict[int, dict[str, Any]]]:
    """{experiment key: {seed: result}} for every result file on disk."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for path in sorted(RESULTS.glob("*/*/seed-*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        out.setdefault(data["experiment"], {})[int(data["seed"])] = data
    return out


def load_speed() -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((RESULTS / "speed").glob("*.json"))]


# --- sections -------------------------------------------------------------------------------------


def metric_row(label: str, runs: dict[int, dict[str, Any]]) -> list[str]:
    return [label, f"{len(runs)} ({seeds_text(list(runs))})",
            *(fmt_ms(k, [r["test"][k] for r in runs.values()]) for k, _ in METRICS),
            fmt_ms("mae", [r["valid"]["mae"] for r in runs.values()])]


P_NOTE = ("p = two-sided paired t-test of the per-seed Δ against 0; with 2–5 seeds only large, "
          "consistent effects reach p < 0.05.")


def comparison_section(group: Group, results: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    exps = members(group.name)
    lines = [f"### {group.title}", ""]
    budget = " ".join(exps[0].budget.args())  # one per group (checked by real_data)
    lines.append(f"Budget (the same for every row): `{budget}`; seeds as listed.")
    lines.append("")
    rows = [metric_row(e.label, results.get(e.key, {})) for e in exps]
    for exp in exps:
        if exp.baseline is None or exp.baseline not in results or exp.key not in results:
            continue
        runs, base = results[exp.key], results[exp.baseline]
        common = sorted(set(runs) & set(base))
        if not common:
            continue
        rows.append([f"Δ {exp.label} − {real_data.experiment(exp.baseline).label} "
                     f"(paired by seed)", f"{len(common)} ({seeds_text(common)})",
                     *(fmt_ms(k, paired_deltas(runs, base, k), signed=True)
                       for k, _ in METRICS),
                     fmt_ms("mae", [runs[s]["valid"]["mae"] - base[s]["valid"]["mae"]
                                    for s in common], signed=True)])
    lines += table(["model", "seeds", *(f"test {name}" for _, name in METRICS),
                    "valid MAE (selection)"], rows)
    lines.append("")
    lines += epoch_lines(exps, results)
    lines += verdict_lines(group.name, results)
    return lines


def epoch_lines(exps: Sequence[real_data.Experiment],
                results: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """Best epoch per seed: a best epoch at the budget's last epoch means it was still learning."""
    parts = []
    for exp in exps:
        runs = results.get(exp.key, {})
        if runs:
            best = ", ".join(f"{r['best_epoch']}/{r['epochs_run']}" for _, r in
                             sorted(runs.items()))
            parts.append(f"{exp.label}: {best}")
    if not parts:
        return []
    return ["Best epoch / epochs run, by seed: " + "; ".join(parts) + ".", ""]


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def config_drift(results: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """Experiments whose seeds ran with different resolved configs (code changed in between)."""
    ignore = {"seeds", "progress", "cache_dir"}
    # A field added after a run was made (e.g. personality_pooling) has its default in that run.
    defaults = _flat({**TrainConfig(model=PSAMFConfig()).to_dict(),
                      "model": PSAMFConfig().to_dict()})
    out = []
    for key, runs in sorted(results.items()):
        flats = [{**defaults, **_flat(r.get("config", {}))} for r in runs.values()]
        keys = sorted({k for f in flats for k in f if k not in ignore
                       and len({repr(g.get(k)) for g in flats}) > 1})
        if keys:
            out.append(f"- `{key}`: seeds differ in {', '.join(f'`{k}`' for k in keys)}")
    if out:
        out = ["Resolved configs that differ between the seeds of one experiment (the code "
               "changed between runs; each result file holds its full config):", "", *out, ""]
    return out


def dirty_runs(results: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """Runs that started from uncommitted changes under src/ (``+dirty``): their exact code is
    not in git, only their resolved config is."""
    dirty = [f"`{key}` seed {seed}" for key, runs in sorted(results.items())
             for seed, run in sorted(runs.items())
             if any(c.endswith("+dirty") for c in run.get("git_commits", []))]
    if not dirty:
        return []
    return ["Runs that started (or resumed) with uncommitted changes under `src/` (their commit "
            "is marked `+dirty`; the result file still holds the full resolved config): "
            + ", ".join(dirty) + ".", ""]


def verdict_lines(group: str, results: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """PSA-MF vs baseline: is the difference of means larger than both spreads?"""
    out: list[str] = []
    for exp in EXPERIMENTS:
        if exp.group != group or exp.baseline is None:
            continue
        runs, base = results.get(exp.key, {}), results.get(exp.baseline, {})
        common = sorted(set(runs) & set(base))
        if len(common) < 2:
            continue
        for key, name in (("mae", "MAE"), ("acc2_non0", "Acc-2 non0"), ("f1_non0", "F1 non0")):
            gain, spread = gain_and_spread(runs, base, key)
            word = "ahead" if gain > 0 else "behind"
            beyond = "more" if abs(gain) > spread else "less"
            out.append(f"- {name}: {exp.label} is {word} by {fmt(key, abs(gain))} "
                       f"({beyond} than one std, max std {fmt(key, spread)}; "
                       f"seeds {seeds_text(common)}; paired p "
                       f"{paired_p(paired_deltas(runs, base, key))}).")
    if out:
        out += ["", P_NOTE, ""]
    return out


def goal_choice(candidates: Sequence[tuple[str, str, str]],
                results: dict[str, dict[int, dict[str, Any]]]) -> tuple[int, str]:
    """Which candidate set-up is chosen on validation (index), and a line saying how.

    Never on test: once every candidate's PSA-MF has all its planned seeds, the one with the
    lowest mean validation MAE over the seeds they share; the first (as specified) until then."""
    def complete(key: str) -> bool:
        return set(real_data.experiment(key).seeds) <= set(results.get(key, {}))

    keys = [psamf for psamf, _, _ in candidates]
    if len(keys) == 1:
        return 0, ""
    waiting = [k for k in keys if not complete(k)]
    if waiting:
        return 0, ("the set-up chosen on validation among " + ", ".join(f"`{k}`" for k in keys)
                   + " is read once " + ", ".join(f"`{k}`" for k in waiting)
                   + " has all its seeds")
    common = sorted(set.intersection(*(set(results[k]) for k in keys)))
    valid = [mean_std([results[k][s]["valid"]["mae"] for s in common])[0] for k in keys]
    best = min(range(len(keys)), key=lambda i: valid[i])
    scores = ", ".join(f"`{k}` {v:.3f}" for k, v in zip(keys, valid, strict=True))
    return best, (f"chosen on validation: `{keys[best]}`, the lowest mean PSA-MF validation MAE "
                  f"over seeds {seeds_text(common)} ({scores}); the test split played no part")


def goal_rows(psamf: str, text_only: str, label: str, targets: Sequence[tuple[str, float]],
              results: dict[str, dict[int, dict[str, Any]]]) -> list[list[str]]:
    names = dict(METRICS)
    exp = real_data.experiment(psamf)
    runs, base = results.get(psamf, {}), results.get(text_only, {})
    rows = []
    for metric, target in targets:
        goal = (f"{label}: test {names[metric]} "
                f"{'≤' if metric in LOWER_IS_BETTER else '≥'} {fmt(metric, target)}")
        if not runs:
            rows.append([goal, "–", "not run yet"])
            continue
        mean, _ = mean_std([r["test"][metric] for r in runs.values()])
        short = (mean - target) if metric in LOWER_IS_BETTER else (target - mean)
        status = "met" if short <= 0 else f"missed by {fmt(metric, short)}"
        if len(runs) < len(exp.seeds):
            status += f" (provisional: {len(runs)} of {len(exp.seeds)} seeds)"
        seeds = f"{len(runs)} seed{'s' if len(runs) > 1 else ''}"
        rows.append([goal, f"{fmt(metric, mean)} ({seeds})", status])
    for metric in ("mae", "acc2_non0"):
        goal = f"{label} ahead of text-only by more than one std ({names[metric]})"
        common = sorted(set(runs) & set(base))
        if len(common) < 2:
            rows.append([goal, "–", "not run yet (needs 2+ seeds of both)"])
            continue
        gain, spread = gain_and_spread(runs, base, metric)
        status = "met" if gain > spread else f"missed by {fmt(metric, spread - gain)}"
        measured = (f"gain {fmt(metric, gain, signed=True)}, max std {fmt(metric, spread)} "
                    f"(seeds {seeds_text(common)})")
        rows.append([goal, measured, status])
    return rows


def goals_section(results: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """Each goal against the measured mean (met, or missed by how much), for PSA-MF as specified
    and, where validation prefers another declared set-up, for that one too."""
    rows, notes = [], []
    for goal in (g.goal for g in GROUPS.values() if g.goal):
        encoder, candidates, targets = goal.encoder, goal.candidates, goal.targets
        rows += goal_rows(*candidates[0], targets, results)
        chosen, how = goal_choice(candidates, results)
        if chosen:
            psamf, text_only, label = candidates[chosen]
            rows += goal_rows(psamf, text_only, f"{label} [chosen on validation]", targets,
                              results)
        if how:
            notes.append(f"- {encoder}: {how}.")
    lines = ["## Goals", "",
             "The goals set for these benchmarks, against what the result files hold: PSA-MF as "
             "specified, and the set-up chosen on validation where it differs. What was tried "
             "towards them, on validation only: [explorations.md](explorations.md).", ""]
    lines += table(["goal", "measured (mean)", "status"], rows)
    lines += ["", *notes, ""] if notes else [""]
    return lines


def delta_section(group: Group, results: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """Each variant's paired deltas from full PSA-MF, over the seeds it shares with it."""
    exps = members(group.name)
    full = results.get(FULL, {})
    lines = [f"### {group.title}", "", group.intro, ""]
    keys = ("mae", "corr", "acc2_non0", "f1_non0", "acc2_has0", "acc7")
    names = dict(METRICS)
    rows = [["full PSA-MF (absolute)", f"{len(full)} ({seeds_text(list(full))})",
             *(fmt_ms(k, [r["test"][k] for r in full.values()]) for k in keys), "", "", ""]]
    # The reference over the fewer seeds some variants share with it: a Δ over seeds 1-3 is
    # measured from full PSA-MF's mean over 1-3, which can sit far from its 5-seed mean.
    subsets = sorted({tuple(sorted(set(results.get(e.key, {})) & set(full))) for e in exps}
                     - {(), tuple(sorted(full))})
    for seeds in subsets:
        rows.append([f"full PSA-MF (absolute, seeds {seeds_text(seeds)})",
                     f"{len(seeds)} ({seeds_text(seeds)})",
                     *(fmt_ms(k, [full[s]["test"][k] for s in seeds]) for k in keys), "", "", ""])
    for exp in exps:
        runs = results.get(exp.key, {})
        common = sorted(set(runs) & set(full))
        if not common:
            rows.append([exp.label, "0", *("–" for _ in keys), "–", "–", exp.notes])
            continue
        rows.append([exp.label, f"{len(common)} ({seeds_text(common)})",
                     *(fmt_ms(k, paired_deltas(runs, full, k), signed=True) for k in keys),
                     paired_p(paired_deltas(runs, full, "mae")),
                     paired_p(paired_deltas(runs, full, "acc2_non0")), exp.notes])
    lines += table(["variant", "paired seeds", *(f"Δ {names[k]}" for k in keys),
                    "p (Δ MAE)", "p (Δ Acc-2 non0)", "note"], rows)
    lines.append("")
    lines.append("Δ = variant − full PSA-MF on the same seed (mean ± std over seeds); "
                 "lower MAE is better, higher is better for the rest. " + P_NOTE)
    lines.append("")
    return lines


def curves_figure(results: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """Validation MAE by epoch for the main comparisons, drawn from each run's history."""
    panels = []
    for group in MAIN_GROUPS:
        models = {
            exp.label: {seed: ([h["valid"]["mae"] for h in run["history"]], run["best_epoch"])
                        for seed, run in sorted(results[exp.key].items())}
            for exp in members(group.name) if results.get(exp.key)}
        if models:
            panels.append((group.title.split(" (")[0], models))
    if not panels:
        return []
    path = make_figures.validation_curves(make_figures.FIGURES / "valid_mae_by_epoch.png",
                                          panels)
    return ["Validation MAE by epoch, one line per seed; a star marks the epoch each seed's "
            "test figures come from:", "",
            f"![validation MAE by epoch]({path.relative_to(OUT.parent).as_posix()})", ""]


def deltas_figure(results: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """Per-seed paired deltas from full PSA-MF for every ablation and design variant run."""
    full = results.get(FULL, {})
    variants = [e for e in EXPERIMENTS if e.group in ("ablation", "design")
                and set(results.get(e.key, {})) & set(full)]
    if not variants:
        return []
    names = dict(METRICS)
    metrics = [(f"Δ {names[k]} (variant − full PSA-MF)",
                {e.key: paired_deltas(results[e.key], full, k) for e in variants})
               for k in ("mae", "acc2_non0")]
    path = make_figures.paired_deltas(make_figures.FIGURES / "ablation_deltas.png", metrics)
    return ["Each seed's Δ (grey dot) and mean ± std over seeds (black): a dashed line at 0 "
            "means no change; lower MAE and higher Acc-2 are better.", "",
            f"![paired deltas of ablations and design choices]"
            f"({path.relative_to(OUT.parent).as_posix()})", ""]


def per_seed_section(results: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    lines = ["## Per-seed runs", "",
             "Best epoch = the epoch whose validation MAE was lowest (its weights are the ones "
             "tested). Wall time covers the whole `psamf train` process (data, personality "
             "cache, training, validation, test), summed over resumed attempts.", ""]
    rows = []
    for exp in EXPERIMENTS:
        for seed, r in sorted(results.get(exp.key, {}).items()):
            p = r.get("personality_encoder")
            if p is not None and not r.get("personality_pretrained"):
                p = f"{p} (UNTUNED)"
            rows.append([exp.key, str(seed), str(r["best_epoch"]), str(r["epochs_run"]),
                         fmt("mae", r["valid"]["mae"]), fmt("mae", r["test"]["mae"]),
                         fmt("acc2_non0", r["test"]["acc2_non0"]),
                         f"{r['wall_s']:.0f}" + (" (partial)" if r.get("wall_note") else ""),
                         f"{statistics.median(r['epoch_s']):.0f}" if r["epoch_s"] else "–",
                         p or "–", r["git_commit"][:12] + ("+dirty" if "dirty" in
                                                             r["git_commit"] else "")])
    if not rows:
        return lines + ["(none yet)", ""]
    lines += table(["experiment", "seed", "best epoch", "epochs run", "valid MAE", "test MAE",
                    "test Acc-2 non0", "wall s", "s/epoch (median)", "personality encoder",
                    "commit"], rows)
    lines.append("")
    return lines


def speed_section(results: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    lines = ["## Speed and memory (CPU)", ""]
    speed = load_speed()
    for item in speed:
        lines.append(f"### {item['title']}")
        lines.append("")
        lines.append(f"Command: `{item['command']}`; git {item['git_commit'][:12]}; "
                     f"{item['machine']}; measured {item['measured_at']}.")
        lines.append("")
        lines += table(item["header"], item["rows"])
        lines.append("")
        for note in item.get("notes", []):
            lines.append(f"- {note}")
        lines.append("")
    if not speed:
        lines += ["(no speed results yet: `.venv/bin/python -m benchmarks.speed`)", ""]
    lines += ["### Wall time per epoch, from the benchmark runs", "",
              "Median over epochs 2.. of each run (an epoch = training + validation; the first "
              "epoch of a process also holds start-up). The machine was shared with other jobs, "
              "so these are upper bounds.", ""]
    rows = []
    for exp in EXPERIMENTS:
        runs = results.get(exp.key, {})
        epochs = [s for r in runs.values() for s in r.get("epoch_s", [])]
        rss = [r["peak_rss_mib"] for r in runs.values() if r.get("peak_rss_mib")]
        if epochs:
            rows.append([exp.key, str(len(runs)), f"{statistics.median(epochs):.0f}",
                         f"{min(epochs):.0f}–{max(epochs):.0f}",
                         f"{statistics.median([r['wall_s'] for r in runs.values()]):.0f}",
                         f"{max(rss):.0f} ({len(rss)} runs)" if rss else "–"])
    lines += table(["experiment", "runs", "s/epoch median", "range", "run wall s median",
                    "peak RSS MiB (max; runs recording it)"],
                   rows) if rows else ["(no finished runs yet)"]
    lines.append("")
    for name, what in (("step_time", "Training-step time, PSA-MF vs plain fine-tuning"),
                       ("overhead", "Trainer overhead beyond forward/backward"),
                       ("personality_pretrain", "Personality pretraining of the MiniLM")):
        if (ROOT / "benchmarks" / f"{name}.md").is_file():
            lines.append(f"- {what}: [{name}.md]({name}.md)")
    lines.append("")
    return lines


def _expected_wall(budget: real_data.Budget, walls: dict[str, list[float]],
                   ) -> tuple[float | None, str]:
    """Median wall seconds of a run on ``budget`` (suffix ''), or scaled by epochs from a
    budget whose resolved config differs only in epochs (suffix ' ~from NAME'), or (None, '')."""
    if walls.get(budget.name):
        return statistics.median(walls[budget.name]), ""
    mine = budget.config()
    for name, done in walls.items():
        other = real_data.BUDGETS[name].config()
        if done and dataclasses.replace(other, epochs=mine.epochs) == mine:
            return statistics.median(done) * mine.epochs / other.epochs, f" ~from {name}"
    return None, ""


def pending_section(results: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    lines = ["## Pending", ""]
    # A run's expected wall time: the median over finished runs on the same budget whose wall
    # time covers the whole run (a "partial" wall_note would understate it).
    walls: dict[str, list[float]] = {}
    for exp in EXPERIMENTS:
        walls.setdefault(exp.budget.name, []).extend(
            r["wall_s"] for r in results.get(exp.key, {}).values()
            if r.get("wall_s") and not r.get("wall_note"))
    rows, left_s = [], 0.0
    for exp in EXPERIMENTS:
        missing = [s for s in exp.seeds if not real_data.Job(exp, s).result_path.is_file()]
        if missing:
            started = [s for s in missing if real_data.Job(exp, s).run_dir.exists()]
            per_run, source = _expected_wall(exp.budget, walls)
            left_s += (per_run or 0.0) * len(missing)
            rows.append([exp.key, seeds_text(missing),
                         seeds_text(started) if started else "–",
                         f"{per_run / 60:.0f}{source}" if per_run else "–",
                         f"`.venv/bin/python -m benchmarks.real_data run --group {exp.group} "
                         "--commit`"])
    for name, part in (("inference", "inference --threads 1"), ("mosei_train_memory", "memory")):
        if not (RESULTS / "speed" / f"{name}.json").is_file():
            rows.append([f"speed/{name}", "–", "–", "–",
                         f"`.venv/bin/python -m benchmarks.speed {part}` (alone on the machine)"])
    if not rows:
        return lines + ["Nothing: every queued experiment has its result file.", ""]
    lines.append("Result files not there yet (generated from the queue in `real_data.py`). "
                 "Rerunning the command skips what is done and resumes started runs.")
    lines.append("")
    lines += table(["experiment", "missing seeds", "started (resumable)",
                    "min per run (median of finished runs, same budget; ~ scaled)",
                    "command"], rows)
    lines.append("")
    lines.append(f"About {left_s / 3600:.1f} h of single-thread runs left, counting started runs "
                 "as whole. A budget with no finished run is estimated from one that differs "
                 "only in epochs, scaled by the epoch count (marked ~; early stopping makes real "
                 "runs shorter), else counted as 0.")
    lines.append("")
    return lines


def personality_note(results: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    meant_untuned = {e.key for e in EXPERIMENTS if e.personality == "untuned"}
    untuned = sorted({f"{r['experiment']} seed {r['seed']}" for runs in results.values()
                      for r in runs.values()
                      if r.get("personality_encoder") and not r.get("personality_pretrained")
                      and r["experiment"] not in meant_untuned})
    encoders = sorted({r["personality_encoder"] for runs in results.values()
                       for r in runs.values() if r.get("personality_encoder")})
    lines = []
    report = ROOT / "benchmarks" / "personality_pretrain.md"
    if report.is_file():
        lines.append(f"How the personality encoder was pretrained, and how well it predicts the "
                     f"Big Five: [{report.name}]({report.name}).")
        lines.append("")
    if encoders:
        lines.append("Personality encoder(s) giving P in these runs: "
                     + ", ".join(f"`{e}`" for e in encoders) + " (`minilm` = the plain, "
                     "untuned MiniLM, used on purpose only by the experiments labelled "
                     "'untuned personality encoder').")
    if untuned:
        lines += ["", "> **Warning: these PSA-MF runs used an UNTUNED personality encoder** "
                  "(no trait head: P is a plain MiniLM sentence embedding, not a personality "
                  "representation): " + "; ".join(untuned) + "."]
    return lines + [""] if lines else []


def identity_section(results: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """Which personality encoder (content identity: hash, pooling, length) gave P to each
    experiment's seeds, and whether the run recorded it or it was backfilled; warns about
    results that use P without a known identity, and experiments whose seeds differ in P."""
    rows, unknown, mixed = [], [], []
    for exp in EXPERIMENTS:
        runs = results.get(exp.key, {})
        if not runs:
            continue
        by_identity: dict[str, list[str]] = {}
        for seed, r in sorted(runs.items()):
            identity = r.get("personality_identity")
            source = r.get("personality_identity_source") or ("recorded" if identity else "none")
            if identity is None and r.get("personality_encoder") is not None:
                unknown.append(f"`{exp.key}` seed {seed}")
                identity = "unknown"
            label = f"`{identity}`" if identity else "no P"
            tag = f"{seed}" + ("*" if source == "backfilled" else "")
            by_identity.setdefault(label, []).append(tag)
        if len(by_identity) > 1:
            mixed.append(f"`{exp.key}`")
        rows.append([exp.key, "; ".join(f"{k} (seeds {','.join(v)})"
                                        for k, v in by_identity.items())])
    if not rows:
        return []
    lines = ["### Which P produced each result", "",
             "The personality encoder's content identity (sha256 of its config, weights and "
             "tokenizer files : pooling : max tokens) as each result file states it. "
             "`*` = not recorded by the run but backfilled from git history; the file's "
             "`personality_identity_note` gives the evidence.", ""]
    lines += table(["experiment", "P identity (seeds)"], rows)
    lines.append("")
    if unknown:
        lines += ["> **Warning: P of unknown identity** (the run did not record it and it could "
                  "not be established): " + ", ".join(unknown) + ".", ""]
    if mixed:
        lines += ["> **Warning: seeds of one experiment used different P**: "
                  + ", ".join(mixed) + ".", ""]
    return lines


def render() -> str:
    results = load_results()
    lines = [
        "# Benchmarks on real CMU-MOSI and CMU-MOSEI",
        "",
        "<!-- generated by benchmarks/make_results.py from benchmarks/results/**.json; "
        "do not edit by hand -->",
        "",
        "Every number below was measured by `benchmarks/real_data.py` / `benchmarks/speed.py` on "
        "this project's 2-core CPU machine (shared with other jobs) and is read from the JSON "
        "result files, which also hold each run's command, seed, encoders, git commit, wall "
        "time and per-epoch history. Protocol: standard folds; the checkpoint is the epoch with "
        "the lowest validation MAE; the test split is evaluated once, on that checkpoint. "
        "PSA-MF and its text-only baseline use the same encoder, seeds and budget. Metrics: "
        "MAE, Pearson Corr, Acc-7, Acc-5, and Acc-2 / weighted F1 in both conventions (has0 = "
        "negative vs non-negative over all utterances; non0 = negative vs positive over "
        "utterances with a non-zero label, the figure papers usually print). mean ± sample std "
        "over seeds. Published figures to compare with are in `../shared/docs/PSA-MF.md`.",
        "",
        "MOSI here has real text and audio features and no video (see the data README); "
        "MOSEI has text only.",
        "",
        "Reproduce (each command skips finished results and resumes interrupted runs): "
        "`.venv/bin/python -m benchmarks.real_data run --commit` (the whole queue, "
        "in priority order; `--group NAME` for one group, `--deadline HH:MM` to stop "
        "resumably; several queues may run side by side, e.g. two with `OMP_NUM_THREADS=1`, "
        "each taking the next unlocked job), "
        "`.venv/bin/python -m benchmarks.speed inference --threads 1`, "
        "`.venv/bin/python -m benchmarks.speed memory` (and `memory --steps 0` for one whole "
        "MOSEI epoch), then "
        "`.venv/bin/python -m benchmarks.make_results`.",
        "",
    ]
    lines += personality_note(results)
    lines += identity_section(results)
    lines += goals_section(results)
    lines += ["## Main comparisons", ""]
    for group in MAIN_GROUPS:
        lines += comparison_section(group, results)
    lines += curves_figure(results)
    lines += ["## MOSI ablations and design choices (MiniLM)", ""]
    lines += [line for group in GROUPS.values() if group.main is None
              for line in delta_section(group, results)]
    lines += deltas_figure(results)
    lines += per_seed_section(results)
    lines += config_drift(results)
    lines += dirty_runs(results)
    lines += speed_section(results)
    lines += pending_section(results)
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    text = render()
    write_text(OUT, text)  # atomic: two queues may regenerate it at the same time
    print(f"wrote {os.path.relpath(OUT, Path.cwd())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
