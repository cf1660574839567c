"""From a SplitData to model batches (the "Model batch" contract in docs/DESIGN.md).

``model_batch`` is the one place that turns tokens, P and frames into the model's keyword
arguments: training and ``evaluate`` reach it through ``EncodedSplit.collate``, ``predict`` and the
speed benchmark call it directly. Transcripts are tokenized once per split (padded to
``max_text_length``); each batch is trimmed to its longest transcript and its longest audio /
vision sequence, so short clips cost little. The personality embeddings P come in precomputed
(see ``psamf.training.prepare``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from psamf.data.dataset import SplitData
from psamf.errors import InputError
from psamf.models.registry import MODALITIES

Tensor = torch.Tensor


def model_batch(
    tokens: dict[str, Tensor],
    *,
    personality: Tensor | None = None,
    frames: dict[str, tuple[Tensor, Tensor]] | None = None,
    labels: Tensor | None = None,
    modalities: Sequence[str] = MODALITIES,
) -> dict[str, Tensor | None]:
    """The model's keyword arguments: ``input_ids`` / ``attention_mask`` (B, L) from ``tokens``,
    ``labels`` (B,), ``personality`` (B, H_p), and per modality ``<name>`` (B, T, d) with
    ``<name>_lengths`` (B,) from ``frames``; a modality missing from ``frames`` or not among
    ``modalities`` (those the model reads) is None, as is P when not given."""
    frames = frames or {}
    batch: dict[str, Tensor | None] = {
        "input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"],
        "labels": labels, "personality": personality,
    }
    for name in MODALITIES:
        features, lengths = frames[name] if name in frames and name in modalities else (None, None)
        batch[name], batch[f"{name}_lengths"] = features, lengths
    return batch


class EncodedSplit(Dataset):
    """A split as tensors: token ids, masks, labels, P, and per-modality frames + lengths.

    Items are indices; ``collate`` turns a list of indices into one batch dict, so building a
    batch is a handful of tensor slices instead of one Python object per utterance.
    """

    def __init__(
        self,
        split: SplitData,
        tokens: dict[str, torch.Tensor],
        *,
        personality: torch.Tensor | None = None,
        modalities: Sequence[str] = (),
    ) -> None:
        n = len(split)
        self.input_ids = tokens["input_ids"]  # (N, L)
        self.attention_mask = tokens["attention_mask"]  # (N, L)
        self.labels = torch.as_tensor(np.asarray(split.labels, dtype=np.float32))  # (N,)
        self.personality = personality  # (N, H_p) or None
        if self.input_ids.shape[0] != n or (personality is not None and personality.shape[0] != n):
            raise InputError("tokens, personality and split sizes differ")  # internal invariant
        self.frames: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for name in modalities:
            if name in split.modalities:
                mod = split.modalities[name]
                self.frames[name] = (
                    torch.from_numpy(np.ascontiguousarray(mod.features, dtype=np.float32)),
                    torch.from_numpy(np.asarray(mod.lengths, dtype=np.int64)),
                )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> int:
        return index

    def collate(self, indices: list[int]) -> dict[str, torch.Tensor | None]:
        """The batch for ``indices`` with keys as in the model batch contract."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        mask = self.attention_mask[idx]  # (B, L)
        width = max(1, int(mask.sum(1).max()))
        frames = {}
        for name, (feats, lengths) in self.frames.items():
            lens = lengths[idx]  # (B,)
            frames[name] = (feats[idx, :max(1, int(lens.max()))], lens)  # (B, T', d), (B,)
        return model_batch(
            {"input_ids": self.input_ids[idx, :width], "attention_mask": mask[:, :width]},
            personality=self.personality[idx] if self.personality is not None else None,
            frames=frames, labels=self.labels[idx],
        )


# Each recipe's shuffle stream: the generator of epoch e is seeded with seed * stride + e. The two
# strides differ for history's sake: each recipe's published results were made with its own, and
# one stride for both would change the personality encoder that pretraining reproduces.
SENTIMENT_STRIDE = 1_000_003
PRETRAIN_STRIDE = 100_003


def epoch_order(n: int, *, seed: int, epoch: int, stride: int = SENTIMENT_STRIDE) -> list[int]:
    """The shuffled order of epoch ``epoch`` for ``seed`` (pure, so resume can redo it)."""
    generator = torch.Generator().manual_seed(seed * stride + epoch)
    return torch.randperm(n, generator=generator).tolist()


def batches_of(order: Sequence[int], batch_size: int) -> list[list[int]]:
    return [list(order[i : i + batch_size]) for i in range(0, len(order), batch_size)]


def make_loader(
    data: EncodedSplit,
    batches: list[list[int]],
    *,
    seed: int,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader over fixed batches with its own seeded generator (never the global RNG)."""
    return DataLoader(
        data,
        batch_sampler=batches,
        collate_fn=data.collate,
        num_workers=num_workers,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed),
    )


def to_device(batch: dict[str, torch.Tensor | None], device: torch.device) -> dict:
    return {k: (v.to(device, non_blocking=True) if v is not None else None)
            for k, v in batch.items()}
