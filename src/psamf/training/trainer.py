"""One trainer for every dataset and model variant.

``Trainer.fit()`` trains one seed: Adam (coupled weight decay) over the model's role-based parameter
groups, gradient clipping, ReduceLROnPlateau and early stopping on validation MAE, a training
checkpoint at every epoch end (and every K steps if asked) from which ``fit()`` resumes exactly,
and the best-on-validation weights kept apart. The test split is evaluated once, at the end, on
that checkpoint; every reported metric comes from it.

Under torchrun (``world``, see ``psamf.training.distributed``) the same loop runs in every
process on its share of each global batch, with the model wrapped in DDP; evaluation is shared out
and gathered, and only rank 0 writes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils import clip_grad_norm_
from torch.optim.lr_scheduler import ReduceLROnPlateau
from tqdm.auto import tqdm

from psamf.checkpointing import (
    has_training_checkpoint,
    load_model_weights,
    load_training_checkpoint,
    save_training_checkpoint,
)
from psamf.device import resolve_device
from psamf.errors import TrainingDivergedError
from psamf.metrics import regression_metrics
from psamf.progress import bars_enabled
from psamf.training.batching import EncodedSplit, batches_of, make_loader, to_device
from psamf.training.config import TrainConfig
from psamf.training.distributed import SINGLE, BatchGather, World, gather_in_order, share
from psamf.training.loop import (
    BEST_DIR,
    CHECKPOINT_DIR,
    LoopState,
    best_weights_file,
    check_loss,
    epoch_order,
    restore_best,
    save_best,
    set_seed,
)
from psamf.training.precision import (
    autocast,
    check_compile,
    check_precision,
    compile_model,
    grad_scaler,
)
from psamf.training.records import EpochRecord, SeedResult

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
__all__ = ["BEST_DIR", "CHECKPOINT_DIR", "METRICS_FILE", "Trainer", "evaluate_split",
           "predict_split", "set_seed"]


@dataclass
class Timers:
    """Wall-clock seconds by phase (overhead benchmark); ``compute`` = forward/backward/step."""

    compute: float = 0.0
    train_loop: float = 0.0
    eval_compute: float = 0.0
    eval_loop: float = 0.0
    checkpoint: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        return {"compute": self.compute, "train_loop": self.train_loop,
                "eval_compute": self.eval_compute, "eval_loop": self.eval_loop,
                "checkpoint": self.checkpoint, **self.extra}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def predict_split(
    model: torch.nn.Module,
    data: EncodedSplit,
    *,
    batch_size: int,
    device: torch.device,
    timers: Timers | None = None,
    world: World = SINGLE,
    precision: str = "fp32",
) -> np.ndarray:
    """Predictions (N,) for a split, in order, in eval mode; fp32 whatever ``precision`` the
    forward pass autocasts to. Under DDP (``world``) the batches are dealt round-robin to the
    ranks and every rank gets all predictions back; ``model`` is the bare module, not the DDP
    wrapper (whose forward would sync buffers, a collective the ranks, running different numbers
    of batches, could not match)."""
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    batches = batches_of(range(len(data)), batch_size)
    numbers = range(world.rank, len(batches), world.size)
    out: list[tuple[int, np.ndarray]] = []
    loader = make_loader(data, [batches[i] for i in numbers], seed=0)
    for number, batch in zip(numbers, loader, strict=True):
        batch = to_device(batch, device)
        batch["labels"] = None
        t0 = time.perf_counter()
        with autocast(precision, device):
            pred = model(**batch).prediction
        _sync(device)
        if timers is not None:
            timers.eval_compute += time.perf_counter() - t0
        out.append((number, pred.float().cpu().numpy()))
    if world.distributed:
        out = list(enumerate(gather_in_order(world, out)))
    if timers is not None:
        timers.eval_loop += time.perf_counter() - start
    model.train(was_training)
    preds = np.concatenate([p for _, p in out]) if out else np.zeros(0, dtype=np.float32)
    if not np.isfinite(preds).all():
        raise TrainingDivergedError("the model produced NaN/inf predictions; the weights diverged")
    return preds


def evaluate_split(
    model: torch.nn.Module, data: EncodedSplit, *, batch_size: int, device: torch.device,
    timers: Timers | None = None, world: World = SINGLE, precision: str = "fp32",
) -> tuple[dict[str, float], np.ndarray]:
    """Metrics over the whole split (every rank's predictions, each sample once), and the
    predictions."""
    preds = predict_split(model, data, batch_size=batch_size, device=device, timers=timers,
                          world=world, precision=precision)
    return regression_metrics(preds, data.labels.numpy()), preds


class Trainer:
    """Train one seed of a run into ``folder`` (``runs/<name>/seed-<k>``).

    ``world``: this process's place under torchrun (``SINGLE``: one process); only rank 0 writes
    files and logs.
    ``on_step``: optional callback(global_step), e.g. for tests or external progress reporting.
    ``on_epoch``: optional callback(EpochRecord) after each epoch is validated and saved (a
    hyper-parameter search reports the validation MAE and may stop the trial by raising).
    ``evaluate_test``: False = the test split is never touched (``splits`` need not hold it; the
    result's ``test`` is empty): a hyper-parameter search selects on validation only.
    """

    def __init__(
        self,
        config: TrainConfig,
        splits: dict[str, EncodedSplit],
        *,
        seed: int,
        folder: str | Path,
        world: World = SINGLE,
        on_step: Callable[[int], None] | None = None,
        on_epoch: Callable[[EpochRecord], None] | None = None,
        evaluate_test: bool = True,
    ) -> None:
        self.config = config
        self.splits = splits
        self.seed = seed
        self.folder = Path(folder)
        self.world = world
        self.is_main = world.is_main
        self.device = world.device or resolve_device(config.housekeeping.device)
        self.precision = config.housekeeping.precision
        check_precision(self.precision, self.device)
        check_compile(config.housekeeping.compile, self.device)
        self.timers = Timers()
        self.on_step = on_step
        self.on_epoch = on_epoch
        self.evaluate_test = evaluate_test
        self.eval_batch_size = config.eval_batch_size or config.batch_size
        self._gathers = False  # whether the model takes gather= (set by fit)

    # --- building blocks -----------------------------------------------------------------------

    def _build(self) -> tuple[torch.nn.Module, torch.nn.Module, torch.optim.Optimizer,
                              ReduceLROnPlateau]:
        """(the model, what the training steps call: the model or its DDP wrapper, optimizer,
        scheduler). Every rank builds the same initial weights (same seed; DDP also broadcasts
        rank 0's)."""
        from psamf.models import build_model

        set_seed(self.seed)
        model = build_model(self.config.model).to(self.device)
        compile_model(model, self.config.housekeeping.compile)
        self.scaler = grad_scaler(self.precision, self.device)  # checkpointed with the optimizer
        net: torch.nn.Module = model
        if self.world.distributed:
            if not getattr(model, "gathers_batch", False) and self.is_main:
                log.warning("%s computes its losses per rank under DDP (no batch gather): %d "
                            "processes do not train exactly what one process trains",
                            self.config.model.model_type, self.world.size)
            # find_unused_parameters: see psamf.training.distributed (batches of one, ablations)
            net = DistributedDataParallel(
                model, device_ids=[self.device] if self.device.type == "cuda" else None,
                find_unused_parameters=True,
            )
        opt = self.config.optim
        groups = model.parameter_groups(
            encoder_lr=opt.encoder_lr, other_lr=opt.other_lr, weight_decay=opt.weight_decay
        )
        optimizer = torch.optim.Adam(groups)  # coupled weight decay, as the authors
        scheduler = ReduceLROnPlateau(
            optimizer, mode="min", factor=opt.plateau_factor, patience=opt.plateau_patience
        )
        return model, net, optimizer, scheduler

    def _save_checkpoint(self, model, optimizer, scheduler, loop: LoopState) -> None:
        if not self.is_main:
            return
        start = time.perf_counter()
        save_training_checkpoint(
            self.folder / CHECKPOINT_DIR, model=model, optimizer=optimizer, scheduler=scheduler,
            loop_state=loop.to_dict(), grad_scaler=self.scaler,
        )
        self.timers.checkpoint += time.perf_counter() - start

    def _writer(self, global_step: int):
        if not self.is_main:
            return None
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops events a killed run logged after its last checkpoint.
        return SummaryWriter(str(self.folder / "tensorboard"), purge_step=global_step or None)

    def _progress(self, total: int, initial: int, desc: str):
        enabled = bars_enabled(self.config.housekeeping.progress and self.is_main)
        return tqdm(total=total, initial=initial, desc=desc, unit="batch", leave=False,
                    disable=not enabled)

    # --- the loop ------------------------------------------------------------------------------

    def _train_step(self, model, optimizer, batch, loop: LoopState, epoch: int,
                    sizes: list[int] | None = None) -> None:
        """One optimizer step; ``sizes``: every rank's share of the global batch (DDP; None:
        this process holds all of it)."""
        batch = to_device(batch, self.device)  # data movement counts as overhead, not compute
        if sizes is not None and self._gathers:
            batch["gather"] = BatchGather(self.world, sizes)
        if self.world.distributed:
            # Dropout masks a pure function of (seed, step, rank): each rank draws its own, and a
            # resumed run redraws them (the checkpoint holds rank 0's generator state only).
            torch.manual_seed(self.seed * 1_000_003 + loop.global_step * 1_009 + self.world.rank)
        t0 = time.perf_counter()
        with autocast(self.precision, self.device):
            out = model(**batch)
        loss = out.loss
        if loss is None or not torch.isfinite(loss):
            check_loss(loss, epoch=epoch, step=loop.step_in_epoch,
                       terms={k: float(v.detach()) for k, v in out.losses.items()},
                       fix="lower optim.encoder_lr / optim.other_lr, keep optim.grad_clip > 0, "
                           "or check the data")
        optimizer.zero_grad(set_to_none=True)
        # The scaler is a pass-through except for fp16: scale, unscale before clipping, and
        # skip the step (lowering the scale) when the gradients overflowed.
        self.scaler.scale(loss).backward()
        if self.config.optim.grad_clip > 0:
            self.scaler.unscale_(optimizer)
            clip_grad_norm_(model.parameters(), self.config.optim.grad_clip)
        self.scaler.step(optimizer)
        self.scaler.update()
        _sync(self.device)
        self.timers.compute += time.perf_counter() - t0
        sums = loop.sums
        sums["loss"] = sums.get("loss", 0.0) + float(loss.detach())
        for name, value in out.losses.items():
            sums[name] = sums.get(name, 0.0) + float(value.detach())
        loop.count += 1

    def _save_best(self, model, loop: LoopState) -> None:
        """Write ``best/`` (the weights ``_finish`` tests) for the epoch ``loop`` calls best."""
        if not self.is_main:
            return
        save_best(self.folder, model, epoch=loop.best_epoch, valid=loop.history[-1]["valid"],
                  seed=self.seed)

    def _repair_best(self, model, loop: LoopState) -> None:
        """On resume: rewrite ``best/`` from the checkpoint if the run died before writing it."""
        if self.is_main and restore_best(self.folder, model, loop,
                                         valid=loop.history[-1]["valid"] if loop.history else None,
                                         seed=self.seed):
            log.info("seed %d: best/ missed epoch %d (stopped while writing it); restored it "
                     "from the checkpoint", self.seed, loop.best_epoch)

    def _end_epoch(self, model, optimizer, scheduler, loop: LoopState, writer,
                   train_s: float, resumed_at_step: int) -> bool:
        """Validate, step the scheduler, update early stopping; return whether this epoch is the
        new best (its weights go to ``best/`` once the checkpoint holding them is written).

        The history entry records the epoch's wall seconds (training steps; validation); an epoch
        resumed mid-way also records the step it resumed at, as its training time is partial."""
        epoch = loop.epoch
        valid_start = time.perf_counter()
        valid, _ = evaluate_split(model, self.splits["valid"], batch_size=self.eval_batch_size,
                                  device=self.device, timers=self.timers, world=self.world,
                                  precision=self.precision)
        seconds = {"train": round(train_s, 3), "valid": round(time.perf_counter() - valid_start, 3)}
        lrs = {g.get("name", str(i)): g["lr"] for i, g in enumerate(optimizer.param_groups)}
        scheduler.step(valid["mae"])
        train = {k: v / max(loop.count, 1) for k, v in loop.sums.items()}
        improved = loop.end_epoch(valid["mae"], higher_is_better=False)
        record = EpochRecord(epoch=epoch + 1, train=train, valid=valid, lr=lrs, seconds=seconds,
                             resumed_at_step=resumed_at_step or None)
        loop.history.append(record.to_dict())
        if self.is_main:
            terms = " ".join(f"{k} {v:.4f}" for k, v in train.items() if k != "loss")
            lr_text = "/".join(f"{v:.1e}" for v in lrs.values())
            log.info(
                "seed %d epoch %d/%d: train loss %.4f (%s) | valid MAE %.4f Acc-2 %.2f%s | lr %s",
                self.seed, epoch + 1, self.config.epochs, train.get("loss", float("nan")), terms,
                valid["mae"], valid["acc2_non0"], " *best*" if improved else "", lr_text,
            )
            if writer is not None:
                step = loop.global_step
                for k, v in train.items():
                    writer.add_scalar(f"train/{k}", v, step)
                for k, v in valid.items():
                    writer.add_scalar(f"valid/{k}", v, step)
                for k, v in lrs.items():
                    writer.add_scalar(f"lr/{k}", v, step)
                for k, v in seconds.items():
                    writer.add_scalar(f"seconds/{k}", v, step)
                writer.flush()
        patience = self.config.early_stopping_patience
        loop.next_epoch()
        if patience and loop.bad_epochs >= patience and loop.epoch < self.config.epochs:
            loop.stopped_early = True
            log.info("seed %d: no better validation MAE for %d epochs; stopping early",
                     self.seed, patience)
        return improved

    def fit(self) -> SeedResult:
        """Train (or resume) this seed and return its result (the run writes it to
        metrics.json)."""
        model, net, optimizer, scheduler = self._build()
        self._gathers = bool(getattr(model, "gathers_batch", False))
        loop = LoopState()
        checkpoint = self.folder / CHECKPOINT_DIR
        if has_training_checkpoint(checkpoint):
            loop = LoopState.from_dict(load_training_checkpoint(
                checkpoint, model=model, optimizer=optimizer, scheduler=scheduler,
                grad_scaler=self.scaler,
            ))
            log.info("seed %d: resuming after epoch %d, step %d", self.seed, loop.epoch,
                     loop.step_in_epoch)
            self._repair_best(model, loop)
        train = self.splits["train"]
        every = self.config.housekeeping.checkpoint_every_steps
        writer = self._writer(loop.global_step)
        loop_start = time.perf_counter()
        try:
            while loop.epoch < self.config.epochs and not loop.stopped_early:
                epoch = loop.epoch
                # the global batches of one process; under DDP each rank takes its share of each
                all_batches = batches_of(
                    epoch_order(len(train), seed=self.seed, epoch=epoch), self.config.batch_size
                )
                plans = [share(b, self.world) for b in all_batches[loop.step_in_epoch:]]
                start, resumed_at_step = time.perf_counter(), loop.step_in_epoch
                model.train()
                loader = make_loader(
                    train, [mine for mine, _ in plans], seed=self.seed * 7919 + epoch,
                    num_workers=self.config.housekeeping.num_workers,
                    pin_memory=self.device.type == "cuda",
                )
                bar = self._progress(len(all_batches), loop.step_in_epoch,
                                     f"seed {self.seed} epoch {epoch + 1}")
                for batch, (_, sizes) in zip(loader, plans, strict=True):
                    self._train_step(net, optimizer, batch, loop, epoch, sizes)
                    loop.step_in_epoch += 1
                    loop.global_step += 1
                    bar.update(1)
                    if self.on_step is not None:
                        self.on_step(loop.global_step)
                    if every and loop.global_step % every == 0 and \
                            loop.step_in_epoch < len(all_batches):
                        self._save_checkpoint(model, optimizer, scheduler, loop)
                bar.close()
                train_s = time.perf_counter() - start
                self.timers.train_loop += train_s
                improved = self._end_epoch(model, optimizer, scheduler, loop, writer, train_s,
                                           resumed_at_step)
                # Checkpoint first: if the process dies before best/ is written, the checkpoint
                # still holds this epoch's weights and _repair_best restores them on resume.
                self._save_checkpoint(model, optimizer, scheduler, loop)
                if improved:
                    self._save_best(model, loop)
                if self.is_main:  # the epoch line comes before these writes; this one after
                    log.info("seed %d: epoch %d saved; stopping now resumes after it",
                             self.seed, loop.epoch)
                if self.on_epoch is not None:
                    self.on_epoch(EpochRecord.from_dict(loop.history[-1]))
        finally:
            if writer is not None:
                writer.close()
        self.timers.extra["epochs_wall"] = time.perf_counter() - loop_start
        return self._finish(model, loop)

    def _finish(self, model, loop: LoopState) -> SeedResult:
        """Evaluate the best-on-validation weights on valid and (unless ``evaluate_test`` is
        False) test, once."""
        self.world.barrier()  # rank 0 has written best/ before any rank reads it
        load_model_weights(model, best_weights_file(self.folder))
        metrics, predictions = {"test": {}}, {}
        for split in ("valid", "test") if self.evaluate_test else ("valid",):
            metrics[split], predictions[split] = evaluate_split(
                model, self.splits[split], batch_size=self.eval_batch_size, device=self.device,
                world=self.world, precision=self.precision)
        return SeedResult(
            seed=self.seed, best_epoch=loop.best_epoch, epochs_run=loop.epoch,
            stopped_early=loop.stopped_early,
            history=[EpochRecord.from_dict(h) for h in loop.history],
            valid=metrics["valid"], test=metrics["test"], predictions=predictions,
        )
