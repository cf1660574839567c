"""Generate ``benchmarks/RESULTS.md`` from the JSON result files (never edit RESULTS.md by hand).

Reads ``benchmarks/results/<group>/<name>/seed-<k>.json`` (written by ``real_data.py``),
``benchmarks/results/speed/*.json`` (``speed.py``) and ``benchmarks/step_time.json``
(``step_time.py``); the queue in ``real_data.py`` says what is still pending. The fixed prose is
``RESULTS.template.md``; each function here renders one of its ``${sections}`` as lines, and the
figures are drawn by ``make_figures.py``. Statistics and number formats: ``stats.py``.

    .venv/bin/python -m benchmarks.make_results
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from string import Template
from typing import Any

from benchmarks import make_figures, real_data, stats
from benchmarks.real_data import EXPERIMENTS, FULL, GROUPS, RESULTS, ROOT, Job, experiment
from benchmarks.stats import fmt, fmt_ms, paired_deltas, paired_p, seeds_text, table
from psamf.io import write_text
from psamf.models.config import PSAMFConfig
from psamf.training.config import TrainConfig

OUT = ROOT / "benchmarks" / "RESULTS.md"
TEMPLATE = ROOT / "benchmarks" / "RESULTS.template.md"
MAIN_GROUPS = sorted((g for g in GROUPS.values() if g.main is not None), key=lambda g: g.main)
NAMES = dict(stats.METRICS)
Results = dict[str, dict[int, dict[str, Any]]]  # {experiment key: {seed: result file}}
Runs = Mapping[int, Mapping[str, Any]]  # {seed: result file} of one experiment
P_NOTE = ("p = two-sided paired t-test of the per-seed Δ against 0; with 2–5 seeds only large, "
          "consistent effects reach p < 0.05.")


def load_results() -> Results:
    out: Results = {}
    for path in sorted(RESULTS.glob("*/*/seed-*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        out.setdefault(data["experiment"], {})[int(data["seed"])] = data
    return out


def _seeds(seeds: Sequence[int]) -> str:
    return f"{len(seeds)} ({seeds_text(seeds)})"


def _common(runs: Runs, base: Runs) -> list[int]:
    return sorted(set(runs) & set(base))


def _cells(runs: Runs, keys: Sequence[str], base: Runs | None = None,
           split: str = "test") -> list[str]:
    """``mean ± std`` over seeds of each metric in ``keys``: absolute, or with ``base`` the
    Δ from it paired by seed."""
    if base is None:
        return [fmt_ms(k, [r[split][k] for r in runs.values()]) for k in keys]
    return [fmt_ms(k, paired_deltas(runs, base, k, split), signed=True) for k in keys]


def _p(runs: Runs, base: Runs, key: str) -> str:
    return paired_p(paired_deltas(runs, base, key))


def comparison_section(group: real_data.Group, results: Results) -> list[str]:
    """A main comparison: each model, then each one's Δ from its baseline, best epochs, verdict."""
    exps, keys = group.experiments, [k for k, _ in stats.METRICS]
    rows = [[e.label, _seeds(list(runs := results.get(e.key, {}))), *_cells(runs, keys),
             *_cells(runs, ["mae"], split="valid")] for e in exps]
    for exp in exps:
        runs, base = results.get(exp.key, {}), results.get(exp.baseline or "", {})
        if common := _common(runs, base):
            rows.append([f"Δ {exp.label} − {experiment(exp.baseline).label} (paired by seed)",
                         _seeds(common), *_cells(runs, keys, base),
                         *_cells(runs, ["mae"], base, "valid")])
    budget = " ".join(exps[0].budget.args())  # one per group
    lines = [f"### {group.title}", "",
             f"Budget (the same for every row): `{budget}`; seeds as listed.", "",
             *table(["model", "seeds", *(f"test {name}" for _, name in stats.METRICS),
                     "valid MAE (selection)"], rows), ""]
    # A best epoch at the budget's last epoch means the model was still learning.
    best = [f"{e.label}: " + ", ".join(f"{r['best_epoch']}/{r['epochs_run']}"
                                       for _, r in sorted(results[e.key].items()))
            for e in exps if results.get(e.key)]
    if best:
        lines += ["Best epoch / epochs run, by seed: " + "; ".join(best) + ".", ""]
    return lines + verdict_lines(exps, results)


