"""Training, evaluation and run folders for psamf.

``TrainConfig`` (+ ``PRESETS`` and ``apply_overrides``) describes a run; ``prepare`` turns it into
batches; ``Trainer`` trains one seed; ``train_run`` trains every seed of a run folder and writes
its summary; ``load_trained_model`` loads a run's selected checkpoint back.
"""

from psamf.training.config import DataConfig, OptimConfig, TrainConfig, apply_overrides, valid_keys
from psamf.training.prepare import Prepared, prepare
from psamf.training.presets import DEFAULT_PRESET, PRESETS, get_preset
from psamf.training.runs import create_run, load_config, load_trained_model, train_run
from psamf.training.trainer import Trainer, TrainingDivergedError, evaluate_split, predict_split

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "DataConfig",
    "OptimConfig",
    "Prepared",
    "TrainConfig",
    "Trainer",
    "TrainingDivergedError",
    "apply_overrides",
    "create_run",
    "evaluate_split",
    "get_preset",
    "load_config",
    "load_trained_model",
    "predict_split",
    "prepare",
    "train_run",
    "valid_keys",
]
