"""Run folders: create, train every seed, summarise, resume, and load back for evaluation.

Layout of ``runs/<name>/``::

    config.yaml             the resolved TrainConfig (``personality_encoder=auto`` already resolved)
    run.json                command line, dataset, psamf version, git commit, the encoder that gave
                            P (as configured, its absolute folder and its content identity), each
                            train call's wall time, peak memory and how it ended (``sessions``,
                            kept current while the call runs: see ``run_info``)
    summary.{md,csv,json}   per-seed test/valid metrics and mean ± std (json: + P's identity)
    seed-<k>/
        best/model.safetensors, best/state.json   weights chosen on validation MAE
        checkpoint/         training state while the seed runs (removed once it has finished)
        metrics.json        valid + test metrics of the best weights (marks the seed done), and
                            per epoch: losses, validation metrics, learning rates, seconds; and
                            which encoder gave P (its identity, whether it was pretrained)

What a run needs besides its folder: the text backbone named in config.yaml (its architecture and
tokenizer; the weights come from the run) and the personality encoder that gave P. The encoder is
looked up as configured (relative to the current folder), then at the absolute folder run.json
recorded; when both are gone, ``personality_encoder=PATH`` points at a copy, which must have the
identity run.json recorded (``locate_personality_encoder``).
        predictions_test.csv, test_scatter.png, test_confusion7.png, learning_curves.png
        tensorboard/        scalars per epoch
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psamf import __version__
from psamf.backbones import is_short_name
from psamf.data import part_indices
from psamf.data.combine import is_combination, part_name, split_names
from psamf.errors import AlreadyExistsError, InputError, NotFoundError, NotWritableError
from psamf.io import write_json, write_text
from psamf.metrics import grouped_regression_metrics
from psamf.provenance import git_commit
from psamf.training.config import TrainConfig
from psamf.training.distributed import SINGLE, World
from psamf.training.plots import curves, write_plots
from psamf.training.prepare import Prepared, prepare
from psamf.training.records import EpochRecord, SeedResult
from psamf.training.reports import SYNTHETIC_BANNER, summarize, write_summary
from psamf.training.trainer import BEST_DIR, CHECKPOINT_DIR, METRICS_FILE, Trainer

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
RUN_INFO = "run.json"
ENCODER_KEY = "personality_encoder"


def seed_dir(run: str | Path, seed: int) -> Path:
    return Path(run) / f"seed-{seed}"


def check_writable(folder: str | Path) -> None:
    """Refuse, before anything is written, a folder that cannot be created or written."""
    folder = Path(folder)
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise NotWritableError(
            f"{folder}: cannot create this folder because {probe} is a file; "
            "choose a writable folder (--out)"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise NotWritableError(
            f"{folder}: cannot create or write there (no write permission on {probe}); "
            "choose a writable folder (--out)"
        )


def default_run_name(config: TrainConfig, stamp: str) -> str:
    name = config.data.name
    if is_combination(name, config.data.root):  # DIR1+DIR2 -> the folders' own names
        data = "+".join(part_name(n) for n in split_names(name))
    else:
        data = Path(name.rstrip("/")).name or "data"
    return f"{config.preset}-{data}-{config.model.model_type}-{stamp}"


def create_run(
    folder: str | Path, config: TrainConfig, *, command: str, prepared: Prepared
) -> Path:
    """Make the run folder (it must not exist yet) with its config and run.json."""
    folder = Path(folder)
    if folder.exists():
        raise AlreadyExistsError(
            f"{folder}: run folder already exists; continue it with --resume {folder} or choose "
            "another --name"
        )
    try:
        folder.mkdir(parents=True)
    except OSError as err:
        raise NotWritableError(f"{folder}: cannot create the run folder ({err.strerror})") from err
    config.save(folder / CONFIG_FILE)
    dataset = prepared.dataset
    write_json(folder / RUN_INFO, {
        "command": command,
        "psamf_version": __version__,
        "git_commit": git_commit(),
        "dataset": {"name": dataset.name, "source": dataset.source,
                    "synthetic": dataset.synthetic,
                    "feature_profile": dataset.profile,
                    "sizes": {k: len(v) for k, v in prepared.raw.items()},
                    **({"parts": list(dataset.parts)} if dataset.parts else {})},
        "personality": prepared.personality,
    })
    return folder


def recorded_feature_profile(run: str | Path) -> dict[str, Any] | None:
    """run.json's feature profile of the data the run was trained on (None: not extracted by
    psamf extract, or a run made before profiles were recorded)."""
    path = Path(run) / RUN_INFO
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    dataset = info.get("dataset") if isinstance(info, dict) else None
    return dataset.get("feature_profile") if isinstance(dataset, dict) else None


def recorded_personality(run: str | Path) -> dict[str, Any] | None:
    """run.json's record of the encoder that gave P (None: no P, or a folder without run.json)."""
    path = Path(run) / RUN_INFO
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("personality")
    except (json.JSONDecodeError, AttributeError) as err:
        raise InputError(f"{path}: not valid JSON ({err}); restore it from a backup") from err