def verdict_lines(exps: Sequence[real_data.Experiment], results: Results) -> list[str]:
    """PSA-MF vs baseline: is the difference of means larger than both spreads?"""
    out: list[str] = []
    for exp in (e for e in exps if e.baseline):
        runs, base = results.get(exp.key, {}), results.get(exp.baseline, {})
        if len(common := _common(runs, base)) < 2:
            continue
        for key in ("mae", "acc2_non0", "f1_non0"):
            gain, spread = stats.gain_and_spread(runs, base, key)
            out.append(f"- {NAMES[key]}: {exp.label} is {'ahead' if gain > 0 else 'behind'} by "
                       f"{fmt(key, abs(gain))} ({'more' if abs(gain) > spread else 'less'} than "
                       f"one std, max std {fmt(key, spread)}; seeds {seeds_text(common)}; "
                       f"paired p {_p(runs, base, key)}).")
    return out + ["", P_NOTE, ""] if out else []


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{"dotted.key": value}``."""
    if not isinstance(data, dict):
        return {prefix.rstrip("."): data}
    return {k: v for key, value in data.items() for k, v in _flat(value, f"{prefix}{key}.").items()}


def config_drift(results: Results) -> list[str]:
    """Experiments whose seeds ran with different resolved configs (code changed in between)."""
    # A field added after a run was made (e.g. personality_pooling) has its default in that run.
    defaults = _flat({**TrainConfig(model=PSAMFConfig()).to_dict(),
                      "model": PSAMFConfig().to_dict()})
    out = []
    for key, runs in sorted(results.items()):
        flats = [{**defaults, **_flat(r.get("config", {}))} for r in runs.values()]
        if differ := sorted({k for f in flats for k in f if k not in
                             {"seeds", "progress", "cache_dir"}
                             and len({repr(g.get(k)) for g in flats}) > 1}):
            out.append(f"- `{key}`: seeds differ in {', '.join(f'`{k}`' for k in differ)}")
    return ["Resolved configs that differ between the seeds of one experiment (the code changed "
            "between runs; each result file holds its full config):", "", *out, ""] if out else []


def dirty_runs(results: Results) -> list[str]:
    """Runs that started from uncommitted changes under src/ (``+dirty``)."""
    dirty = [f"`{key}` seed {seed}" for key, runs in sorted(results.items())
             for seed, run in sorted(runs.items())
             if any(c.endswith("+dirty") for c in run.get("git_commits", []))]
    return ["Runs that started (or resumed) with uncommitted changes under `src/` (their commit "
            "is marked `+dirty`; the result file still holds the full resolved config): "
            + ", ".join(dirty) + ".", ""] if dirty else []


def goal_choice(candidates: Sequence[tuple[str, str, str]], results: Results) -> tuple[int, str]:
    """Which candidate set-up is chosen on validation (index), and a line saying how.

    Never on test: once every candidate's PSA-MF has all its planned seeds, the one with the
    lowest mean validation MAE over the seeds they share; the first (as specified) until then."""
    keys = [psamf for psamf, _, _ in candidates]
    if len(keys) == 1:
        return 0, ""
    if waiting := [k for k in keys if not set(experiment(k).seeds) <= set(results.get(k, {}))]:
        return 0, ("the set-up chosen on validation among " + ", ".join(f"`{k}`" for k in keys)
                   + " is read once " + ", ".join(f"`{k}`" for k in waiting)
                   + " has all its seeds")
    common = sorted(set.intersection(*(set(results[k]) for k in keys)))
    valid = [stats.mean_std([results[k][s]["valid"]["mae"] for s in common])[0] for k in keys]
    best = min(range(len(keys)), key=lambda i: valid[i])
    scores = ", ".join(f"`{k}` {v:.3f}" for k, v in zip(keys, valid, strict=True))
    return best, (f"chosen on validation: `{keys[best]}`, the lowest mean PSA-MF validation MAE "
                  f"over seeds {seeds_text(common)} ({scores}); the test split played no part")


def goal_rows(psamf: str, text_only: str, label: str, targets: Sequence[tuple[str, float]],
              results: Results) -> list[list[str]]:
    """One set-up against each target (met, or missed by how much) and against text-only."""
    runs, base = results.get(psamf, {}), results.get(text_only, {})
    planned, rows = experiment(psamf).seeds, []
    for metric, target in targets:
        lower = metric in stats.LOWER_IS_BETTER
        goal = f"{label}: test {NAMES[metric]} {'≤' if lower else '≥'} {fmt(metric, target)}"
        if not runs:
            rows.append([goal, "–", "not run yet"])
            continue
        mean, _ = stats.mean_std([r["test"][metric] for r in runs.values()])
        short = (mean - target) if lower else (target - mean)
        status = "met" if short <= 0 else f"missed by {fmt(metric, short)}"
        if len(runs) < len(planned):
            status += f" (provisional: {len(runs)} of {len(planned)} seeds)"
        seeds = f"{len(runs)} seed{'s' if len(runs) > 1 else ''}"
        rows.append([goal, f"{fmt(metric, mean)} ({seeds})", status])
    for metric in ("mae", "acc2_non0"):
        goal = f"{label} ahead of text-only by more than one std ({NAMES[metric]})"
        if len(common := _common(runs, base)) < 2:
            rows.append([goal, "–", "not run yet (needs 2+ seeds of both)"])
            continue
        gain, spread = stats.gain_and_spread(runs, base, metric)
        rows.append([goal, f"gain {fmt(metric, gain, signed=True)}, max std "
                     f"{fmt(metric, spread)} (seeds {seeds_text(common)})",
                     "met" if gain > spread else f"missed by {fmt(metric, spread - gain)}"])
    return rows


def goals_section(results: Results) -> list[str]:
    """Each goal against the measured mean (met, or missed by how much), for PSA-MF as specified
    and, where validation prefers another declared set-up, for that one too."""
    rows, notes = [], []
    for goal in (g.goal for g in GROUPS.values() if g.goal):
        rows += goal_rows(*goal.candidates[0], goal.targets, results)
        chosen, how = goal_choice(goal.candidates, results)
        if chosen:
            psamf, text_only, label = goal.candidates[chosen]
            rows += goal_rows(psamf, text_only, f"{label} [chosen on validation]", goal.targets,
                              results)
        if how:
            notes.append(f"- {goal.encoder}: {how}.")
    return [*table(["goal", "measured (mean)", "status"], rows), "", *notes, *[""] * bool(notes)]


def delta_section(group: real_data.Group, results: Results) -> list[str]:
    """Each variant's paired deltas from full PSA-MF, over the seeds it shares with it."""
    full = results.get(FULL, {})
    keys = ("mae", "corr", "acc2_non0", "f1_non0", "acc2_has0", "acc7")
    # The reference over the fewer seeds some variants share with it: a Δ over seeds 1-3 is
    # measured from full PSA-MF's mean over 1-3, which can sit far from its 5-seed mean.
    subsets = sorted({tuple(_common(results.get(e.key, {}), full)) for e in group.experiments}
                     - {(), tuple(sorted(full))})
    rows = [[f"full PSA-MF (absolute{f', seeds {seeds_text(s)}' if s else ''})",
             _seeds(s or list(full)), *_cells({x: full[x] for x in s} if s else full, keys),
             "", "", ""] for s in [(), *subsets]]
    for exp in group.experiments:
        runs = results.get(exp.key, {})
        rows.append([exp.label, _seeds(common), *_cells(runs, keys, full), _p(runs, full, "mae"),
                     _p(runs, full, "acc2_non0"), exp.notes] if (common := _common(runs, full))
                    else [exp.label, "0", *("–" for _ in keys), "–", "–", exp.notes])
    return [f"### {group.title}", "", group.intro, "",
            *table(["variant", "paired seeds", *(f"Δ {NAMES[k]}" for k in keys), "p (Δ MAE)",
                    "p (Δ Acc-2 non0)", "note"], rows), "",
            "Δ = variant − full PSA-MF on the same seed (mean ± std over seeds); lower MAE is "
            "better, higher is better for the rest. " + P_NOTE, ""]


