"""Benchmarks on real CMU-MOSI and CMU-MOSEI: a resumable queue of ``psamf train`` runs.

Every experiment is one ``psamf train`` run of one seed; its result lands in
``benchmarks/results/<group>/<name>/seed-<k>.json`` (test + valid metrics of the checkpoint chosen
on validation MAE, per-epoch history, command, seed, encoders, git commit, wall time), and
``python -m benchmarks.make_results`` turns those files into ``benchmarks/RESULTS.md``.
Budgets, groups and experiments are declared in ``experiments.yaml`` and resolved into the
``TrainConfig`` each run will use when this module is imported, so a typo fails at ``list``.

Rerunning a command skips finished results and resumes interrupted run folders. Several queues
may run side by side (say two with ``OMP_NUM_THREADS=1`` on 2 cores): a running job is locked, so
another queue takes the next free one. PSA-MF runs wait for the pretrained personality encoder
(``artifacts/personality-minilm``), running other jobs meanwhile; two experiments take P from the
plain MiniLM on purpose (results record which P: ``personality_identity``).

    .venv/bin/python -m benchmarks.real_data list              # the queue and what is done
    .venv/bin/python -m benchmarks.real_data run --commit      # everything, in priority order
    .venv/bin/python -m benchmarks.real_data run --group mosi-mpnet --commit
    .venv/bin/python -m benchmarks.real_data run --experiment design/align-layer-6 --commit
    .venv/bin/python -m benchmarks.real_data run --deadline 10:05 --commit   # stop (resumably)
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO, Any

import yaml

from benchmarks.stats import fmt
from psamf.data import default_data_root
from psamf.errors import InputError
from psamf.io import write_json
from psamf.training import runs
from psamf.training.config import DEFAULT_PERSONALITY_ENCODER, TrainConfig, apply_overrides
from psamf.training.presets import get_preset

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RUNS = ROOT / "artifacts" / "bench-runs"
LOGS = ROOT / "artifacts" / "bench-logs"
DECLARATIONS = Path(__file__).resolve().parent / "experiments.yaml"
PERSONALITY = DEFAULT_PERSONALITY_ENCODER  # relative: runs start in ROOT
UNTUNED_PERSONALITY = "minilm"


# --- budgets, groups, experiments: declared in experiments.yaml -----------------------------------


def _items(settings: dict[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in settings.items()]


@dataclass(frozen=True)
class Budget:
    """A training budget: a registered preset, the dataset, and settings on top, written as
    ``psamf train`` takes them (RESULTS.md prints them as the command's arguments)."""

    name: str
    dataset: str
    settings: dict[str, str]
    preset: str = "cpu"

    def __post_init__(self) -> None:
        self.config()  # a typo or a bad value fails here, when the benchmarks are imported

    def args(self) -> tuple[str, ...]:
        return ("--preset", self.preset, "--data", self.dataset, *_items(self.settings))

    def config(self, overrides: dict[str, str] | None = None) -> TrainConfig:
        """The resolved config, as ``psamf train`` builds it from these arguments."""
        return apply_overrides(get_preset(self.preset), [
            f"data.name={self.dataset}", *_items({**self.settings, **(overrides or {})})])

    def but(self, name: str, key: str, value: str) -> Budget:
        """This budget with setting ``key`` (which it must have, so that a changed base cannot
        silently leave a variant equal to it) set to ``value``."""
        if key not in self.settings:
            raise InputError(f"budget {self.name!r} has no setting {key!r}")
        return dataclasses.replace(self, name=name, settings={**self.settings, key: value})


@dataclass(frozen=True)
class Experiment:
    """One model setting (a budget plus overrides); ``seeds`` of it are queued. Its config is
    resolved on construction, so a bad override fails when the module is imported."""

    group: str
    name: str
    label: str
    budget: Budget
    overrides: dict[str, str]
    seeds: tuple[int, ...]
    baseline: str | None = None  # "group/name" this one is compared with (same seeds)
    notes: str = ""
    personality: str = "pretrained"  # P from PERSONALITY ("pretrained") or plain MiniLM

    def __post_init__(self) -> None:
        try:
            if self.personality not in ("pretrained", "untuned"):
                raise InputError(f"personality must be 'pretrained' or 'untuned', not "
                                 f"{self.personality!r}")
            _ = self.config
        except InputError as err:
            raise InputError(f"experiment {self.key}: {err}") from None

    @property
    def key(self) -> str:
        return f"{self.group}/{self.name}"

    @cached_property
    def config(self) -> TrainConfig:
        return self.budget.config(self.overrides)

    def uses_personality(self) -> bool:
        return self.config.uses_personality()  # the model registry and use_personality decide


@dataclass(frozen=True)
class Goal:
    """The issue's goals for one encoder (means over seeds): the candidate set-ups as (PSA-MF
    experiment, its text-only baseline, label), the first being PSA-MF as specified, and the
    (metric, target) pairs."""

    encoder: str
    candidates: tuple[tuple[str, str, str], ...]
    targets: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Group:
    """Experiments that RESULTS.md reports together, on one budget and one set of seeds.
    ``main``: position among the main comparisons (None: a table of each experiment paired with
    ``variants_of``, introduced by ``intro``); ``include``: other groups' experiments shown too."""

    name: str
    title: str
    experiments: tuple[Experiment, ...]
    main: int | None = None
    intro: str = ""
    goal: Goal | None = None
    variants_of: str | None = None
    include: tuple[str, ...] = ()


def _group(spec: dict[str, Any], budgets: dict[str, Budget],
           known: dict[str, Experiment]) -> Group:
    """A group from its YAML record. Its rows are ``variants_of``'s overrides plus their own;
    in a main comparison each row's baseline is the last row."""
    name, budget, seeds = spec.pop("name"), budgets[spec.pop("budget")], tuple(spec.pop("seeds"))
    rows = spec.pop("rows")
    if (ref_key := spec.get("variants_of")) and ref_key not in known:
        raise InputError(f"group {name}: variants_of {ref_key!r} is not an experiment declared "
                         "above it (GROUP/NAME)")
    ref = known[ref_key] if ref_key else None
    last = f"{name}/{rows[-1][0]}"
    exps = tuple(Experiment(
        name, row, label, budget,
        {**(ref.overrides if ref else {}), **dict(o.split("=", 1) for o in overrides)}, seeds,
        ref.key if ref else (last if i < len(rows) - 1 else None), *rest)
        for i, (row, label, overrides, *rest) in enumerate(rows))
    known.update((e.key, e) for e in exps)
    goal = spec.pop("goal", None)
    goal = goal and Goal(goal["encoder"], tuple(map(tuple, goal["candidates"])),
                         tuple(goal["targets"].items()))
    return Group(name, experiments=exps, goal=goal, include=tuple(spec.pop("include", ())),
                 **spec)


def _declarations() -> tuple[dict[str, Budget], dict[str, Group]]:
    """Budgets and groups from experiments.yaml, each experiment resolved into its config, and
    the cross-references checked (unique keys; known baselines, goal set-ups and includes)."""
    data = yaml.safe_load(DECLARATIONS.read_text(encoding="utf-8"))
    try:
        budgets: dict[str, Budget] = {}
        for name, spec in data["budgets"].items():
            budgets[name] = (budgets[spec["like"]].but(name, *spec["but"].split("=", 1))
                             if "like" in spec else Budget(
                                 name, spec["dataset"],
                                 dict(s.split("=", 1) for s in spec["settings"]), spec["preset"]))
        known: dict[str, Experiment] = {}
        declared = [_group(s, budgets, known) for s in data["groups"]]
        keys = [e.key for g in declared for e in g.experiments]
        names = [g.name for g in declared] + keys
        if twice := sorted({n for n in names if names.count(n) > 1}):
            raise InputError(f"declared twice: {', '.join(twice)} (each group, and each row of "
                             "a group, needs a name of its own)")
        refs = {e.baseline for e in known.values() if e.baseline} | {
            k for g in declared if g.goal for c in g.goal.candidates for k in c[:2]} | {
            k for g in declared for k in g.include}
        if unknown := sorted(refs - set(keys)):
            raise InputError(f"not declared: {', '.join(unknown)} (goal candidates and `include` "
                             "name experiments as GROUP/NAME)")
        groups = {g.name: g for g in declared}
    except (KeyError, TypeError, ValueError) as err:  # InputError is a ValueError
        raise InputError(f"{DECLARATIONS}: {err}") from None
    return budgets, groups


try:
    BUDGETS, GROUPS = _declarations()
except InputError as err:  # run as a command: one line and exit status 2, not a traceback
    if __name__ != "__main__":
        raise
    print(f"benchmarks.real_data: error: {err}", file=sys.stderr)
    sys.exit(2)
EXPERIMENTS: tuple[Experiment, ...] = tuple(e for g in GROUPS.values() for e in g.experiments)
FULL = "mosi-minilm/psamf"


def experiment(key: str) -> Experiment:
    return {e.key: e for e in EXPERIMENTS}[key]


# --- jobs: one seed of one experiment ---------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One seed of one experiment: its run folder, its result file, and its lock."""

    experiment: Experiment
    seed: int

    @property
    def run_name(self) -> str:
        return f"{self.experiment.group}--{self.experiment.name}--seed-{self.seed}"

    @property
    def result_path(self) -> Path:
        return RESULTS / self.experiment.group / self.experiment.name / f"seed-{self.seed}.json"

    @property
    def run_dir(self) -> Path:
        return RUNS / self.run_name


def queue(groups: tuple[str, ...] = tuple(GROUPS)) -> list[Job]:
    """Jobs in priority order: group by group, and inside a group seed by seed (interleaved)."""
    exps = [GROUPS[g].experiments for g in groups]
    return [Job(e, seed) for group in exps for seed in sorted({s for e in group for s in e.seeds})
            for e in group if seed in e.seeds]


def personality_ready() -> bool:
    return all((ROOT / PERSONALITY / name).is_file() for name in ("trait_head.json", "config.json"))


def train_args(job: Job) -> list[str]:
    exp = job.experiment
    args = ["train", *exp.budget.args(), *_items(exp.overrides), f"seeds={job.seed}"]
    if exp.uses_personality():
        untuned = exp.personality == "untuned"
        args.append(f"personality_encoder={UNTUNED_PERSONALITY if untuned else PERSONALITY}")
    return args


def try_lock(job: Job) -> IO[str] | None:
    """An exclusive lock on the job (an open file; close it to release), None if another queue
    holds it. The lock dies with the process, so a killed queue never leaves a job blocked."""
    RUNS.mkdir(parents=True, exist_ok=True)
    handle = open(RUNS / f".{job.run_name}.lock", "w")  # noqa: SIM115 - held past this function
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


# --- running one job ------------------------------------------------------------------------------


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_psamf(job: Job, *, deadline: float | None, lock: IO[str]) -> int | None:
    """Start or resume the job's run folder, streaming and timestamping its log; its exit code,
    or None if it was stopped at ``deadline`` (it resumes from its last checkpoint next time).

    The child inherits the job's lock, so a queue killed outright (OOM, SIGKILL) does not free the
    job for another queue while its orphaned ``psamf train`` is still writing the run folder."""
    run_dir = job.run_dir
    if run_dir.exists() and not (run_dir / runs.CONFIG_FILE).is_file():
        broken = run_dir.with_name(run_dir.name + f".broken-{int(time.time())}")
        print(f"[bench] {run_dir} has no config.yaml; moved to {broken.name}", flush=True)
        shutil.move(str(run_dir), broken)
    if run_dir.exists():
        args = ["train", "--resume", os.path.relpath(run_dir, ROOT), "--no-progress"]
    else:
        RUNS.mkdir(parents=True, exist_ok=True)
        args = [*train_args(job), "--out", os.path.relpath(RUNS, ROOT),
                "--name", job.run_name, "--no-progress"]
    command = "psamf " + shlex.join(args)
    LOGS.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
           "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}
    print(f"[bench] {job.experiment.key} seed {job.seed}: {command}", flush=True)
    stopped = threading.Event()
    with open(LOGS / f"{job.run_name}.log", "a", encoding="utf-8") as log:
        log.write(f"\n[bench {now()}] {command}\n")
        proc = subprocess.Popen([sys.executable, "-m", "psamf", *args], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1, pass_fds=(lock.fileno(),))

        def stop_at_deadline() -> None:
            if proc.poll() is None:
                stopped.set()
                proc.send_signal(signal.SIGTERM)

        timer = threading.Timer(max(0.0, (deadline or 0.0) - time.time()), stop_at_deadline)
        timer.daemon = True
        if deadline is not None:
            timer.start()
        try:
            for line in proc.stdout or ():
                log.write(line)
                log.flush()
                print(f"[bench]   {line.rstrip()}", flush=True)
            proc.wait()
        except BaseException:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait()
            raise
        finally:
            timer.cancel()
    return None if stopped.is_set() else proc.returncode


def _epoch_seconds(history: list[dict[str, Any]]) -> list[float]:
    """Seconds per epoch (training + validation) as the run recorded them in its metrics.json,
    from epoch 2 on (the first epoch of a process used to hold start-up, and RESULTS.md's
    medians have always left it out)."""
    return [round(sum(h["seconds"].values()), 2) for h in history[1:] if h.get("seconds")]


def _calls(run_dir: Path, sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every ``psamf train`` call on the run folder, from run.json's sessions. A folder started
    before psamf train recorded calls as they ran has the queue's own record of its calls in
    bench_attempts.json; sessions that started after its last call ended count on top."""
    legacy = run_dir / "bench_attempts.json"
    if not legacy.is_file():
        return sessions
    calls = [{"command": a["command"], "git_commit": a["commit"], "wall_seconds": a["wall_s"],
              "peak_memory_mib": {"rss": a["peak_rss_mib"]}, "started": a["started"]}
             for a in json.loads(legacy.read_text(encoding="utf-8"))]
    end = max(dt.datetime.fromisoformat(c["started"]).timestamp() + c["wall_seconds"]
              for c in calls)
    return calls + [s for s in sessions
                    if "started" in s and dt.datetime.fromisoformat(s["started"]).timestamp() > end]


def collect(job: Job) -> dict[str, Any] | None:
    """The result file's content, from a finished run folder (None if the seed has not finished):
    metrics and history from its metrics.json, the config as the run saved it (TrainConfig would
    fill keys added since with today's defaults), and from its run.json what P it used and the
    wall time, commits and memory of every call (``_calls``)."""
    metrics = runs.read_seed_metrics(job.run_dir, job.seed)
    if metrics is None:
        return None
    finished = (runs.seed_dir(job.run_dir, job.seed) / runs.METRICS_FILE).stat().st_mtime
    config = yaml.safe_load((job.run_dir / runs.CONFIG_FILE).read_text(encoding="utf-8"))
    run_info = json.loads((job.run_dir / runs.RUN_INFO).read_text(encoding="utf-8"))
    calls, exp = _calls(job.run_dir, run_info.get("sessions", [])), job.experiment
    p_encoder = config.get(runs.ENCODER_KEY) if exp.uses_personality() else None
    # What the run recorded when it computed P (newer runs' run.json); else the folder now.
    p_started = run_info.get("personality") or {}
    identity = None if p_encoder is None else p_started.get("identity")
    first = calls[0] if calls else {}
    resumed_first = "--resume" in first.get("command", "")
    return {
        "experiment": exp.key, "group": exp.group, "name": exp.name, "label": exp.label,
        "baseline": exp.baseline, "seed": job.seed,
        "dataset": config["data"]["name"],
        "dataset_sizes": run_info.get("dataset", {}).get("sizes"),
        "encoder": config["model"]["text_encoder"],
        "model_type": config["model"]["model_type"],
        "personality_encoder": p_encoder,
        "personality_pretrained": None if p_encoder is None else p_started.get(
            "pretrained", (ROOT / p_encoder / "trait_head.json").is_file()),
        # Which P produced this result: the encoder's content hash, pooling and length.
        "personality_identity": identity,
        "personality_identity_source": "none" if identity is None else "recorded",
        "personality_identity_note": (
            "" if identity is not None else "no P: this model does not use the personality encoder"
            if p_encoder is None else
            "not recorded by the run (its run.json predates identity recording)"),
        "budget": exp.budget.name,
        "command": run_info.get("command"),
        "resume_commands": [c["command"] for c in calls if "--resume" in c["command"]],
        "git_commit": first.get("git_commit", "unknown"),
        "git_commits": sorted({c.get("git_commit", "unknown") for c in calls}),
        "wall_s": round(sum(c.get("wall_seconds", 0.0) for c in calls), 2),
        "attempts": len(calls) + int(resumed_first),
        "wall_note": ("the first attempt was stopped before the runner recorded attempts "
                      "incrementally; its wall time is missing from wall_s and epoch_s"
                      if resumed_first else ""),
        "epoch_s": _epoch_seconds(metrics.get("history", [])),
        "peak_rss_mib": max((c["peak_memory_mib"]["rss"] for c in calls
                             if c["peak_memory_mib"].get("rss")), default=None),
        # When the run wrote its metrics, not when they were collected.
        "finished_at": dt.datetime.fromtimestamp(finished, dt.timezone.utc)
        .strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpus": os.cpu_count()},
        **{k: metrics.get(k) for k in ("best_epoch", "epochs_run", "stopped_early")},
        "test": metrics["test"], "valid": metrics["valid"],
        "history": metrics.get("history", []),
        "config": config,
        "run_dir": os.path.relpath(job.run_dir, ROOT),
    }


# --- after a result: RESULTS.md and git -----------------------------------------------------------


def regenerate_results() -> list[Path]:
    """Rewrite RESULTS.md and its figures; return their paths (what a result commit includes).

    A failure here is reported and skipped: the result file is already written and still gets
    committed, and the queue goes on (rerun benchmarks.make_results once it is fixed)."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.make_results"], cwd=ROOT)
    if done.returncode != 0:
        print(f"[bench] benchmarks.make_results failed (exit {done.returncode}); RESULTS.md not "
              "regenerated", flush=True)
        return []
    return [ROOT / "benchmarks" / "RESULTS.md",
            *sorted((ROOT / "benchmarks" / "figures").glob("*.png"))]


def commit_paths(paths: list[Path], message: str) -> None:
    """Commit exactly ``paths`` (retrying while another engineer holds the index lock)."""
    rel = [os.path.relpath(p, ROOT) for p in paths if p.exists()]
    for attempt in range(30):
        done = subprocess.run(["git", "-C", str(ROOT), "add", "--", *rel],
                              capture_output=True, text=True)
        if done.returncode == 0:
            done = subprocess.run(["git", "-C", str(ROOT), "commit", "-q", "-m", message, "--",
                                   *rel], capture_output=True, text=True)
            if done.returncode == 0 or "nothing" in done.stdout + done.stderr:
                return
        if "index.lock" not in done.stderr:
            print(f"[bench] git commit failed: {done.stderr.strip()}", flush=True)
            return
        time.sleep(2 + attempt)
    print("[bench] git index stayed locked; commit these files by hand: " + " ".join(rel))


# --- commands -------------------------------------------------------------------------------------


def _parse_deadline(text: str | None) -> float | None:
    """``HH:MM`` (UTC, today or tomorrow) or seconds from now, as an epoch time."""
    if text is None:
        return None
    try:
        if ":" not in text:
            return time.time() + float(text)
        hour, minute = (int(x) for x in text.split(":"))
        target = dt.datetime.now(dt.timezone.utc).replace(hour=hour, minute=minute, second=0,
                                                          microsecond=0)
    except ValueError:  # also an hour or minute out of range
        raise SystemExit(f"--deadline {text!r}: use HH:MM (UTC) or seconds from now") from None
    if target < dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=12):
        target += dt.timedelta(days=1)
    return target.timestamp()


