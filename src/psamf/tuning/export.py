"""What a study leaves beside its database: the best trial as a preset, a record, the plots.

- ``best_preset.yaml``: the base config with the best trial's parameters, in the saved-config
  layout ``psamf train --preset FILE`` reads (it reproduces that trial's config; the run folder's
  ``config.yaml`` has the data-dependent widths filled in on top).
- ``study.json``: every trial (number, state, value, parameters, run folder, per-epoch validation
  MAE) and the best one.
- ``optimization_history.png``, ``param_importances.png`` (Optuna's default PED-ANOVA evaluator,
  needs two or more complete trials), ``intermediate_values.png`` (per-epoch validation MAE: what
  the pruner compared).

Every worker writes them when it stops, each file atomically; the last worker's are final.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from psamf.io import write_json, write_text
from psamf.training.config import TrainConfig, apply_overrides
from psamf.training.plots import pyplot, save_png
from psamf.tuning.study import require_optuna, shown_url

log = logging.getLogger(__name__)

BEST_PRESET = "best_preset.yaml"
STUDY_RECORD = "study.json"
TARGET = "validation MAE"
# file -> (optuna.visualization.matplotlib function, keyword arguments)
PLOTS: dict[str, tuple[str, dict[str, Any]]] = {
    "optimization_history.png": ("plot_optimization_history", {"target_name": TARGET}),
    "param_importances.png": ("plot_param_importances", {"target_name": TARGET}),
    "intermediate_values.png": ("plot_intermediate_values", {}),
}


def best_config(study: Any, base: TrainConfig) -> TrainConfig:
    """The base config with the best trial's parameters (Optuna's names are the dotted keys)."""
    return apply_overrides(base, dict(study.best_trial.params))


def _trial_record(trial: Any) -> dict[str, Any]:
    return {"number": trial.number, "state": trial.state.name, "value": trial.value,
            "params": trial.params, "run": trial.user_attrs.get("run"),
            "valid_mae_by_epoch": {str(k): v for k, v in sorted(trial.intermediate_values.items())},
            **({"diverged": trial.user_attrs["diverged"]} if "diverged" in trial.user_attrs
               else {})}


def export_study(study: Any, base: TrainConfig, folder: Path, storage_url: str) -> Path | None:
    """Write the files above into ``folder``; return the preset's path (None: no trial has
    completed yet, so there is no best trial and only study.json is written)."""
    optuna = require_optuna()
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    record: dict[str, Any] = {
        "study": study.study_name, "storage": shown_url(storage_url),
        "direction": "minimize validation MAE",
        "states": {}, "best": None, "trials": [_trial_record(t) for t in study.trials],
    }
    for trial in study.trials:
        record["states"][trial.state.name] = record["states"].get(trial.state.name, 0) + 1
    preset = None
    if complete:
        best = study.best_trial
        record["best"] = _trial_record(best)
        preset = folder / BEST_PRESET
        header = (f"# psamf tune: the best trial of study {study.study_name!r} "
                  f"(trial {best.number} of {len(study.trials)}, validation MAE "
                  f"{best.value:.4f}).\n# Use it with: psamf train --preset {preset}\n")
        write_text(preset, header + best_config(study, base).to_yaml())
    else:
        log.info("no trial has completed yet: no best preset or plots")
    write_json(folder / STUDY_RECORD, record)
    if complete:
        _plots(study, folder)
    return preset


def _plots(study: Any, folder: Path) -> None:
    optuna = require_optuna()
    plt = pyplot()  # the Agg backend before Optuna imports pyplot
    from optuna.visualization import matplotlib as optuna_plots

    for name, (function, kwargs) in PLOTS.items():
        try:
            with warnings.catch_warnings():  # the matplotlib plots are marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                axes = getattr(optuna_plots, function)(study, **kwargs)
        except (ValueError, RuntimeError) as err:  # e.g. importances of a single complete trial
            log.info("%s not drawn: %s", name, err)
            continue
        fig = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        save_png(fig, folder / name)
        plt.close(fig)