def _step_costs(encoder: str) -> dict[str, dict[str, Any]]:
    """Per model type: training-step time relative to text-only and parameter counts, as
    ``benchmarks/step_time.py`` measured them side by side for ``encoder`` ({} if not run)."""
    path = ROOT / "benchmarks" / "step_time.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return next((r.get("models", {}) for r in data.get("results", [])
                 if r.get("backbone") == encoder), {})


def models_section(group: real_data.Group, results: Results) -> list[str]:
    """The group's models with those it includes, absolute and paired with its reference (the
    experiment its rows vary: text-only fine-tuning), plus step time and parameter counts."""
    ref = experiment(group.variants_of)
    base = results.get(ref.key, {})
    costs = _step_costs(ref.config.model.text_encoder)
    keys = ("mae", "corr", "acc2_non0", "f1_non0", "acc7")
    rows = []
    for exp in [*map(experiment, group.include), *group.experiments]:
        runs = results.get(exp.key, {})
        cost = costs.get(exp.config.model.model_type, {})
        ratio, params = cost.get("ratio_to_text_finetune"), cost.get("parameters")
        paired = exp.key != ref.key and _common(runs, base)
        rows.append([exp.label, _seeds(list(runs)), *_cells(runs, keys),
                     *(x for k in ("mae", "acc2_non0") for x in (
                         (*_cells(runs, [k], base), _p(runs, base, k)) if paired else ("", ""))),
                     *_cells(runs, ["mae"], split="valid"),
                     f"{ratio:.2f}×" if ratio else "–", f"{params / 1e6:.2f} M" if params else "–"])
    budget = " ".join(ref.budget.args())
    return [f"### {group.title}", "", group.intro, "", f"Budget (every row): `{budget}`.", "",
            *table(["model", "seeds", *(f"test {NAMES[k]}" for k in keys),
                    "Δ MAE vs text-only", "p", "Δ Acc-2 non0 vs text-only", "p",
                    "valid MAE (selection)", "step time vs text-only", "parameters"], rows), "",
            "Δ = model − text-only fine-tuning on the same seed (mean ± std over seeds); lower "
            "MAE is better. " + P_NOTE + " Step time (forward + backward + optimizer step, batch "
            "32) and parameter counts: [step_time.md](step_time.md), measured side by side in "
            "one process on MOSI's inputs (text + 73-d audio); on text-only data the fusion "
            "models build no audio branch, so there they have slightly fewer parameters.", ""]


