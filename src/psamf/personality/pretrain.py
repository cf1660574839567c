"""The personality pretraining recipe: fine-tune an encoder + TraitHead on First Impressions.

Recipe (defaults in ``PretrainConfig``, the one benchmarked): P = the mean of the last layer over
real tokens (or its first token) feeds a linear head with a sigmoid, started as the constant
predictor (zero weights, bias = logit of the training means); MSE loss; AdamW with two groups
(encoder lr, higher head lr), linear warmup then linear decay, gradient norm clipped at 1. After
each epoch the model is scored on the validation split; the epoch with the best validation mean
accuracy (1 - MAE) is kept. The test split is scored once, at the end, with the kept weights.

Empty transcripts are dropped from training (logged count); at evaluation every predictor gives
them the training means, so reported figures cover every clip of a split.

The loop is built from the parts sentiment training uses too (``psamf.training.loop``): the same
seeding, epoch order, ``LoopState`` in the training checkpoint, ``best/`` weights folder and
divergence error. Work in progress lives in ``<out>.partial/``: ``config.yaml`` (the resolved
config), ``baselines.json``, ``checkpoint/`` (after every epoch) and ``best/``.
``resume_pretraining(out)`` (CLI ``--resume OUT``) continues it from its saved config; running the
same config again continues it too. The finished folder is written atomically (with its
``config.yaml``) and the partial folder removed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from psamf.backbones import resolve_backbone
from psamf.checkpointing import (
    has_training_checkpoint,
    load_model_weights,
    load_training_checkpoint,
    save_training_checkpoint,
)
from psamf.data.dataset import PersonalityDataset, PersonalitySplit
from psamf.device import resolve_device
from psamf.errors import InputError, NotFoundError, TrainingDivergedError
from psamf.io import atomic_dir, recover_dir, write_json
from psamf.personality.baselines import frozen_ridge, nonempty_mask
from psamf.personality.config import PretrainConfig
from psamf.personality.head import TraitHead, pool
from psamf.personality.report import metrics_table, model_card
from psamf.progress import bars_enabled
from psamf.training.batching import PRETRAIN_STRIDE
from psamf.training.loop import (
    CHECKPOINT_DIR,
    LoopState,
    best_weights_file,
    check_loss,
    epoch_order,
    restore_best,
    save_best,
    set_seed,
)

CONFIG_FILE = "config.yaml"  # the resolved config, in the work folder and the finished output
log = logging.getLogger(__name__)

SELECTION = "validation acc_mean (mean over traits of 1 - MAE)"


class TraitModel(nn.Module):
    """Encoder + TraitHead: (input_ids, attention_mask) -> trait scores (B, n_traits)."""

    def __init__(self, encoder: nn.Module, head: TraitHead) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state  # (B, L, H)
        return self.head(pool(hidden, attention_mask, self.head.pooling))  # (B, n_traits)


# ----------------------------------------------------------------------------- data


def load_corpus(data: str | Path, limit: int | None = None) -> PersonalityDataset:
    """First Impressions from ``data``: the folder with the ChaLearn pickles, or a dataset name
    that ``psamf.data.load_dataset`` resolves (``first_impressions`` under the data root)."""
    from psamf.data import load_dataset, read_first_impressions

    path = Path(data)
    ds = read_first_impressions(path) if path.is_dir() else load_dataset(str(data))
    if not isinstance(ds, PersonalityDataset):
        raise InputError(f"{data}: not a personality corpus (expected First Impressions V2)")
    for name in ("train", "valid", "test"):
        if name not in ds.splits or len(ds.splits[name]) == 0:
            raise InputError(f"{data}: the corpus has no '{name}' split")
    if limit is not None:
        ds = dataclasses.replace(
            ds, splits={k: s.subset(np.arange(min(limit, len(s)))) for k, s in ds.splits.items()}
        )
    return ds


def _count_truncated(tokenizer, texts: list[str], max_tokens: int) -> int:
    lengths = [len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"]]
    return int(sum(n > max_tokens for n in lengths))


# ----------------------------------------------------------------------------- metrics


def _metrics(preds: np.ndarray, targets: np.ndarray, traits: tuple[str, ...]) -> dict[str, float]:
    from psamf.metrics import personality_metrics

    return {k: float(v) for k, v in personality_metrics(preds, targets, traits).items()}


@torch.no_grad()
def predict(
    model: TraitModel,
    tokenizer,
    split: PersonalitySplit,
    *,
    max_tokens: int,
    batch_size: int,
    device: torch.device,
) -> np.ndarray:
    """Trait predictions (N, n_traits) for a split; empty transcripts get the head's fallback."""
    model.eval()
    keep = np.flatnonzero(nonempty_mask(split.texts))
    out = np.tile(np.asarray(model.head.fallback, dtype=np.float32), (len(split), 1))
    for start in range(0, len(keep), batch_size):
        idx = keep[start : start + batch_size]
        batch = tokenizer(
            [split.texts[i] for i in idx], padding=True, truncation=True,
            max_length=max_tokens, return_tensors="pt",
        ).to(device)
        out[idx] = model(batch["input_ids"], batch["attention_mask"]).float().cpu().numpy()
    if not np.isfinite(out).all():
        raise TrainingDivergedError("the model produced NaN or inf trait scores; lower the lr")
    return out


