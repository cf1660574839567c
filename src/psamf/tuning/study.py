"""One Optuna study shared by any number of ``psamf tune`` workers (processes or machines).

- Storage: an Optuna RDB URL, by default ``sqlite:///<study folder>/study.db``; PostgreSQL or
  MySQL URLs (``postgresql://user@host/db``) let workers on several machines share one study.
  Every worker opens it with ``load_if_exists``, so starting one more is just running the same
  command again.
- The trial budget N counts across all workers: a worker starts a trial only while fewer than N
  trials are complete, pruned, running or waiting (FAIL does not count: a failed trial is replaced
  or retried). For a SQLite file, that check and the trial's creation happen under a file lock
  beside the database, so workers on one machine finish exactly N between them. Other storages
  have no such lock: workers that finish trials at the same instant may start up to
  (workers - 1) trials beyond N.
- A killed worker leaves its trial RUNNING. With the heartbeat on (default every 60 s), a trial
  whose worker has not beaten for twice that long is marked FAIL by the next worker that looks,
  and re-queued with the same parameters (``--retries`` times; Optuna's
  RetryHeartbeatStaleTrialCallback).
  With the heartbeat off (``--heartbeat 0``) it stays RUNNING and keeps its place in N; so does
  a trial whose worker died before its first heartbeat (Optuna judges staleness from
  heartbeats only): mark it failed by hand (``optuna.Study.tell(number, state=FAIL)``).
- The sampler is TPE, seeded with ``--seed`` plus the number of trials created before it, so a
  single-worker study repeats exactly and concurrent workers never draw the same random
  start-up points.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psamf.errors import InputError

log = logging.getLogger(__name__)

STUDY_DB = "study.db"
PRUNERS: tuple[str, ...] = ("median", "none")


def require_optuna() -> Any:
    """The optuna module, or one line saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise InputError("psamf tune needs Optuna, which is not installed: pip install "
                         "'psamf[tune]' (or bash scripts/setup.sh)") from None
    return optuna


@dataclass(frozen=True)
class StudySettings:
    """How the study is stored and run (CLI options of ``psamf tune``; see the module doc).

    Fields:
        name: the study's name in the storage (workers sharing one use the same).
        folder: the study folder (trial run folders, exported preset, plots).
        storage: an Optuna RDB URL; None = ``sqlite:///<folder>/study.db``.
        trials: N, the trials the study should end with, over all workers.
        seed: the sampler's seed.
        pruner: ``median`` (MedianPruner) or ``none``.
        prune_warmup: epochs a trial always trains before it can be pruned.
        prune_startup: finished trials needed before any trial is pruned.
        heartbeat: seconds between a running trial's heartbeats (0 = off; see the module doc).
        retries: times a trial whose worker died is re-queued with the same parameters.
    """

    name: str
    folder: Path
    storage: str | None = None
    trials: int = 20
    seed: int = 0
    pruner: str = "median"
    prune_warmup: int = 1
    prune_startup: int = 2
    heartbeat: int = 60
    retries: int = 1

    def validate(self) -> None:
        if not self.name.strip():
            raise InputError("--study must name the study")
        for key, least in (("trials", 1), ("seed", 0), ("prune_warmup", 0),
                           ("prune_startup", 0), ("heartbeat", 0), ("retries", 0)):
            if getattr(self, key) < least:
                raise InputError(f"--{key.replace('_', '-')} must be >= {least}, "
                                 f"got {getattr(self, key)}")
        if self.pruner not in PRUNERS:
            raise InputError(f"--pruner must be one of {', '.join(PRUNERS)}, got {self.pruner!r}")

    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.folder / STUDY_DB).resolve()}"