def _figure(path: Path, caption: str, alt: str) -> list[str]:
    return [caption, "", f"![{alt}]({path.relative_to(OUT.parent).as_posix()})", ""]


def curves_figure(results: Results) -> list[str]:
    """Validation MAE by epoch for the main comparisons, drawn from each run's history."""
    panels = [(g.title.split(" (")[0], models) for g in MAIN_GROUPS if (models := {
        e.label: {seed: ([h["valid"]["mae"] for h in run["history"]], run["best_epoch"])
                  for seed, run in sorted(results[e.key].items())}
        for e in g.experiments if results.get(e.key)})]
    if not panels:
        return []
    return _figure(make_figures.validation_curves(
        make_figures.FIGURES / "valid_mae_by_epoch.png", panels),
        "Validation MAE by epoch, one line per seed; a star marks the epoch each seed's test "
        "figures come from:", "validation MAE by epoch")


def deltas_figure(results: Results) -> list[str]:
    """Per-seed paired deltas from full PSA-MF for every ablation and design variant run."""
    full = results.get(FULL, {})
    variants = [e for e in EXPERIMENTS if e.group in ("ablation", "design")
                and set(results.get(e.key, {})) & set(full)]
    if not variants:
        return []
    metrics = [(f"Δ {NAMES[k]} (variant − full PSA-MF)",
                {e.key: paired_deltas(results[e.key], full, k) for e in variants})
               for k in ("mae", "acc2_non0")]
    return _figure(make_figures.paired_deltas(make_figures.FIGURES / "ablation_deltas.png",
                                              metrics),
                   "Each seed's Δ (grey dot) and mean ± std over seeds (black): a dashed line at "
                   "0 means no change; lower MAE and higher Acc-2 are better.",
                   "paired deltas of ablations and design choices")


