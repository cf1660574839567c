"""Benchmarks on real CMU-MOSI and CMU-MOSEI: a resumable queue of ``psamf train`` runs.

Every experiment is one ``psamf train`` run of one seed. Its result lands in
``benchmarks/results/<group>/<name>/seed-<k>.json`` (test + valid metrics of the checkpoint chosen
on validation MAE, per-epoch history, the exact command, seed, encoders, git commit, wall time);
``python -m benchmarks.make_results`` turns those files into ``benchmarks/RESULTS.md``.

Budgets, experiments and groups are records declared below and checked when this module is
imported: each experiment's settings are resolved into the ``TrainConfig`` its runs will use
(the registered preset, then the budget's and the experiment's ``key=value`` overrides), so a
typo fails at ``list``, not hours into a queue. Whether a model reads P comes from that config.

The queue skips experiments whose result file exists and resumes interrupted run folders
(``psamf train --resume``), so rerunning the same command continues where the last session
stopped. One queue runs its jobs one at a time; several queues may run side by side (say two
with ``OMP_NUM_THREADS=1`` on a 2-core machine): each job is locked while it runs, so a second
queue takes the next free one. PSA-MF runs wait for the pretrained
personality encoder (``artifacts/personality-minilm`` with its trait head); meanwhile the queue
runs the next job that does not need it. Two experiments deliberately give P from the plain
(untuned) MiniLM, to measure what personality pretraining adds: ``-mean`` pools it like the
pretrained encoder (one change); the first pooled its first token (two changes). Results record
the encoder and its content identity (``personality_identity``: hash, pooling, length).

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
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from benchmarks.stats import fmt
from psamf.data import default_data_root
from psamf.errors import InputError
from psamf.io import write_json
from psamf.provenance import git_commit
from psamf.training import runs
from psamf.training.config import (
    DEFAULT_PERSONALITY_ENCODER,
    TrainConfig,
    apply_overrides,
    parse_overrides,
)
from psamf.training.presets import get_preset

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RUNS = ROOT / "artifacts" / "bench-runs"
LOGS = ROOT / "artifacts" / "bench-logs"
PERSONALITY = DEFAULT_PERSONALITY_ENCODER  # relative: runs start in ROOT
UNTUNED_PERSONALITY = "minilm"


# --- budgets, experiments, groups -----------------------------------------------------------------


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
        return ("--preset", self.preset, "--data", self.dataset,
                *(f"{k}={v}" for k, v in self.settings.items()))

    def config(self, overrides: dict[str, str] | None = None) -> TrainConfig:
        """The resolved config, as ``psamf train`` builds it from these arguments."""
        items = [f"{k}={v}" for k, v in {**self.settings, **(overrides or {})}.items()]
        return apply_overrides(get_preset(self.preset),
                               {"data.name": self.dataset, **parse_overrides(items)})

    def but(self, name: str, key: str, value: str) -> Budget:
        """This budget with setting ``key`` (which it must have, so that a changed base cannot
        silently leave a variant equal to it) set to ``value``."""
        if key not in self.settings:
            raise InputError(f"budget {self.name!r} has no setting {key!r}")
        return dataclasses.replace(self, name=name, settings={**self.settings, key: value})


# The same for PSA-MF and its baseline. The authors' presets (batch 256/128, up to 100 epochs)
# take days on a 2-core CPU; these converge in minutes (MOSI MiniLM) to hours. Checkpoint = best
# validation MAE; ReduceLROnPlateau and early stopping on validation MAE.
_CPU = {"batch_size": "32", "eval_batch_size": "64", "optim.lr_encoder": "5e-5",
        "optim.lr_other": "5e-4"}


def _budget(name: str, dataset: str, encoder: str, epochs: int, plateau: int,
            stop: int) -> Budget:
    return Budget(name, dataset, {"model.text_encoder": encoder, "epochs": str(epochs), **_CPU,
                                  "optim.plateau_patience": str(plateau),
                                  "early_stopping_patience": str(stop)})


_MOSI_MINILM = _budget("mosi-minilm", "mosi", "minilm", epochs=10, plateau=1, stop=3)
_MOSI_MPNET = _budget("mosi-mpnet", "mosi", "mpnet", epochs=6, plateau=1, stop=2)
BUDGETS: dict[str, Budget] = {b.name: b for b in (
    _MOSI_MINILM, _MOSI_MPNET,
    _budget("mosei-minilm", "mosei", "minilm", epochs=4, plateau=0, stop=2),
    # PSA-MF on MPNet was still improving on validation at epoch 6 (best epochs 5, 6, 5; text-only
    # 5, 3, 2): the same comparison with 10 epochs for both (benchmarks/explorations.md).
    _MOSI_MPNET.but("mosi-mpnet-10ep", "epochs", "10"),
    # PSA-MF on the MiniLM reached a lower validation MAE with the encoder at lr 1e-4 on each of
    # seeds 1-3 (2e-4 was worse on seed 1; benchmarks/explorations.md): the same at 1e-4.
    _MOSI_MINILM.but("mosi-minilm-lr1e-4", "optim.lr_encoder", "1e-4"),
)}


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
        if self.personality not in ("pretrained", "untuned"):
            raise InputError(f"experiment {self.key}: personality must be 'pretrained' or "
                             f"'untuned', not {self.personality!r}")
        try:
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

    def waits_for_personality(self) -> bool:
        return self.uses_personality() and self.personality == "pretrained"


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
    """Experiments that RESULTS.md reports together. ``main``: position among the main
    comparisons (None: a section of deltas from full PSA-MF, with ``intro``)."""

    name: str
    title: str
    main: int | None = None
    intro: str = ""
    goal: Goal | None = None


PSAMF = {"model.model_type": "psamf"}
TEXT_ONLY = {"model.model_type": "text_finetune"}
MOSI_SEEDS = (1, 2, 3, 4, 5)
FEW_SEEDS = (1, 2, 3)
FULL = "mosi-minilm/psamf"


def _pair(group: str, budget: str, seeds: tuple[int, ...], what: str,
          psamf_label: str | None = None) -> tuple[Experiment, Experiment]:
    """PSA-MF and text-only fine-tuning on the same budget and seeds."""
    return (Experiment(group, "psamf", psamf_label or f"PSA-MF ({what})", BUDGETS[budget], PSAMF,
                       seeds, baseline=f"{group}/text-finetune"),
            Experiment(group, "text-finetune", f"text-only fine-tuning ({what})",
                       BUDGETS[budget], TEXT_ONLY, seeds))


def _design(name: str, label: str, overrides: dict[str, str], notes: str,
            **extra: Any) -> Experiment:
    return Experiment("design", name, label, _MOSI_MINILM, {**PSAMF, **overrides}, MOSI_SEEDS,
                      baseline=FULL, notes=notes, **extra)


_UNTUNED_NOTE = "default: personality-pretrained MiniLM, mean-pooled"
EXPERIMENTS: tuple[Experiment, ...] = (
    *_pair("mosi-minilm", "mosi-minilm", MOSI_SEEDS, "MiniLM"),
    # The paper's ablations: each removes one component (config flags of PSAMFConfig).
    *(Experiment("ablation", name, label, _MOSI_MINILM, {**PSAMF, f"model.{flag}": "false"},
                 MOSI_SEEDS, baseline=FULL)
      for name, label, flag in (
          ("no-personality", "w/o personality features", "use_personality"),
          ("no-prefusion", "w/o pre-fusion", "use_prefusion"),
          ("no-enhanced-fusion", "w/o enhanced fusion", "use_enhanced_fusion"),
          ("no-ps-loss", "w/o L_ps", "use_ps_loss"),
          ("no-clm-loss", "w/o L_clm", "use_clm_loss"),
      )),
    # Design choices the paper leaves open, on full PSA-MF's 5 seeds. They first ran 3 seeds
    # each; seeds 4-5 were added for every setting at once (before any of them ran), because
    # full PSA-MF's seed 3 is poor and moved every 3-seed delta the same way.
    _design("fusion-layer-fresh", "fusion layer N re-initialised (authors' code)",
            {"model.fusion_layer_init": "fresh"}, "default: pretrained layer N"),
    # Its seeds 4-5 ran first (their validation MAE had beaten the first token's on each of
    # seeds 1-3, making it a candidate set-up for the goals: GROUPS["mosi-minilm"].goal).
    _design("sentence-pooling-mean", "M, c and s mean-pooled (how the MiniLM was trained)",
            {"model.sentence_pooling": "mean"}, "default: first token (the paper)"),
    _design("contrastive-scale-learned", "contrastive scale learned",
            {"model.contrastive_scale": "learned"}, "default: fixed ln(1/0.07)"),
    # P from the plain MiniLM (no personality pretraining): does the pretraining matter? The
    # untuned folder has no trait_head.json, so personality_pooling=auto reads its first token,
    # while the pretrained encoder mean-pools: this first run changed two things at once. Kept
    # (its commands are recorded as run) and labelled so; the "-mean" run changes one thing.
    _design("psamf-untuned-personality",
            "P from the untuned MiniLM, first-token pooled (two changes: no pretraining, and "
            "first-token instead of mean pooling)", {}, _UNTUNED_NOTE, personality="untuned"),
    _design("psamf-untuned-personality-mean",
            "P from the untuned MiniLM, mean-pooled (no personality pretraining; pooling as "
            "the pretrained encoder)", {"personality_pooling": "mean"}, _UNTUNED_NOTE,
            personality="untuned"),
    # Alignment hidden state: MiniLM has 6 layers (states 0..6); default 5 (= round(10/12 * 6)),
    # 6 reads layer N's output, i.e. after pre-fusion.
    *(_design(f"align-layer-{layer}", f"alignment at hidden state {layer}",
              {"model.align_layer": str(layer)}, "default: hidden state 5 of 0..6")
      for layer in (1, 2, 3, 4, 6)),
    *_pair("mosei-minilm", "mosei-minilm", FEW_SEEDS, "MiniLM",
           psamf_label="PSA-MF text + personality (MiniLM)"),
    *_pair("mosi-mpnet", "mosi-mpnet", FEW_SEEDS, "MPNet"),
    *_pair("mosi-mpnet-10ep", "mosi-mpnet-10ep", FEW_SEEDS, "MPNet, 10 epochs"),
    *_pair("mosi-minilm-lr1e-4", "mosi-minilm-lr1e-4", MOSI_SEEDS, "MiniLM, encoder lr 1e-4"),
)

# In queue order. Further goal candidates are declared before their last seeds run: the 10-epoch
# MPNet budget (PSA-MF still improving at epoch 6) and mean pooling for the MiniLM (lower
# validation MAE than the first token on each of its first 3 seeds).
_GROUPS = (
    Group("mosi-minilm",
          "CMU-MOSI, MiniLM-L6 (text + audio; PSA-MF vs text-only fine-tuning)", main=0,
          goal=Goal("MiniLM", (
              ("mosi-minilm/psamf", "mosi-minilm/text-finetune", "PSA-MF (MiniLM)"),
              ("design/sentence-pooling-mean", "mosi-minilm/text-finetune",
               "PSA-MF (MiniLM, M/c/s mean-pooled)"),
              ("mosi-minilm-lr1e-4/psamf", "mosi-minilm-lr1e-4/text-finetune",
               "PSA-MF (MiniLM, encoder lr 1e-4)")), (("acc2_non0", 85.0), ("mae", 0.74)))),
    Group("ablation", "The paper's ablations",
          intro="Each variant removes one component (a flag of `PSAMFConfig`); same budget and "
                "seeds as full PSA-MF."),
    Group("design", "Design choices the paper leaves open",
          intro="Full PSA-MF uses: pretrained fusion layer N, fixed contrastive scale "
                "ln(1/0.07), alignment at hidden state 5 of MiniLM's 0..6, P from the "
                "personality-pretrained MiniLM, mean-pooled. `psamf-untuned-personality` "
                "changed two things at once (no pretraining, and first-token instead of mean "
                "pooling, the untuned folder having no trait head); it is kept as run and "
                "labelled so. `psamf-untuned-personality-mean` changes only the pretraining."),
    Group("mosei-minilm",
          "CMU-MOSEI, MiniLM-L6 (text only; PSA-MF text + personality vs text-only)", main=4),
    Group("mosi-mpnet",
          "CMU-MOSI, MPNet-base (text + audio; PSA-MF vs text-only fine-tuning)", main=2,
          goal=Goal("MPNet", (
              ("mosi-mpnet/psamf", "mosi-mpnet/text-finetune", "PSA-MF (MPNet)"),
              ("mosi-mpnet-10ep/psamf", "mosi-mpnet-10ep/text-finetune",
               "PSA-MF (MPNet, 10 epochs)")), (("acc2_non0", 86.5), ("mae", 0.68)))),
    Group("mosi-mpnet-10ep",
          "CMU-MOSI, MPNet-base, 10 epochs (the same comparison, longer budget)", main=3),
    Group("mosi-minilm-lr1e-4",
          "CMU-MOSI, MiniLM-L6, encoder lr 1e-4 (the same comparison)", main=1),
)
GROUPS: dict[str, Group] = {g.name: g for g in _GROUPS}


def experiment(key: str) -> Experiment:
    for exp in EXPERIMENTS:
        if exp.key == key:
            return exp
    raise KeyError(key)


def members(group: str) -> list[Experiment]:
    return [e for e in EXPERIMENTS if e.group == group]


def _check_declarations() -> None:
    """Cross-references between the records: unique keys, known groups, baselines and goal
    set-ups, and one budget per group (its comparison table prints one)."""
    keys = [e.key for e in EXPERIMENTS]
    if len(set(keys)) != len(keys):
        raise InputError(f"experiments declared twice: {sorted(keys)}")
    refs = {e.baseline for e in EXPERIMENTS if e.baseline} | {
        k for g in GROUPS.values() if g.goal for c in g.goal.candidates for k in c[:2]}
    unknown = sorted({e.group for e in EXPERIMENTS} - set(GROUPS)) + sorted(refs - set(keys))
    if unknown:
        raise InputError(f"unknown group(s) or experiment(s) referenced: {unknown}")
    for name in GROUPS:
        if len({e.budget.name for e in members(name)}) != 1:
            raise InputError(f"group {name!r} mixes budgets; give each budget its own group")


_check_declarations()


@dataclass(frozen=True)
class Job:
    experiment: Experiment
    seed: int

    @property
    def result_path(self) -> Path:
        return RESULTS / self.experiment.group / self.experiment.name / f"seed-{self.seed}.json"

    @property
    def run_name(self) -> str:
        return f"{self.experiment.group}--{self.experiment.name}--seed-{self.seed}"

    @property
    def run_dir(self) -> Path:
        return RUNS / self.run_name

    @property
    def dataset(self) -> str:
        return self.experiment.budget.dataset


def queue(groups: tuple[str, ...] = tuple(GROUPS)) -> list[Job]:
    """Jobs in priority order: group by group, and inside a group seed by seed (interleaved)."""
    jobs: list[Job] = []
    for group in groups:
        exps = members(group)
        for seed in sorted({s for e in exps for s in e.seeds}):
            jobs.extend(Job(e, seed) for e in exps if seed in e.seeds)
    return jobs


# --- helpers --------------------------------------------------------------------------------------


def personality_ready() -> bool:
    return (ROOT / PERSONALITY / "trait_head.json").is_file() and \
        (ROOT / PERSONALITY / "config.json").is_file()


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def train_args(job: Job) -> list[str]:
    exp = job.experiment
    args = ["train", *exp.budget.args(), *(f"{k}={v}" for k, v in exp.overrides.items()),
            f"seeds={job.seed}"]
    if exp.uses_personality():
        untuned = exp.personality == "untuned"
        args.append(f"personality_encoder={UNTUNED_PERSONALITY if untuned else PERSONALITY}")
    return args


# --- running one job ------------------------------------------------------------------------------

ATTEMPTS_FILE = "bench_attempts.json"


@dataclass
class Attempt:
    command: str
    commit: str
    started: str
    wall_s: float = 0.0
    rc: int | None = None
    # What the wall time depends on besides the code: torch threads and how busy the machine was.
    omp_threads: str | None = field(default_factory=lambda: os.environ.get("OMP_NUM_THREADS"))
    load_at_start: float = field(default_factory=lambda: round(os.getloadavg()[0], 2))
    peak_rss_mib: float | None = None  # of the psamf train process (rusage), once it has ended

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _attempts(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / ATTEMPTS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def _save_attempt(run_dir: Path, attempt: Attempt, index: int) -> None:
    items = _attempts(run_dir)
    if index < len(items):
        items[index] = attempt.as_dict()
    else:
        items.append(attempt.as_dict())
    write_json(run_dir / ATTEMPTS_FILE, items)


class DeadlineReached(Exception):
    """The run was stopped at --deadline; it resumes from its last checkpoint next time."""


def try_lock(job: Job) -> Any | None:
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


def wait_peak_rss(proc: subprocess.Popen) -> float | None:
    """Wait for ``proc``; its peak resident memory in MiB (None if another wait reaped it)."""
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:  # the deadline timer's poll() got there first
        proc.wait()
        return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    # Linux reports kilobytes; a child's figure starts from the queue's own size at fork
    # (~0.3 GiB), far below a training run's.
    return round(usage.ru_maxrss / 1024, 1)


def run_psamf(job: Job, *, deadline: float | None, lock: Any) -> int:
    """Start or resume the job's run folder; stream and timestamp its log; return its exit code.

    The child inherits the job's lock, so a queue killed outright (OOM, SIGKILL) does not free the
    job for another queue while its orphaned ``psamf train`` is still writing the run folder."""
    run_dir = job.run_dir
    if run_dir.exists() and not (run_dir / "config.yaml").is_file():
        broken = run_dir.with_name(run_dir.name + f".broken-{int(time.time())}")
        print(f"[bench] {run_dir} has no config.yaml; moved to {broken.name}", flush=True)
        shutil.move(str(run_dir), broken)
    if run_dir.exists():
        args = ["train", "--resume", os.path.relpath(run_dir, ROOT), "--no-progress"]
    else:
        RUNS.mkdir(parents=True, exist_ok=True)
        args = [*train_args(job), "--out", os.path.relpath(RUNS, ROOT),
                "--name", job.run_name, "--no-progress"]
    command = "psamf " + " ".join(shlex.quote(a) for a in args)
    LOGS.mkdir(parents=True, exist_ok=True)
    log_path = LOGS / f"{job.run_name}.log"
    env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
           "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1"}
    attempt = Attempt(command=command, commit=git_commit(), started=now())
    index = len(_attempts(run_dir)) if run_dir.exists() else None
    print(f"[bench] {job.experiment.key} seed {job.seed}: {command}", flush=True)
    start = time.monotonic()
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n[bench {now()}] {command}\n")
        proc = subprocess.Popen([sys.executable, "-m", "psamf", *args], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1, pass_fds=(lock.fileno(),))
        assert proc.stdout is not None
        stopped = threading.Event()

        def stop_at_deadline() -> None:
            if proc.poll() is None:
                stopped.set()
                proc.send_signal(signal.SIGTERM)

        timer = None
        if deadline is not None:
            timer = threading.Timer(max(0.0, deadline - time.time()), stop_at_deadline)
            timer.daemon = True
            timer.start()
        try:
            for line in proc.stdout:
                elapsed = time.monotonic() - start
                log.write(line)
                log.flush()
                print(f"[bench]   {line.rstrip()}", flush=True)
                if run_dir.exists():  # keep the record current: a session may end any time
                    if index is None:
                        index = len(_attempts(run_dir))
                    attempt.wall_s = round(elapsed, 2)
                    _save_attempt(run_dir, attempt, index)
            attempt.peak_rss_mib = wait_peak_rss(proc)
        except BaseException:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait()
            raise
        finally:
            if timer is not None:
                timer.cancel()
            attempt.wall_s = round(time.monotonic() - start, 2)
            attempt.rc = proc.returncode
            if run_dir.exists():
                if index is None:
                    index = len(_attempts(run_dir))
                _save_attempt(run_dir, attempt, index)
    if stopped.is_set():
        raise DeadlineReached(job.run_name)
    return proc.returncode


def _epoch_seconds(history: list[dict[str, Any]]) -> list[float]:
    """Seconds per epoch (training + validation) as the run recorded them in its metrics.json,
    from epoch 2 on (the first epoch of a process used to hold start-up, and RESULTS.md's
    medians have always left it out)."""
    return [round(sum(h["seconds"].values()), 2) for h in history[1:] if h.get("seconds")]


def collect(job: Job) -> dict[str, Any] | None:
    """Build the result JSON from a finished run folder (None if the seed has not finished)."""
    metrics = runs.read_seed_metrics(job.run_dir, job.seed)
    if metrics is None:
        return None
    metrics_path = runs.seed_dir(job.run_dir, job.seed) / runs.METRICS_FILE
    import yaml

    # The file as the run saved it: TrainConfig would fill keys added since with today's defaults.
    config = yaml.safe_load((job.run_dir / runs.CONFIG_FILE).read_text(encoding="utf-8"))
    run_info = json.loads((job.run_dir / "run.json").read_text(encoding="utf-8"))
    attempts = _attempts(job.run_dir)
    exp = job.experiment
    p_encoder = config.get("personality_encoder") if exp.uses_personality() else None
    # What the run recorded when it computed P (newer runs' run.json); else the folder now.
    p_started = run_info.get("personality") or {}
    p_pretrained = None
    if p_encoder is not None:
        p_pretrained = p_started.get("pretrained",
                                     (ROOT / p_encoder / "trait_head.json").is_file())
    identity, identity_source, identity_note = p_started.get("identity"), "recorded", ""
    if p_encoder is None:
        identity, identity_source = None, "none"
        identity_note = "no P: this model does not use the personality encoder"
    elif identity is None:  # a run folder from before runs recorded it (run.json)
        identity_source = "none"
        identity_note = "not recorded by the run (its run.json predates identity recording)"
    first = attempts[0] if attempts else {}
    resumed_first = "--resume" in first.get("command", "")
    return {
        "experiment": exp.key,
        "group": exp.group,
        "name": exp.name,
        "label": exp.label,
        "baseline": exp.baseline,
        "seed": job.seed,
        "dataset": config["data"]["name"],
        "dataset_sizes": run_info.get("dataset", {}).get("sizes"),
        "encoder": config["model"]["text_encoder"],
        "model_type": config["model"]["model_type"],
        "personality_encoder": p_encoder,
        "personality_pretrained": p_pretrained,
        # Which P produced this result: the encoder's content hash, pooling and length.
        "personality_identity": identity,
        "personality_identity_source": identity_source,
        "personality_identity_note": identity_note,
        "budget": exp.budget.name,
        "command": run_info.get("command"),
        "resume_commands": [a["command"] for a in attempts if "--resume" in a["command"]],
        "git_commit": first.get("commit", "unknown"),
        "git_commits": sorted({a.get("commit", "unknown") for a in attempts}),
        "wall_s": round(sum(a.get("wall_s", 0.0) for a in attempts), 2),
        "attempts": len(attempts) + int(resumed_first),
        "wall_note": ("the first attempt was stopped before the runner recorded attempts "
                      "incrementally; its wall time is missing from wall_s and epoch_s"
                      if resumed_first else ""),
        "epoch_s": _epoch_seconds(metrics.get("history", [])),
        "peak_rss_mib": max((a["peak_rss_mib"] for a in attempts if a.get("peak_rss_mib")),
                            default=None),
        "finished_at": dt.datetime.fromtimestamp(metrics_path.stat().st_mtime, dt.timezone.utc)
        .strftime("%Y-%m-%dT%H:%M:%SZ"),  # when the run wrote its metrics, not when collected
        "machine": {"cpus": os.cpu_count()},
        "best_epoch": metrics.get("best_epoch"),
        "epochs_run": metrics.get("epochs_run"),
        "stopped_early": metrics.get("stopped_early"),
        "test": metrics["test"],
        "valid": metrics["valid"],
        "history": metrics.get("history", []),
        "config": config,
        "run_dir": os.path.relpath(job.run_dir, ROOT),
    }


# --- git ------------------------------------------------------------------------------------------


def commit_paths(paths: list[Path], message: str) -> None:
    """Commit exactly ``paths`` (retrying while another engineer holds the index lock)."""
    rel = [os.path.relpath(p, ROOT) for p in paths if p.exists()]
    for attempt in range(30):
        add = subprocess.run(["git", "-C", str(ROOT), "add", "--", *rel],
                             capture_output=True, text=True)
        if add.returncode == 0:
            done = subprocess.run(["git", "-C", str(ROOT), "commit", "-q", "-m", message, "--",
                                   *rel], capture_output=True, text=True)
            if done.returncode == 0 or "nothing" in done.stdout + done.stderr:
                return
            err = done.stderr
        else:
            err = add.stderr
        if "index.lock" not in err:
            print(f"[bench] git commit failed: {err.strip()}", flush=True)
            return
        time.sleep(2 + attempt)
    print("[bench] git index stayed locked; commit these files by hand: " + " ".join(rel))


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


# --- commands -------------------------------------------------------------------------------------


def _parse_deadline(text: str | None) -> float | None:
    """``HH:MM`` (UTC, today or tomorrow) or seconds from now, as an epoch time."""
    if text is None:
        return None
    try:
        if ":" not in text:
            return time.time() + float(text)
        hour, minute = (int(x) for x in text.split(":"))
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError
    except ValueError:
        raise SystemExit(f"--deadline {text!r}: use HH:MM (UTC) or seconds from now") from None
    nowdt = dt.datetime.now(dt.timezone.utc)
    target = nowdt.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target < nowdt - dt.timedelta(hours=12):
        target += dt.timedelta(days=1)
    return target.timestamp()


def _selected(args: argparse.Namespace) -> list[Job]:
    groups = tuple(args.group) if args.group else tuple(GROUPS)  # argparse checked the names
    jobs = queue(groups)
    if args.experiment:
        keys = {e.key for e in EXPERIMENTS if e.group in groups}
        unknown = sorted(set(args.experiment) - keys)
        if unknown:
            sys.exit(f"unknown experiment(s) {unknown} in the selected groups; choose from "
                     f"{sorted(keys)}")
        jobs = [j for j in jobs if j.experiment.key in args.experiment]
    if args.seeds:
        wanted = {int(s) for s in args.seeds.split(",")}
        jobs = [j for j in jobs if j.seed in wanted]
    return jobs


def cmd_list(args: argparse.Namespace) -> int:
    for job in _selected(args):
        if job.result_path.is_file():
            state = "done"
        elif job.run_dir.exists():
            state = "started (resumable)"
        else:
            state = "queued"
        print(f"{state:20s} {job.experiment.key:40s} seed {job.seed}")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    """Rewrite the result files of finished runs from their run folders (after a harness fix)."""
    for job in _selected(args):
        if args.missing_only and job.result_path.is_file():
            continue
        result = collect(job)
        if result is not None:
            write_json(job.result_path, result)
            print(f"wrote {os.path.relpath(job.result_path, ROOT)}")
    return 0 if regenerate_results() else 1


def _jobs_todo(jobs: list[Job]) -> list[Job]:
    return [job for job in jobs if not job.result_path.is_file()]


def missing_data(jobs: list[Job]) -> list[Path]:
    """Dataset folders the jobs read that are not there (main() runs from ROOT, like psamf)."""
    root = default_data_root()
    return sorted(root / name for name in {job.dataset for job in jobs}
                  if not (root / name).is_dir())


def cmd_run(args: argparse.Namespace) -> int:
    deadline = _parse_deadline(args.deadline)
    jobs = _selected(args)
    if missing := missing_data(_jobs_todo(jobs)):
        print("[bench] data not found: " + ", ".join(str(m) for m in missing) + " (see "
              "../shared/data/README.md, or set PSAMF_DATA_ROOT)", flush=True)
        return 2
    failed: set[str] = set()
    waiting_logged = False
    while True:
        if deadline is not None and time.time() > deadline:
            print("[bench] deadline reached; rerun the same command to continue", flush=True)
            return 0
        todo = [j for j in _jobs_todo(jobs) if j.run_name not in failed]
        if not todo:
            if failed:
                print(f"[bench] {len(failed)} run(s) failed: {', '.join(sorted(failed))} (logs "
                      f"in {os.path.relpath(LOGS, ROOT)}); the rest is done", flush=True)
                return 1
            print("[bench] nothing left to run in the selected groups", flush=True)
            return 0
        runnable = [j for j in todo if not j.experiment.waits_for_personality()
                    or personality_ready() or j.run_dir.exists()]
        if not runnable:
            if not waiting_logged:
                print(f"[bench] waiting for {PERSONALITY}/trait_head.json (the PSA-MF runs left "
                      "need the pretrained personality encoder)", flush=True)
                waiting_logged = True
            if args.no_wait:
                return 0
            time.sleep(30)
            continue
        job, lock = None, None
        for candidate in runnable:
            lock = try_lock(candidate)
            if lock is not None:
                job = candidate
                break
        if job is None:  # every runnable job is being run by another queue
            time.sleep(30)
            continue
        with lock:
            if job.result_path.is_file():  # another queue finished it since we listed
                continue
            result = collect(job)
            if result is None:
                try:
                    rc = run_psamf(job, deadline=deadline, lock=lock)
                except DeadlineReached:
                    print(f"[bench] stopped {job.run_name} at the deadline; it will resume",
                          flush=True)
                    return 0
                if rc != 0:
                    print(f"[bench] {job.run_name} failed with exit code {rc}; see "
                          f"{LOGS / (job.run_name + '.log')}", flush=True)
                    failed.add(job.run_name)
                    continue
                result = collect(job)
                if result is None:
                    print(f"[bench] {job.run_name}: no metrics.json after a clean exit",
                          flush=True)
                    failed.add(job.run_name)
                    continue
            write_json(job.result_path, result)
        test = result["test"]
        print(f"[bench] {job.experiment.key} seed {job.seed}: test MAE "
              f"{fmt('mae', test['mae'])} Acc-2 non0 {fmt('acc2_non0', test['acc2_non0'])} "
              f"(best epoch {result['best_epoch']}, "
              f"{result['wall_s']:.0f} s) -> {os.path.relpath(job.result_path, ROOT)}",
              flush=True)
        report = regenerate_results()
        if args.commit:
            commit_paths([job.result_path, *report],
                         f"benchmarks: {job.experiment.key} seed {job.seed} result")
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
    commands = {"list": cmd_list, "run": cmd_run, "collect": cmd_collect}
    try:
        return commands[args.command](args)
    except KeyboardInterrupt as stop:  # Ctrl-C or a signal: the child was already stopped
        print(f"[bench] stopped ({stop or 'interrupt'}); rerun the same command to resume",
              flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