def shown_url(url: str) -> str:
    """The storage URL with any password hidden (for logs and files)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is refused by open_storage with its own message
        return url


def _sqlite_file(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def open_storage(settings: StudySettings) -> Any:
    """The RDB storage, with the heartbeat and retry policy of ``settings``."""
    optuna = require_optuna()
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    url = settings.storage_url()
    sqlite = _sqlite_file(url) if "://" in url else None
    if sqlite is not None:
        sqlite.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():  # heartbeat and retry are marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=settings.retries) if settings.heartbeat and settings.retries else None
            return optuna.storages.RDBStorage(
                url,
                # several workers write one SQLite file: wait for its lock rather than fail
                engine_kwargs={"connect_args": {"timeout": 60}} if sqlite is not None else None,
                heartbeat_interval=settings.heartbeat or None,
                heartbeat_stale_trial_callback=retry,
            )
    except ArgumentError as err:
        raise InputError(f"--storage {shown_url(url)}: not a database URL Optuna can open "
                         f"({err}); e.g. sqlite:///study.db or postgresql://user@host/db"
                         ) from None
    except ImportError as err:
        raise InputError(f"--storage {shown_url(url)}: its database driver is not installed "
                         f"({err}); e.g. pip install psycopg2-binary or pymysql") from None
    except SQLAlchemyError as err:
        raise InputError(f"--storage {shown_url(url)}: cannot open it ({err})") from None


def make_pruner(settings: StudySettings) -> Any:
    optuna = require_optuna()
    if settings.pruner == "none":
        return optuna.pruners.NopPruner()
    # Epoch k (the step reported, 1-based) is compared with the median of the other trials'
    # epoch k; Optuna prunes from step n_warmup_steps on, so after prune_warmup epochs.
    return optuna.pruners.MedianPruner(n_startup_trials=settings.prune_startup,
                                       n_warmup_steps=settings.prune_warmup + 1)


def open_study(settings: StudySettings, identity: dict[str, Any]) -> Any:
    """Create the study or join it. ``identity`` (the search space and the base config) is
    recorded by the first worker; a worker started with another one is refused, since its trials
    would not belong to the same search."""
    import contextlib

    from filelock import FileLock

    optuna = require_optuna()
    # Workers starting together on one new SQLite file would each create its tables (Optuna's
    # schema set-up is not safe to race: one fails on alembic_version) and race on the identity:
    # the file lock beside the database makes them take turns.
    sqlite = _sqlite_file(settings.storage_url())
    if sqlite is not None:
        sqlite.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{sqlite}.lock") if sqlite is not None else contextlib.nullcontext():
        return _open_study(optuna, settings, identity)


def _open_study(optuna: Any, settings: StudySettings, identity: dict[str, Any]) -> Any:
    study = optuna.create_study(
        study_name=settings.name, storage=open_storage(settings), direction="minimize",
        load_if_exists=True, pruner=make_pruner(settings),
        sampler=optuna.samplers.TPESampler(seed=settings.seed),
    )
    for key, value in identity.items():
        recorded = study.user_attrs.get(key)
        if recorded is None:
            study.set_user_attr(key, value)
        elif recorded != value:
            raise InputError(
                f"study {settings.name!r} in {shown_url(settings.storage_url())} was started with "
                f"another {key.replace('_', ' ')} ({recorded!r}); run this worker with the same "
                "options, or start another --study")
    return study


# Trials that hold a place in the budget N (FAIL does not: it is retried or replaced).
def _counted_states() -> tuple[Any, ...]:
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


class CreationLock:
    """Held from the budget check until the new trial exists (the objective's first line
    releases it); a file lock for a SQLite study, nothing for other storages."""

    def __init__(self, sqlite_file: Path | None) -> None:
        from filelock import FileLock

        self._lock = FileLock(f"{sqlite_file}.lock") if sqlite_file is not None else None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if self._lock is not None:
            self._lock.acquire()
        try:
            yield
        finally:
            self.release()

    def release(self) -> None:
        if self._lock is not None and self._lock.is_locked:
            self._lock.release()


def work(study: Any, settings: StudySettings,
         objective: Callable[[Any, CreationLock], float]) -> int:
    """Run trials until the study holds ``settings.trials`` counted trials (see the module doc);
    return how many this worker ran. ``objective(trial, lock)`` must ``lock.release()`` first."""
    optuna = require_optuna()
    lock = CreationLock(_sqlite_file(settings.storage_url()))
    counted = _counted_states()
    ran = 0
    while True:
        with lock.held():
            if settings.heartbeat:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)  # a dead worker's trial: FAIL, retry
            trials = study.get_trials(deepcopy=False)
            waiting = any(t.state == optuna.trial.TrialState.WAITING for t in trials)
            if sum(t.state in counted for t in trials) >= settings.trials and not waiting:
                break
            # Seeded per trial: reproducible alone, and distinct draws across workers.
            study.sampler = optuna.samplers.TPESampler(seed=settings.seed + len(trials))
            study.optimize(lambda trial: objective(trial, lock), n_trials=1,
                           gc_after_trial=True)
        ran += 1
    return ran
