"""Distributed data parallel (DDP) training: the process group, each rank's share of a batch,
and the gathers that make N processes compute what one process computes.

Launch: ``torchrun --nproc_per_node N -m psamf train ...`` or ``psamf train --nproc N`` (which runs
torchrun). Backend: gloo on CPU, NCCL on CUDA, where ``LOCAL_RANK`` picks the GPU.

The contract, so that N processes train the model one process trains:

- ``batch_size`` is the *global* batch. Every rank builds the same seeded single-process epoch
  order and the same global batches (``batching.epoch_order`` / ``batches_of``); rank r takes the
  r-th contiguous share of each (``share``; sizes differ by at most one). torch's
  DistributedSampler is not used: it deals samples round-robin from its own per-epoch shuffle and
  pads the last round with repeats, so N processes would see other batches than one process, and
  some samples twice.
- A global batch smaller than the world (e.g. a final batch of one) is not split: every rank takes
  all of it and nothing is gathered; DDP's gradient average of N identical gradients is the
  one-process gradient. No rank ever runs an empty batch and no sample is dropped.
- Losses are computed over the whole global batch (``BatchGather``): a model that declares
  ``gathers_batch`` applies the gather to its per-sample tensors (predictions, labels, the
  contrastive features) before any batch reduction, with autograd-aware ``all_gather``
  (``torch.distributed.nn.functional``), so the in-batch contrastive losses see every negative of
  the global batch, and every rank computes the same loss. Its backward sums the N ranks' (equal)
  gradients into each rank's share, and DDP's average divides by N again: the one-process
  gradient. Gathers run on a process group of their own, so they never interleave with DDP's
  gradient all-reduces during the backward.
- DDP runs with ``find_unused_parameters=True``: parameters may go without gradient in a step
  (the contrastive projections in a global batch of one; the audio/vision summary layers when
  ``model.use_prefusion=false``); DDP then still averages the rest and leaves those alone, as one
  process would. The cost is one graph traversal per step, small beside the encoder.
- Validation and test: eval batches of ``eval_batch_size`` are dealt round-robin to the ranks,
  predictions come back to every rank (``all_gather_object``) and are put in split order, so the
  metrics are computed once over the whole split, each sample exactly once, on batches composed
  as in one process.
- Only rank 0 writes (checkpoints, best weights, metrics, logs); every rank loads a checkpoint on
  ``--resume`` and the best weights before the test, after a barrier.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from psamf.device import resolve_device
from psamf.errors import InputError

log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = ["SINGLE", "BatchGather", "World", "check_gpus", "init_world", "local_cores", "share",
           "threads_per_process"]


@dataclass(frozen=True)
class World:
    """This process's place: rank among ``size`` processes, ``local_rank`` on its machine, the
    device it trains on and the process group its batch gathers use (None: one process)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device | None = None
    gather_group: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def broadcast(self, value: T) -> T:
        """Rank 0's ``value`` on every rank (pickled)."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather(self, value: T) -> list[T]:
        """Every rank's ``value``, in rank order (pickled)."""
        if not self.distributed:
            return [value]
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, value)
        return out

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


SINGLE = World()


def local_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def threads_per_process(nproc: int) -> int:
    """Torch threads for each of ``nproc`` processes on this machine: its cores shared out."""
    return max(1, local_cores() // nproc)


def check_gpus(device: str | None, processes: int) -> None:
    """Refuse ``processes`` processes on this machine when ``device`` means CUDA and it has fewer
    GPUs: NCCL takes one GPU per process, and a process past the last GPU would die at start-up
    while the others waited for it at the rendezvous."""
    if processes <= 1 or resolve_device(device).type != "cuda":
        return
    gpus = torch.cuda.device_count()
    if processes > gpus:
        raise InputError(
            f"device={device or 'auto'}: {processes} processes on this machine need one GPU each, "
            f"but torch sees {gpus}; use at most {gpus} (--nproc, or torchrun's "
            f"--nproc_per_node), or device=cpu to run {processes} processes on CPU with gloo")


def init_world(device: str | None = "auto") -> World:
    """The World torchrun's environment describes (``WORLD_SIZE`` > 1), with the process group
    initialised; ``SINGLE`` when not launched by torchrun. ``device``: the configured device —
    ``auto`` / ``cuda`` become this rank's GPU ``cuda:LOCAL_RANK`` (``cuda:N`` is refused)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return SINGLE
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    chosen = resolve_device(device)
    if chosen.type == "cuda":
        if chosen.index is not None:
            raise InputError(f"device={device}: one GPU for {size} processes; use auto or cuda "
                             "(each process takes GPU LOCAL_RANK; CUDA_VISIBLE_DEVICES picks them)")
        check_gpus(device, int(os.environ.get("LOCAL_WORLD_SIZE", size)))  # every rank refuses
        chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
    backend = "nccl" if chosen.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, device_id=chosen if chosen.type == "cuda" else None)
    group = dist.new_group(backend=backend)
    if rank != 0:  # one copy of every log line (rank 0's); warnings and errors from all
        logging.getLogger().setLevel(logging.WARNING)
    log.info("distributed: %d processes, backend %s, %d torch thread(s) each", size, backend,
             torch.get_num_threads())
    return World(rank=rank, size=size, local_rank=local_rank, device=chosen, gather_group=group)


def share(batch: Sequence[int], world: World) -> tuple[list[int], list[int] | None]:
    """This rank's indices of a global batch, and every rank's share size (for ``BatchGather``);
    sizes None: one process, or a batch smaller than the world, which every rank takes whole."""
    if not world.distributed or len(batch) < world.size:
        return list(batch), None
    base, extra = divmod(len(batch), world.size)
    sizes = [base + (r < extra) for r in range(world.size)]
    start = sum(sizes[:world.rank])
    return list(batch[start:start + sizes[world.rank]]), sizes


class BatchGather:
    """``gather(x)``: a rank's per-sample tensor (b_r, ...) -> the global batch's (B, ...), the
    shares concatenated in rank order (= the global batch's order), gradients flowing back to each
    rank's share. Shares may differ in size by one: they are padded to the largest for the
    collective and the padding dropped after."""

    def __init__(self, world: World, sizes: list[int]) -> None:
        self.world, self.sizes = world, sizes

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        from torch.distributed.nn.functional import all_gather

        width = max(self.sizes)
        pad = width - x.shape[0]
        if pad:
            x = torch.cat([x, x.new_zeros((pad, *x.shape[1:]))])
        with warnings.catch_warnings():
            # deprecated in favour of a private, still changing API; this public one is kept
            warnings.simplefilter("ignore", FutureWarning)
            parts = all_gather(x, group=self.world.gather_group)
        return torch.cat([p[:n] for p, n in zip(parts, self.sizes, strict=True)])


def check_nproc(value: str) -> int:
    """``--nproc N``: a whole number of processes >= 1."""
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1 or str(n) != value.strip():
        raise InputError(f"--nproc {value}: give a whole number of processes, 1 or more")
    return n


def gather_in_order(world: World, local: list[tuple[int, T]]) -> list[T]:
    """Items numbered 0..n-1, dealt out to the ranks, back in number order on every rank."""
    numbered = [item for part in world.all_gather(local) for item in part]
    numbered.sort(key=lambda item: item[0])
    return [value for _, value in numbered]

