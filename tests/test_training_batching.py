"""The one batch builder: EncodedSplit.collate (training, evaluate) and model_batch (predict,
benchmarks) give the model the same keyword arguments."""

from __future__ import annotations

import torch

from psamf.data import load_dataset
from psamf.training.batching import EncodedSplit, model_batch

KEYS = {"input_ids", "attention_mask", "labels", "personality", "audio", "audio_lengths",
        "vision", "vision_lengths"}


def test_model_batch_keeps_only_the_modalities_the_model_reads():
    tokens = {"input_ids": torch.ones(2, 5, dtype=torch.long),
              "attention_mask": torch.ones(2, 5, dtype=torch.long)}
    audio = (torch.zeros(2, 3, 4), torch.tensor([3, 1]))
    batch = model_batch(tokens, frames={"audio": audio}, modalities=("vision",))
    assert set(batch) == KEYS
    assert batch["audio"] is None and batch["vision"] is None and batch["personality"] is None
    batch = model_batch(tokens, frames={"audio": audio}, personality=torch.zeros(2, 8))
    assert batch["audio"] is audio[0] and batch["audio_lengths"] is audio[1]
    assert batch["personality"].shape == (2, 8) and batch["labels"] is None


def test_collate_goes_through_model_batch_and_trims_to_the_longest_item():
    split = load_dataset("sample").splits["train"].subset(range(4))
    n, length = len(split), 12
    mask = torch.zeros(n, length, dtype=torch.long)
    mask[:, :3] = 1
    tokens = {"input_ids": torch.arange(n * length).reshape(n, length), "attention_mask": mask}
    data = EncodedSplit(split, tokens, personality=torch.randn(n, 6), modalities=("audio",))
    batch = data.collate([2, 0])
    assert set(batch) == KEYS and batch["vision"] is None
    assert batch["input_ids"].shape == (2, 3)  # trimmed to the longest transcript
    assert torch.equal(batch["personality"], data.personality[[2, 0]])
    lengths = torch.as_tensor(split.modalities["audio"].lengths)[[2, 0]]
    assert torch.equal(batch["audio_lengths"], lengths)
    assert batch["audio"].shape[1] == max(1, int(lengths.max()))
