"""Everything a run needs before its first step: data, resolved model config, tokens, P.

``prepare(config)`` loads the dataset once (shared by every seed), subsets the splits as the config
asks, fills the model config's data-dependent fields (audio / vision / personality widths),
tokenizes every split with the model's tokenizer and looks the personality embeddings P up in the
on-disk cache (computing only what is missing).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from psamf.data import load_dataset, part_indices
from psamf.data.dataset import MultimodalDataset, SplitData
from psamf.errors import InputError
from psamf.models.config import PSAMFConfig
from psamf.training.batching import EncodedSplit
from psamf.training.config import AUTO, DEFAULT_PERSONALITY_ENCODER, TrainConfig

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """A run's data, ready to batch; ``config`` has its data-dependent fields filled in."""

    config: TrainConfig
    dataset: MultimodalDataset
    splits: dict[str, EncodedSplit]
    raw: dict[str, SplitData]
    # Which encoder gave P: {"encoder" (as configured), "identity" (content hash), "pretrained",
    # "path" (absolute folder, None for a hub id)}; None without P.
    personality: dict[str, Any] | None = None


def load_multimodal(
    name: str, root: str | None, labels_encoding: str = "utf-8"
) -> MultimodalDataset:
    dataset = load_dataset(name, root=root, labels_encoding=labels_encoding)
    if not isinstance(dataset, MultimodalDataset):
        raise InputError(
            f"dataset {name!r} is a personality corpus, not a sentiment dataset; train on "
            "sample, mosi, mosei or a sentiment folder (pretrain-personality reads personality "
            "data)"
        )
    missing = [s for s in ("train", "valid", "test") if s not in dataset.splits]
    if missing:
        raise InputError(
            f"dataset {name!r} has no {missing} split(s); training needs train, valid, test"
        )
    return dataset


def resolve_personality_encoder(name: str) -> str:
    """``auto`` -> the pretrained personality folder if present, else the untuned backbone."""
    if name != AUTO:
        return name
    if (Path(DEFAULT_PERSONALITY_ENCODER) / "config.json").is_file():
        return DEFAULT_PERSONALITY_ENCODER
    # The default folder is relative to where psamf runs: say where it looked.
    log.warning("personality_encoder=auto: no %s under %s; P comes from the untuned minilm",
                DEFAULT_PERSONALITY_ENCODER, Path.cwd())
    return "minilm"


def personality_embeddings(
    config: TrainConfig,
    splits: dict[str, SplitData],
    *,
    check: Callable[[Any], None] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """P for every split, from the cache under ``config.housekeeping.resolved_cache_dir()``, and
    which encoder computed it (see ``Prepared.personality``). ``check(encoder)`` runs before
    anything is computed (a resumed or evaluated run refuses an encoder other than its own
    there)."""
    from psamf.personality.cache import PersonalityEmbeddingCache
    from psamf.personality.encoder import PersonalityEncoder
    from psamf.personality.folder import EncoderFolder

    folder = EncoderFolder.open(config.personality_encoder,
                                pooling=config.personality_pooling_arg())
    encoder = PersonalityEncoder(folder)
    if check is not None:
        check(encoder)
    if not folder.pretrained:
        log.warning(
            "personality encoder %s has no trait head: it was not pretrained on personality "
            "data, so the 'personality' view is an untrained text embedding (run psamf "
            "pretrain-personality, or pass personality_encoder=FOLDER)",
            config.personality_encoder,
        )
    where = Path(folder.path)
    info = {"encoder": config.personality_encoder, "identity": encoder.identity,
            "pretrained": folder.pretrained,
            "path": str(where.resolve()) if where.is_dir() else None}
    cache = PersonalityEmbeddingCache(config.housekeeping.resolved_cache_dir() / "personality")
    return {name: cache.get_or_compute(encoder, s.texts) for name, s in splits.items()}, info


def subset_splits(config: TrainConfig, dataset: MultimodalDataset) -> dict[str, SplitData]:
    """The splits cut to ``config.data.limit_*`` (per part for datasets joined by ``+``)."""
    limits = {"train": config.data.limit_train, "valid": config.data.limit_valid,
              "test": config.data.limit_test}
    out = {}
    for name, split in dataset.splits.items():
        limit = limits.get(name)
        if not limit:
            out[name] = split
        elif dataset.parts:  # each combined dataset keeps its first N, so all stay represented
            parts = part_indices(split.ids, dataset.parts).values()
            out[name] = split.subset(np.concatenate([idx[:limit] for idx in parts]))
        else:
            out[name] = split.subset(range(min(limit, len(split))))
    return out


def encode_splits(
    model_config: PSAMFConfig,
    splits: dict[str, SplitData],
    personality: dict[str, torch.Tensor] | None,
) -> dict[str, EncodedSplit]:
    """Tokenize each split with the model's tokenizer and bundle it with its frames and P."""
    from psamf.models.text_encoder import load_tokenizer

    tokenizer = load_tokenizer(model_config.text_encoder)
    out = {}
    for name, split in splits.items():
        tokens = tokenizer(
            list(split.texts), padding="max_length", truncation=True,
            max_length=model_config.max_text_length, return_tensors="pt",
        )
        out[name] = EncodedSplit(
            split,
            {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]},
            personality=personality[name] if personality is not None else None,
            modalities=tuple(model_config.modality_widths()),
        )
    return out


def prepare(
    config: TrainConfig,
    dataset: MultimodalDataset | None = None,
    *,
    check_personality: Callable[[Any], None] | None = None,
    test: bool = True,
) -> Prepared:
    """Load (or take) the dataset and return everything the trainer needs.

    ``check_personality(encoder)``: see ``personality_embeddings``. ``test=False``: the test split
    is dropped as soon as the dataset is read (not tokenized, no P computed, absent from the
    result), for a hyper-parameter search that must select on validation alone."""
    from psamf.backbones import resolve_backbone

    resolve_backbone(config.model.text_encoder)  # a missing backbone fails before any work
    if dataset is None:
        dataset = load_multimodal(config.data.name, config.data.root, config.data.labels_encoding)
    if not test:
        dataset = dataclasses.replace(
            dataset, splits={k: v for k, v in dataset.splits.items() if k != "test"})
    splits = subset_splits(config, dataset)
    # The data-dependent widths, each filled once: audio / vision for the modalities the model
    # reads (its registry entry; none when text_only), then P's. A width the user set must match.
    model = config.model.with_data_widths(dataset.modality_widths())
    personality, info = None, None
    if config.uses_personality():
        encoder = resolve_personality_encoder(config.personality_encoder)
        config = dataclasses.replace(config, personality_encoder=encoder)
        personality, info = personality_embeddings(config, splits, check=check_personality)
        model = model.with_personality_dim(int(next(iter(personality.values())).shape[1]))
    config = dataclasses.replace(config, model=model)
    return Prepared(
        config=config, dataset=dataset, splits=encode_splits(model, splits, personality),
        raw=splits, personality=info,
    )