def per_seed_section(results: Results) -> list[str]:
    """One row per result file: epochs, the headline metrics, wall time, P, commit."""
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
    return [*table(["experiment", "seed", "best epoch", "epochs run", "valid MAE", "test MAE",
                    "test Acc-2 non0", "wall s", "s/epoch (median)", "personality encoder",
                    "commit"], rows), ""] if rows else ["(none yet)", ""]


def speed_section() -> list[str]:
    """The tables ``speed.py`` wrote, as it wrote them."""
    lines = []
    for path in sorted((RESULTS / "speed").glob("*.json")):
        item = json.loads(path.read_text(encoding="utf-8"))
        lines += [f"### {item['title']}", "",
                  f"Command: `{item['command']}`; git {item['git_commit'][:12]}; "
                  f"{item['machine']}; measured {item['measured_at']}.", "",
                  *table(item["header"], item["rows"]), "",
                  *(f"- {note}" for note in item.get("notes", [])), ""]
    return lines or ["(no speed results yet: `.venv/bin/python -m benchmarks.speed`)", ""]


def walls_section(results: Results) -> list[str]:
    """Seconds per epoch and per run, and peak memory, by experiment; links to the timings."""
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
    lines = table(["experiment", "runs", "s/epoch median", "range", "run wall s median",
                   "peak RSS MiB (max; runs recording it)"],
                  rows) if rows else ["(no finished runs yet)"]
    return [*lines, "", *(f"- {what}: [{name}.md]({name}.md)" for name, what in (
        ("step_time", "Training-step time of every model vs plain fine-tuning"),
        ("overhead", "Trainer overhead beyond forward/backward"),
        ("personality_pretrain", "Personality pretraining of the MiniLM"))
        if (ROOT / "benchmarks" / f"{name}.md").is_file()), ""]


def _expected_wall(budget: real_data.Budget,
                   walls: dict[str, list[float]]) -> tuple[float | None, str]:
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


def pending_section(results: Results) -> list[str]:
    """What the queue has still to run, with the command and an estimate of the time left."""
    # A run's expected wall time: the median over finished runs on the same budget whose wall
    # time covers the whole run (a "partial" wall_note would understate it).
    walls: dict[str, list[float]] = {}
    for exp in EXPERIMENTS:
        walls.setdefault(exp.budget.name, []).extend(
            r["wall_s"] for r in results.get(exp.key, {}).values()
            if r.get("wall_s") and not r.get("wall_note"))
    rows, left_s = [], 0.0
    for exp in EXPERIMENTS:
        if missing := [s for s in exp.seeds if not Job(exp, s).result_path.is_file()]:
            started = [s for s in missing if Job(exp, s).run_dir.exists()]
            per_run, source = _expected_wall(exp.budget, walls)
            left_s += (per_run or 0.0) * len(missing)
            rows.append([exp.key, seeds_text(missing), seeds_text(started) if started else "–",
                         f"{per_run / 60:.0f}{source}" if per_run else "–",
                         f"`.venv/bin/python -m benchmarks.real_data run --group {exp.group} "
                         "--commit`"])
    for name, part in (("inference", "inference --threads 1"), ("mosei_train_memory", "memory")):
        if not (RESULTS / "speed" / f"{name}.json").is_file():
            rows.append([f"speed/{name}", "–", "–", "–",
                         f"`.venv/bin/python -m benchmarks.speed {part}` (alone on the machine)"])
    if not rows:
        return ["Nothing: every queued experiment has its result file.", ""]
    return ["Result files not there yet (generated from the queue in `real_data.py`). Rerunning "
            "the command skips what is done and resumes started runs.", "",
            *table(["experiment", "missing seeds", "started (resumable)",
                    "min per run (median of finished runs, same budget; ~ scaled)", "command"],
                   rows), "",
            f"About {left_s / 3600:.1f} h of single-thread runs left, counting started runs as "
            "whole. A budget with no finished run is estimated from one that differs only in "
            "epochs, scaled by the epoch count (marked ~; early stopping makes real runs "
            "shorter), else counted as 0.", ""]