def _selected(args: argparse.Namespace) -> list[Job]:
    """The queue's jobs, narrowed to ``--group``, ``--experiment`` and ``--seeds``."""
    groups = tuple(args.group or GROUPS)  # argparse checked the names
    jobs = queue(groups)
    if args.experiment:
        keys = {e.key for g in groups for e in GROUPS[g].experiments}
        if unknown := sorted(set(args.experiment) - keys):
            sys.exit(f"unknown experiment(s) {unknown} in the selected groups; choose from "
                     f"{sorted(keys)}")
        jobs = [j for j in jobs if j.experiment.key in args.experiment]
    if args.seeds:
        wanted = {int(s) for s in args.seeds.split(",")}
        jobs = [j for j in jobs if j.seed in wanted]
    return jobs


def cmd_list(args: argparse.Namespace) -> int:
    for job in _selected(args):
        state = ("done" if job.result_path.is_file() else
                 "started (resumable)" if job.run_dir.exists() else "queued")
        print(f"{state:20s} {job.experiment.key:40s} seed {job.seed}")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    """Rewrite the result files of finished runs from their run folders (after a harness fix)."""
    for job in _selected(args):
        if not (args.missing_only and job.result_path.is_file()) and (result := collect(job)):
            write_json(job.result_path, result)
            print(f"wrote {os.path.relpath(job.result_path, ROOT)}")
    return 0 if regenerate_results() else 1