# ----------------------------------------------------------------------------- training


def _build(config: PretrainConfig, means: np.ndarray, traits: tuple[str, ...]):
    from transformers import AutoModel, AutoTokenizer

    source = resolve_backbone(config.backbone)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        encoder = AutoModel.from_pretrained(source)
    except OSError as err:
        raise NotFoundError(
            f"backbone {config.backbone!r} ({source}): cannot load an encoder and tokenizer "
            f"({err}); pass --backbone minilm, a local model folder or a reachable hub id"
        ) from err
    hidden = getattr(encoder.config, "hidden_size", None)
    if not isinstance(hidden, int):
        raise InputError(f"backbone {config.backbone!r}: its config has no integer hidden_size")
    head = TraitHead(
        hidden_size=hidden, traits=traits, pooling=config.pooling, activation=config.activation
    )
    head.init_at(means.tolist())
    return source, tokenizer, TraitModel(encoder, head)


def _optimizer(model: TraitModel, config: PretrainConfig) -> torch.optim.Optimizer:
    """AdamW, groups by role: encoder matrices (decayed), encoder biases/norms, the head."""
    decay, no_decay = [], []
    for name, param in model.encoder.named_parameters():
        (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    groups = [
        {"name": "encoder", "params": decay, "lr": config.encoder_lr,
         "weight_decay": config.weight_decay},
        {"name": "encoder_no_decay", "params": no_decay, "lr": config.encoder_lr,
         "weight_decay": 0.0},
        {"name": "head", "params": list(model.head.parameters()), "lr": config.head_lr,
         "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups)


def _train_epoch(
    model: TraitModel,
    tokenizer,
    split: PersonalitySplit,
    optimizer: torch.optim.Optimizer,
    scheduler,
    config: PretrainConfig,
    loop: LoopState,
    device: torch.device,
) -> float:
    model.train()
    epoch = loop.epoch
    loss_fn = nn.MSELoss() if config.loss == "mse" else nn.L1Loss()
    order = np.asarray(epoch_order(len(split), seed=config.seed, epoch=epoch,
                                   stride=PRETRAIN_STRIDE), dtype=np.int64)
    total, count = 0.0, 0
    bar = tqdm(
        range(0, len(order), config.batch_size), desc=f"epoch {epoch + 1}/{config.epochs}",
        unit="batch", leave=False, dynamic_ncols=True, disable=not bars_enabled(),
    )
    for start in bar:
        idx = order[start : start + config.batch_size]
        batch = tokenizer(
            [split.texts[i] for i in idx], padding=True, truncation=True,
            max_length=config.max_tokens, return_tensors="pt",
        ).to(device)
        target = torch.as_tensor(split.targets[idx], device=device)
        loss = loss_fn(model(batch["input_ids"], batch["attention_mask"]).float(), target)
        check_loss(loss, epoch=epoch, step=loop.step_in_epoch,
                   fix="lower encoder_lr / head_lr, keep grad_clip > 0, or check the data")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        scheduler.step()
        loop.step_in_epoch += 1
        loop.global_step += 1
        total += loss.item() * len(idx)
        count += len(idx)
        bar.set_postfix(loss=f"{total / count:.4f}")
    return total / max(count, 1)


def _recipe(config: PretrainConfig, corpus: PersonalityDataset) -> dict[str, Any]:
    return {"config": dataclasses.asdict(config), "data": str(Path(corpus.source).resolve())}


def work_folder(out_dir: str | Path) -> Path:
    """``<out>.partial/``: where an unfinished run keeps its config, checkpoint and best weights."""
    out_dir = Path(out_dir)
    return out_dir.with_name(out_dir.name + ".partial")


def _prepare_work(work: Path, config: PretrainConfig, out_dir: Path) -> None:
    """Make the work folder with ``config.yaml``, or check that an existing one ran ``config``."""
    saved_path = work / CONFIG_FILE
    recover_dir(work / CHECKPOINT_DIR)
    if work.exists() and not saved_path.is_file() and any(work.iterdir()):
        raise InputError(
            f"{work}: an unfinished run without {CONFIG_FILE} (written by psamf before --resume "
            f"existed); finish it with that psamf version, or delete {work} to start again"
        )
    if saved_path.is_file():
        saved = PretrainConfig.load(saved_path)
        if saved != config:
            changed = sorted(k for k, v in config.to_dict().items() if saved.to_dict()[k] != v)
            raise InputError(
                f"{saved_path}: an unfinished run with other settings ({', '.join(changed)}) is in "
                f"{work}; continue it with psamf pretrain-personality --resume {out_dir}, or "
                "delete that folder to start again"
            )
        return
    work.mkdir(parents=True, exist_ok=True)
    config.save(saved_path)


def resume_pretraining(out_dir: str | Path, **kwargs: Any) -> dict[str, Any] | None:
    """Continue the unfinished run of ``out_dir`` (its ``<out>.partial/``) with its saved config;
    ``kwargs`` as for ``pretrain_personality``."""
    work = work_folder(out_dir)
    if not work.is_dir():
        done = " (it has finished: the folder exists)" if Path(out_dir).is_dir() else ""
        raise NotFoundError(f"{work}: no unfinished pretraining run to resume for {out_dir}"
                            f"{done}; start one without --resume")
    config = PretrainConfig.load(work / CONFIG_FILE)
    log.info("resuming %s with its saved config %s", out_dir, work / CONFIG_FILE)
    return pretrain_personality(config, out_dir, **kwargs)


def pretrain_personality(
    config: PretrainConfig,
    out_dir: str | Path,
    *,
    device: str | None = None,
    stop_after_epochs: int | None = None,
    finish_early: bool = False,
    command: str = "",
) -> dict[str, Any] | None:
    """Run the recipe on ``config.data``; return the metrics dict (also in ``<out>/metrics.json``).

    An unfinished run of the same config in ``<out>.partial/`` is continued (see
    ``resume_pretraining``); one with another config is refused.
    ``stop_after_epochs`` ends this call after that many epochs have completed (counting those
    resumed), leaving ``<out>.partial/`` for a later call to continue; it returns None then.
    ``finish_early`` trains no further: it writes the output from the best epoch among those
    already completed in ``<out>.partial/`` (the metrics record how many of the planned epochs
    ran; the learning-rate schedule was planned for all of them).
    """
    config.validate()
    started = time.time()
    out_dir = Path(out_dir)
    dev = resolve_device(device)
    corpus = load_corpus(config.data, config.limit)
    traits = tuple(corpus.traits)
    train, valid, test = (corpus.splits[k] for k in ("train", "valid", "test"))
    means = train.targets.mean(0).astype(np.float32)

    set_seed(config.seed)
    source, tokenizer, model = _build(config, means, traits)
    model.to(dev)

    # Only now, with data and backbone known to load, does the run leave anything on disk.
    work = work_folder(out_dir)
    _prepare_work(work, config, out_dir)
    recipe = _recipe(config, corpus)

    counts = {
        name: {
            "clips": len(split),
            "empty": int((~nonempty_mask(split.texts)).sum()),
            "truncated": _count_truncated(tokenizer, split.texts, config.max_tokens),
        }
        for name, split in corpus.splits.items()
        if name in ("train", "valid", "test")
    }
    for name, c in counts.items():
        log.info("%s: %d clips, %d empty transcripts, %d truncated to %d tokens",
                 name, c["clips"], c["empty"], c["truncated"], config.max_tokens)
    train_fit = train.subset(np.flatnonzero(nonempty_mask(train.texts)))
    log.info("training on %d clips (%d empty transcripts dropped)",
             len(train_fit), counts["train"]["empty"])

    baselines = _baselines(work, config, model, tokenizer, corpus, means, dev)

    optimizer = _optimizer(model, config)
    steps = config.epochs * -(-len(train_fit) // config.batch_size)
    from transformers import get_linear_schedule_with_warmup

    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup * steps), steps)

    loop = LoopState()
    checkpoint = work / CHECKPOINT_DIR
    if has_training_checkpoint(checkpoint):
        loop = LoopState.from_dict(load_training_checkpoint(
            checkpoint, model=model, optimizer=optimizer, scheduler=scheduler
        ))
        log.info("resuming from %s after epoch %d", checkpoint, loop.epoch)
        if restore_best(work, model, loop, valid_acc_mean=loop.best_metric):
            log.info("best/ missed epoch %d (stopped while writing it); restored it from the "
                     "checkpoint", loop.best_epoch)
    if finish_early:
        if loop.epoch == 0:
            raise NotFoundError(
                f"{checkpoint}: no completed epoch to finish from; run without --finish-early "
                "first"
            )
        log.info("finishing early after %d of %d epochs, as asked", loop.epoch, config.epochs)

    end = loop.epoch if finish_early else config.epochs
    while loop.epoch < end:
        if stop_after_epochs is not None and loop.epoch >= stop_after_epochs:
            log.info("stopping after epoch %d as asked; continue with psamf pretrain-personality "
                     "--resume %s", loop.epoch, out_dir)
            return None
        t0 = time.time()
        train_loss = _train_epoch(model, tokenizer, train_fit, optimizer, scheduler, config, loop,
                                  dev)
        valid_m = _metrics(
            predict(model, tokenizer, valid, max_tokens=config.max_tokens,
                    batch_size=config.eval_batch_size, device=dev),
            valid.targets, traits,
        )
        score = valid_m["acc_mean"]
        improved = loop.end_epoch(score, higher_is_better=True)
        loop.history.append({
            "epoch": loop.epoch + 1, "train_loss": train_loss, "valid_acc_mean": score,
            "valid_r2_mean": valid_m["r2_mean"], "seconds": round(time.time() - t0, 1),
        })
        log.info("epoch %d/%d: train %s %.5f, valid acc_mean %.4f r2_mean %.4f%s (%.0f s)",
                 loop.epoch + 1, config.epochs, config.loss, train_loss, score,
                 valid_m["r2_mean"], "  *best*" if improved else "", time.time() - t0)
        loop.next_epoch()
        # Checkpoint first: if the process dies before best/ is written, the checkpoint still
        # holds this epoch's weights and restore_best copies them on resume.
        save_training_checkpoint(checkpoint, model=model, optimizer=optimizer,
                                 scheduler=scheduler, loop_state=loop.to_dict())
        if improved:
            save_best(work, model, epoch=loop.best_epoch, valid_acc_mean=score)

    load_model_weights(model, best_weights_file(work))
    metrics = _final_metrics(model, tokenizer, corpus, means, baselines, config, dev)
    metrics.update({
        "selection": SELECTION, "best_epoch": loop.best_epoch, "history": loop.history,
        "epochs_completed": loop.epoch, "epochs_planned": config.epochs,
        "counts": counts, "seconds": round(time.time() - started, 1),
    })
    log.info("\n%s", metrics_table(metrics, traits))
    _write_output(out_dir, model, tokenizer, metrics, recipe, source, command, config)
    shutil.rmtree(work, ignore_errors=True)
    return metrics


def _baselines(work, config, model, tokenizer, corpus, means, dev) -> dict[str, Any]:
    """Constant and frozen+ridge predictions (valid/test), computed once and kept for resume."""
    path = work / "baselines.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    traits = tuple(corpus.traits)
    out: dict[str, Any] = {"constant": {}, "frozen_ridge": None}
    for name in ("valid", "test"):
        split = corpus.splits[name]
        out["constant"][name] = _metrics(np.tile(means, (len(split), 1)), split.targets, traits)
    if config.baselines:
        t0 = time.time()
        splits = {k: (corpus.splits[k].texts, corpus.splits[k].targets)
                  for k in ("train", "valid", "test")}
        preds, alpha = frozen_ridge(
            model.encoder, tokenizer, splits,
            metric=lambda p, t: _metrics(p, t, traits)["acc_mean"],
            max_tokens=config.max_tokens, batch_size=config.eval_batch_size, device=dev,
        )
        out["frozen_ridge"] = {
            name: _metrics(preds[name], corpus.splits[name].targets, traits)
            for name in ("valid", "test")
        }
        out["frozen_ridge"]["alpha"] = alpha
        log.info("frozen + ridge baseline: alpha %g (%.0f s)", alpha, time.time() - t0)
    write_json(path, out)
    return out


def _final_metrics(model, tokenizer, corpus, means, baselines, config, dev) -> dict[str, Any]:
    """Valid and test figures of every predictor; the only place the test split is scored."""
    traits = tuple(corpus.traits)
    result: dict[str, Any] = {"traits": list(traits), "train_means": means.tolist()}
    for name in ("valid", "test"):
        split = corpus.splits[name]
        preds = predict(model, tokenizer, split, max_tokens=config.max_tokens,
                        batch_size=config.eval_batch_size, device=dev)
        entry = {"clips": len(split), "constant": baselines["constant"][name],
                 "fine_tuned": _metrics(preds, split.targets, traits)}
        if baselines.get("frozen_ridge"):
            entry["frozen_ridge"] = baselines["frozen_ridge"][name]
        result[name] = entry
    if baselines.get("frozen_ridge"):
        result["ridge_alpha"] = baselines["frozen_ridge"]["alpha"]
    return result


def _write_output(out_dir, model, tokenizer, metrics, recipe, source, command, config) -> None:
    with atomic_dir(out_dir) as tmp:
        config.save(tmp / CONFIG_FILE)
        model.encoder.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        model.head.save(tmp)
        write_json(tmp / "metrics.json", metrics)
        write_json(tmp / "recipe.json", {**recipe, "backbone_source": source, "command": command})
        (tmp / "README.md").write_text(
            model_card(metrics, recipe, source=source, command=command), encoding="utf-8"
        )
    log.info("wrote %s", out_dir)