def personality_note(results: Results) -> list[str]:
    """Which personality encoders gave P, with a warning for any run unintentionally untuned."""
    ran = [r for runs in results.values() for r in runs.values()]
    meant_untuned = {e.key for e in EXPERIMENTS if e.personality == "untuned"}
    untuned = sorted({f"{r['experiment']} seed {r['seed']}" for r in ran
                      if r.get("personality_encoder") and not r.get("personality_pretrained")
                      and r["experiment"] not in meant_untuned})
    encoders = sorted({r["personality_encoder"] for r in ran if r.get("personality_encoder")})
    lines = []
    if (ROOT / "benchmarks" / "personality_pretrain.md").is_file():
        lines += ["How the personality encoder was pretrained, and how well it predicts the Big "
                  "Five: [personality_pretrain.md](personality_pretrain.md).", ""]
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


def identity_section(results: Results) -> list[str]:
    """Which personality encoder (content identity: hash, pooling, length) gave P to each
    experiment's seeds, and whether the run recorded it or it was backfilled; warns about
    results that use P without a known identity, and experiments whose seeds differ in P."""
    rows, unknown, mixed = [], [], []
    for exp in (e for e in EXPERIMENTS if results.get(e.key)):
        by_identity: dict[str, list[str]] = {}
        for seed, r in sorted(results[exp.key].items()):
            identity = r.get("personality_identity")
            if identity is None and r.get("personality_encoder") is not None:
                unknown.append(f"`{exp.key}` seed {seed}")
                identity = "unknown"
            by_identity.setdefault(f"`{identity}`" if identity else "no P", []).append(
                f"{seed}" + "*" * (r.get("personality_identity_source") == "backfilled"))
        mixed += [f"`{exp.key}`"] * (len(by_identity) > 1)
        rows.append([exp.key, "; ".join(f"{k} (seeds {','.join(v)})"
                                        for k, v in by_identity.items())])
    if not rows:
        return []
    lines = ["### Which P produced each result", "",
             "The personality encoder's content identity (sha256 of its config, weights and "
             "tokenizer files : pooling : max tokens) as each result file states it. "
             "`*` = not recorded by the run but backfilled from git history; the file's "
             "`personality_identity_note` gives the evidence.", "",
             *table(["experiment", "P identity (seeds)"], rows), ""]
    if unknown:
        lines += ["> **Warning: P of unknown identity** (the run did not record it and it could "
                  "not be established): " + ", ".join(unknown) + ".", ""]
    if mixed:
        lines += ["> **Warning: seeds of one experiment used different P**: "
                  + ", ".join(mixed) + ".", ""]
    return lines


def render() -> str:
    """RESULTS.md's text: the template with every section filled from the result files."""
    results = load_results()
    sections = {
        "personality": personality_note(results), "identity": identity_section(results),
        "goals": goals_section(results),
        "main": [line for g in MAIN_GROUPS for line in comparison_section(g, results)],
        "curves": curves_figure(results),
        "models": [line for g in GROUPS.values() if g.include
                   for line in models_section(g, results)],
        "variants": [line for g in GROUPS.values() if g.main is None and not g.include
                     for line in delta_section(g, results)],
        "deltas": deltas_figure(results), "per_seed": per_seed_section(results),
        "drift": config_drift(results), "dirty": dirty_runs(results),
        "speed": speed_section(), "walls": walls_section(results),
        "pending": pending_section(results)}
    text = Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        {name: "".join(f"{line}\n" for line in lines) for name, lines in sections.items()})
    return text.rstrip() + "\n"


def main() -> int:
    write_text(OUT, render())  # atomic: two queues may regenerate it at the same time
    print(f"wrote {os.path.relpath(OUT, Path.cwd())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