def missing_data(jobs: list[Job]) -> list[Path]:
    """Dataset folders the jobs read that are not there (main() runs from ROOT, like psamf)."""
    root = default_data_root()
    return sorted(root / name for name in {job.experiment.budget.dataset for job in jobs}
                  if not (root / name).is_dir())


def cmd_run(args: argparse.Namespace) -> int:
    """Run the selected jobs not done yet, one at a time, each under its lock: collect a finished
    run folder, else start or resume it; write, report (and commit) each result as it lands."""
    deadline = _parse_deadline(args.deadline)
    jobs = _selected(args)
    if missing := missing_data([j for j in jobs if not j.result_path.is_file()]):
        print("[bench] data not found: " + ", ".join(str(m) for m in missing) + " (see "
              "../shared/data/README.md, or set PSAMF_DATA_ROOT)", flush=True)
        return 2
    failed: set[str] = set()
    waiting_logged = False
    while deadline is None or time.time() <= deadline:
        todo = [j for j in jobs if not j.result_path.is_file() and j.run_name not in failed]
        if not todo:
            if failed:
                print(f"[bench] {len(failed)} run(s) failed: {', '.join(sorted(failed))} (logs "
                      f"in {os.path.relpath(LOGS, ROOT)}); the rest is done", flush=True)
                return 1
            print("[bench] nothing left to run in the selected groups", flush=True)
            return 0
        ready = personality_ready()
        runnable = [j for j in todo if ready or j.run_dir.exists() or not (
            j.experiment.uses_personality() and j.experiment.personality == "pretrained")]
        if not runnable and not waiting_logged:
            print(f"[bench] waiting for {PERSONALITY}/trait_head.json (the PSA-MF runs left "
                  "need the pretrained personality encoder)", flush=True)
            waiting_logged = True
        if not runnable and args.no_wait:
            return 0
        # The first runnable job no other queue holds; none: wait for the encoder or a queue.
        job, lock = next(((j, lk) for j in runnable if (lk := try_lock(j))), (None, None))
        if job is None:
            time.sleep(30)
            continue
        with lock:
            if job.result_path.is_file():  # another queue finished it meanwhile
                continue
            if (result := collect(job)) is None:
                if (rc := run_psamf(job, deadline=deadline, lock=lock)) is None:
                    print(f"[bench] stopped {job.run_name} at the deadline; it will resume",
                          flush=True)
                    return 0
                if rc != 0 or (result := collect(job)) is None:
                    print(f"[bench] {job.run_name}: " + (
                        f"failed with exit code {rc}; see {LOGS / (job.run_name + '.log')}"
                        if rc != 0 else "no metrics.json after a clean exit"), flush=True)
                    failed.add(job.run_name)
                    continue
            write_json(job.result_path, result)
        test = result["test"]
        print(f"[bench] {job.experiment.key} seed {job.seed}: test MAE "
              f"{fmt('mae', test['mae'])} Acc-2 non0 {fmt('acc2_non0', test['acc2_non0'])} "
              f"(best epoch {result['best_epoch']}, {result['wall_s']:.0f} s) -> "
              f"{os.path.relpath(job.result_path, ROOT)}", flush=True)
        report = regenerate_results()
        if args.commit:
            commit_paths([job.result_path, *report],
                         f"benchmarks: {job.experiment.key} seed {job.seed} result")
    print("[bench] deadline reached; rerun the same command to continue", flush=True)
    return 0