def locate_personality_encoder(
    run: str | Path, config: TrainConfig, override: str | None = None, *,
    how: str = f"{ENCODER_KEY}=PATH",
) -> TrainConfig:
    """``config`` with ``personality_encoder`` pointing at a copy of the run's encoder that exists
    here: ``override`` if given, else as configured (relative to the current folder), else the
    absolute folder run.json recorded. Whether it is the *same* encoder is checked once it is
    loaded (``personality_check``). ``how``: how the command takes the override, for messages."""
    if not config.uses_personality():
        if override is not None:
            raise InputError(f"{run}: this run's model uses no personality encoder; drop "
                             f"{how.split()[0]}")
        return config
    if override is not None:
        chosen = override
    else:
        recorded = recorded_personality(run) or {}
        configured = config.personality_encoder
        chosen = configured
        if not (is_short_name(configured) or Path(configured).expanduser().is_dir()):
            saved = recorded.get("path")
            was_folder = saved or str(recorded.get("identity", "")).startswith("sha256-")
            if saved and Path(saved).is_dir():
                log.info("personality encoder %s is not under %s; using %s (recorded in %s)",
                         configured, Path.cwd(), saved, RUN_INFO)
                chosen = saved
            elif was_folder:
                where = f" nor at {saved}" if saved and saved != configured else ""
                raise NotFoundError(
                    f"{Path(run) / RUN_INFO}: the run's personality encoder folder {configured} "
                    f"is gone (not under {Path.cwd()}{where}); pass {how} naming a "
                    f"copy of it (identity {recorded.get('identity')})"
                )
    return dataclasses.replace(config, personality_encoder=chosen)


def personality_check(
    run: str | Path, *, how: str = f"{ENCODER_KEY}=PATH"
) -> Callable[[Any], None]:
    """A ``check`` for ``prepare`` / ``personality_embeddings``: the encoder must be the one the
    run's P came from (same content identity), else P would silently change under the model."""
    recorded = recorded_personality(run) or {}

    def check(encoder: Any) -> None:
        want = recorded.get("identity")
        if want and encoder.identity != want:
            raise InputError(
                f"{Path(run) / RUN_INFO}: the run's P came from personality encoder "
                f"{recorded.get('encoder')} (identity {want}), but {encoder.path} has identity "
                f"{encoder.identity} (replaced or a different encoder); restore that encoder or "
                f"pass {how} naming a copy of it, or start a new run"
            )

    return check


def encoder_override(overrides: list[str]) -> tuple[str | None, list[str]]:
    """(PATH from a ``personality_encoder=PATH`` among ``overrides``, the other overrides)."""
    path, rest = None, []
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and key.strip() == ENCODER_KEY:
            if not value.strip():
                raise InputError(f"{item}: give the encoder folder, {ENCODER_KEY}=PATH")
            path = value.strip()
        else:
            rest.append(item)
    return path, rest


def load_config(run: str | Path) -> TrainConfig:
    run = Path(run)
    if not run.is_dir():
        raise NotFoundError(f"{run}: no such run folder")
    return TrainConfig.load(run / CONFIG_FILE)


def _write_seed_outputs(folder: Path, result: SeedResult, prepared: Prepared, name: str) -> None:
    if not result.test:  # trained without the test split (a tuning trial): no test outputs
        record = result.to_dict()
        curves(folder / "learning_curves.png", record["history"], f"{name}: learning curves")
        write_json(folder / METRICS_FILE, record)
        shutil.rmtree(folder / CHECKPOINT_DIR, ignore_errors=True)
        return
    preds = result.predictions
    test = prepared.raw["test"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "label", "prediction"])
    for uid, label, pred in zip(test.ids, test.labels, preds["test"], strict=True):
        writer.writerow([uid, repr(float(label)), repr(float(pred))])
    write_text(folder / "predictions_test.csv", buffer.getvalue())
    record = result.to_dict()
    write_plots(folder, preds=preds["test"], labels=test.labels, history=record["history"],
                name=name)
    write_json(folder / METRICS_FILE, record)  # last: its presence marks the seed finished
    shutil.rmtree(folder / CHECKPOINT_DIR, ignore_errors=True)


def _p_record(prepared: Prepared) -> dict[str, Any] | None:
    """Which P produced a result file's numbers (as run.json records it; None: no P)."""
    info = prepared.personality
    if info is None:
        return None
    return {k: info.get(k) for k in ("encoder", "identity", "pretrained")}


def _write_summary(run: Path, done: list[dict[str, Any]], prepared: Prepared,
                   header: str) -> dict[str, Any]:
    summary = write_summary(run, done, header=header)
    path = run / "summary.json"  # reports.py writes the tables; the P record is added here
    record = json.loads(path.read_text(encoding="utf-8"))
    record["personality"] = _p_record(prepared)
    write_json(path, record)
    return summary


