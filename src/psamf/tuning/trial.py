"""One trial of ``psamf tune``: the base config with the sampled settings, trained by the one
trainer into its own run folder, on train and validation only.

The trial's value is the validation MAE of the checkpoint the trainer selects (its best epoch).
After every epoch the trainer's ``on_epoch`` hook reports that epoch's validation MAE to Optuna,
and the pruner may end the trial there (state PRUNED). A run that diverges (NaN loss) is pruned
too, which TPE reads as a bad region. The test split is dropped when the data is read
(``prepare(test=False)``) and never evaluated (``evaluate_test=False``); the trial folder is an
ordinary run folder, so ``psamf evaluate`` can test the chosen trial once the search is over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from psamf.errors import TrainingDivergedError
from psamf.training.config import TrainConfig, apply_overrides
from psamf.training.prepare import prepare
from psamf.training.records import EpochRecord
from psamf.training.runs import create_run, train_run
from psamf.tuning.space import Dimension, suggest
from psamf.tuning.study import CreationLock, require_optuna

log = logging.getLogger(__name__)


def trial_folder(study_folder: Path, number: int) -> Path:
    return study_folder / f"trial-{number:04d}"


def make_objective(
    base: TrainConfig, space: tuple[Dimension, ...], dataset: Any, folder: Path, *, command: str
) -> Callable[[Any, CreationLock], float]:
    """The objective ``study.work`` calls: ``dataset`` is read once per worker and shared."""
    optuna = require_optuna()

    def objective(trial: Any, lock: CreationLock) -> float:
        lock.release()  # the trial exists: other workers may check the budget again
        params = suggest(space, trial)
        config = apply_overrides(base, params)
        run = trial_folder(folder, trial.number)
        trial.set_user_attr("run", str(run))
        prepared = prepare(config, dataset, test=False)
        create_run(run, prepared.config, command=command, prepared=prepared)
        log.info("trial %d: %s -> %s", trial.number,
                 " ".join(f"{k}={v}" for k, v in params.items()), run)

        def report(record: EpochRecord) -> None:
            mae = record.valid["mae"]
            trial.report(mae, record.epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {record.epoch}: validation MAE {mae:.4f}, "
                                         "worse than the median of the other trials")

        try:
            summary = train_run(run, prepared, on_epoch=report, evaluate_test=False)
        except TrainingDivergedError as err:
            trial.set_user_attr("diverged", str(err))
            raise optuna.TrialPruned(f"diverged: {err}") from None
        return float(summary["mean"]["mae"])

    return objective