def interrupt_on_signal(signum: int, _frame: Any) -> None:
    """SIGTERM/SIGHUP (session end, kill): stop the child run cleanly via KeyboardInterrupt."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    os.chdir(ROOT)  # the runs start here, so the data root and relative paths resolve as theirs
    signal.signal(signal.SIGTERM, interrupt_on_signal)
    signal.signal(signal.SIGHUP, interrupt_on_signal)
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("list", "run", "collect"):
        p = sub.add_parser(name)
        p.add_argument("--group", action="append", choices=list(GROUPS),
                       help="only these groups (repeatable; default all, in queue order)")
        p.add_argument("--experiment", action="append", metavar="GROUP/NAME",
                       help="only these experiments, e.g. design/align-layer-6 (repeatable; "
                            "default all of the selected groups)")
        p.add_argument("--seeds", default=None, help="only these seeds, e.g. 1,2")
    run = sub.choices["run"]
    run.add_argument("--deadline", default=None,
                     help="HH:MM UTC (or seconds from now): stop the current run there "
                          "(it resumes next time) and start nothing after it")
    run.add_argument("--commit", action="store_true",
                     help="git-commit each result file and RESULTS.md as they land")
    run.add_argument("--no-wait", action="store_true",
                     help="exit instead of waiting when only PSA-MF runs are left and the "
                          "personality encoder is missing")
    sub.choices["collect"].add_argument(
        "--missing-only", action="store_true",
        help="only runs finished whose result file is missing (default: rewrite all finished)")
    args = parser.parse_args(argv)
    try:
        return {"list": cmd_list, "run": cmd_run, "collect": cmd_collect}[args.command](args)
    except KeyboardInterrupt as stop:  # Ctrl-C or a signal: the child was already stopped
        print(f"[bench] stopped ({stop or 'interrupt'}); rerun the same command to resume",
              flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