def _test_by_dataset(prepared: Prepared, result: SeedResult) -> dict[str, Any] | None:
    """For datasets joined by ``+``: each one's test metrics (same checkpoint, its utterances)."""
    if not prepared.dataset.parts:
        return None
    test = prepared.raw["test"]
    return grouped_regression_metrics(result.predictions["test"], test.labels,
                                      part_indices(test.ids, prepared.dataset.parts))


def read_seed_metrics(run: str | Path, seed: int) -> dict[str, Any] | None:
    path = seed_dir(run, seed) / METRICS_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def train_run(
    run: str | Path,
    prepared: Prepared,
    *,
    world: World = SINGLE,
    on_step: Callable[[int], None] | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    evaluate_test: bool = True,
) -> dict[str, Any]:
    """Train (or finish) every seed of the run in ``run``; return the test summary (under DDP:
    every rank trains, rank 0 writes and returns it, the others return {}).

    ``on_epoch``: see ``Trainer``. ``evaluate_test=False`` (hyper-parameter search): the test
    split is never evaluated (``prepared`` may lack it), each seed folder gets ``metrics.json``
    (empty ``test``) and its learning curves but no test predictions or summary files, and the
    validation summary is returned instead."""
    run = Path(run)
    rank = world.rank
    config = prepared.config
    header = f"**{SYNTHETIC_BANNER}**" if prepared.dataset.synthetic else ""
    header += f"\n\nRun `{run.name}`: dataset {prepared.dataset.name}, model "
    header += f"{config.model.model_type} ({config.model.text_encoder}), preset {config.preset}"
    done: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for seed in config.seeds:
        existing = read_seed_metrics(run, seed)
        if existing is not None:
            log.info("seed %d: already finished, skipping", seed)
            done.append(existing)
            continue
        folder = seed_dir(run, seed)
        trainer = Trainer(config, prepared.splits, seed=seed, folder=folder, world=world,
                          on_step=on_step, on_epoch=on_epoch, evaluate_test=evaluate_test)
        result = trainer.fit()
        result = dataclasses.replace(result, personality=_p_record(prepared),
                                     test_by_dataset=_test_by_dataset(prepared, result))
        if rank == 0:
            _write_seed_outputs(folder, result, prepared, f"{run.name} seed {seed}")
        if rank == 0 and not evaluate_test:
            log.info("seed %d: valid MAE %.4f (best epoch %d; test not evaluated)", seed,
                     result.valid["mae"], result.best_epoch)
        elif rank == 0:
            log.info("seed %d: test MAE %.4f, Acc-2 non0 %.2f (best epoch %d)", seed,
                     result.test["mae"], result.test["acc2_non0"], result.best_epoch)
            for part, metrics in (result.test_by_dataset or {}).items():
                log.info("seed %d: test on %s alone (%d): MAE %.4f, Acc-2 non0 %.2f", seed,
                         part, metrics["utterances"], metrics["mae"], metrics["acc2_non0"])
        done.append(result.to_dict())  # as metrics.json holds it, like the seeds read back
        if rank == 0 and evaluate_test:
            summary = _write_summary(run, done, prepared, header.strip())
    if not evaluate_test:
        return summarize(done, "valid")
    if rank == 0 and not summary:
        summary = _write_summary(run, done, prepared, header.strip())
    return summary


def best_weights(run: str | Path, seed: int) -> Path:
    path = seed_dir(run, seed) / BEST_DIR / "model.safetensors"
    if not path.is_file():
        raise NotFoundError(
            f"{path}: no selected checkpoint for seed {seed}; has this seed trained at least one "
            "epoch? (continue the run with psamf train --resume)"
        )
    return path


def load_trained_model(run: str | Path, seed: int | None = None, *,
                       device: str | torch.device = "cpu"):
    """(config, seed, model in eval mode) with the seed's best-on-validation weights."""
    from psamf.checkpointing import load_model_weights
    from psamf.models import build_model

    config = load_config(run)
    if seed is None:
        seed = config.seeds[0]
    elif seed not in config.seeds:
        raise InputError(
            f"seed {seed} is not part of run {run}; its seeds are {list(config.seeds)}"
        )
    weights = best_weights(run, seed)
    model = build_model(config.model)
    load_model_weights(model, weights)
    return config, seed, model.to(device).eval()


def prepare_for_run(run: str | Path, *, personality_encoder: str | None = None) -> Prepared:
    """The run's data, prepared as at training time from its saved, resolved config, with P from
    the run's own encoder (found as ``locate_personality_encoder`` says)."""
    config = locate_personality_encoder(run, load_config(run), personality_encoder)
    return prepare(config, check_personality=personality_check(run))


def quiet_transformers(verbose: bool = False) -> None:
    """Hide transformers' and huggingface_hub's progress bars (weight loading, downloads) in CLI
    output: kept with ``psamf -v``, but never drawn into a log file (stderr not a terminal)."""
    from psamf.progress import bars_enabled

    if verbose and bars_enabled():
        return
    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    disable_progress_bars()
