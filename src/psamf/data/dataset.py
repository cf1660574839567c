"""In-memory representation shared by every reader, the trainer and the model.

A multimodal sentiment dataset is a set of splits; each split holds, per utterance, an id, the raw
transcript, a float sentiment label in [-3, 3], and for each available modality a zero-padded
float32 array (N, T, d) with the true number of frames per utterance. A length of 0 means the
modality is absent for that utterance; a modality absent from the whole dataset is not in the dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

SPLITS: tuple[str, ...] = ("train", "valid", "test")
MODALITIES: tuple[str, ...] = ("audio", "vision")
LABEL_MIN, LABEL_MAX = -3.0, 3.0
PART_SEPARATOR = "/"  # a combined dataset's ids: "<part name>/<the part's own id>"
BIG_FIVE: tuple[str, ...] = (
    "openness",
    "conscientiousness",
    "extraversion",
    "agreeableness",
    "neuroticism",
)


@dataclass
class ModalityFeatures:
    """Frame features of one modality for one split."""

    features: np.ndarray  # (N, T, d) float32, zeros beyond each utterance's length
    lengths: np.ndarray  # (N,) int64, 0 <= length <= T

    @property
    def width(self) -> int:
        return int(self.features.shape[2])

    @property
    def max_frames(self) -> int:
        return int(self.features.shape[1])

    def subset(self, indices: np.ndarray) -> ModalityFeatures:
        return ModalityFeatures(self.features[indices], self.lengths[indices])


@dataclass
class SplitData:
    """One split (train / valid / test) of a multimodal sentiment dataset."""

    ids: list[str]
    texts: list[str]
    labels: np.ndarray  # (N,) float32 in [-3, 3]
    modalities: dict[str, ModalityFeatures] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, indices: np.ndarray | list[int]) -> SplitData:
        idx = np.asarray(indices, dtype=np.int64)
        return SplitData(
            ids=[self.ids[i] for i in idx],
            texts=[self.texts[i] for i in idx],
            labels=self.labels[idx],
            modalities={name: m.subset(idx) for name, m in self.modalities.items()},
        )


@dataclass
class MultimodalDataset:
    """A named dataset: splits plus where it came from.

    ``parts``: for several datasets combined into one (``psamf.data.combine``), their names, each
    the prefix of its utterances' ids; empty for a single dataset. ``dropped_modalities``: what the
    combination left out because not every part has it.
    """

    name: str
    splits: dict[str, SplitData]
    source: str = ""
    synthetic: bool = False
    parts: tuple[str, ...] = ()
    dropped_modalities: tuple[str, ...] = ()
    # The feature profile (psamf.media.profile) of a folder written by ``psamf extract``: which
    # extractors and settings made its audio/vision features; None for other datasets.
    profile: dict[str, Any] | None = None

    def modality_widths(self) -> dict[str, int]:
        """Width d of each modality present (taken from the first split that has it)."""
        widths: dict[str, int] = {}
        for split in self.splits.values():
            for name, mod in split.modalities.items():
                widths.setdefault(name, mod.width)
        return widths

    def summary(self) -> str:
        """Human-readable overview: counts per split, modalities and widths, label range."""
        tag = "  [SYNTHETIC sample data, not a real corpus]" if self.synthetic else ""
        lines = [f"{self.name}{tag}"]
        if self.source:
            lines.append(f"  source: {self.source}")
        for split_name, split in self.splits.items():
            parts = [f"  {split_name:<6} {len(split):>6} utterances"]
            for mod_name, mod in split.modalities.items():
                absent = int(np.sum(mod.lengths == 0))
                parts.append(
                    f"{mod_name} T<={mod.max_frames}"
                    + (f" ({absent} without {mod_name})" if absent else "")
                )
            lines.append(";  ".join(parts))
        if self.parts:
            lines.append(f"  combined from: {', '.join(self.parts)} "
                         f"(ids prefixed NAME{PART_SEPARATOR})")
            for part in self.parts:
                sizes = [sum(1 for uid in split.ids if uid.startswith(f"{part}{PART_SEPARATOR}"))
                         for split in self.splits.values()]
                lines.append(f"    {part}: " + ", ".join(
                    f"{s} {n}" for s, n in zip(self.splits, sizes, strict=True)))
        if self.profile is not None:
            from psamf.media.profile import short

            lines.append(f"  features: {short(self.profile)}")
        widths = self.modality_widths()
        mods = "".join(f", {m} (d={w})" for m, w in widths.items())
        lines.append(f"  modalities: text{mods}")
        if self.dropped_modalities:
            lines.append(f"  dropped: {', '.join(self.dropped_modalities)} (not in every "
                         "combined dataset; only what all of them have is kept)")
        absent = [m for m in MODALITIES if m not in widths]
        if absent:
            lines.append(f"  absent: {', '.join(absent)}")
        labels = [s.labels for s in self.splits.values() if len(s)]
        if labels:
            values = np.concatenate(labels)
            lines.append(
                f"  labels: min {float(values.min()):.3f}, max {float(values.max()):.3f}, "
                f"mean {float(values.mean()):.3f}"
            )
        return "\n".join(lines)


@dataclass
class PersonalitySplit:
    """One split of a Big Five corpus: transcripts and per-trait scores in [0, 1]."""

    ids: list[str]
    texts: list[str]
    targets: np.ndarray  # (N, n_traits) float32 in [0, 1]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, indices: np.ndarray | list[int]) -> PersonalitySplit:
        idx = np.asarray(indices, dtype=np.int64)
        return PersonalitySplit(
            ids=[self.ids[i] for i in idx],
            texts=[self.texts[i] for i in idx],
            targets=self.targets[idx],
        )


@dataclass
class PersonalityDataset:
    """A personality corpus (ChaLearn First Impressions V2)."""

    name: str
    splits: dict[str, PersonalitySplit]
    traits: tuple[str, ...] = BIG_FIVE
    source: str = ""

    def summary(self) -> str:
        lines = [self.name]
        if self.source:
            lines.append(f"  source: {self.source}")
        for split_name, split in self.splits.items():
            empty = sum(1 for t in split.texts if not t.strip())
            lines.append(
                f"  {split_name:<6} {len(split):>6} clips ({empty} empty transcripts)"
            )
        lines.append(f"  traits: {', '.join(self.traits)}")
        return "\n".join(lines)
