"""The real corpora in ../shared/data (skipped where absent)."""

from __future__ import annotations

import numpy as np

from psamf.data import load_dataset


def test_mosi_text_and_audio(shared_data):
    ds = load_dataset("mosi", root=shared_data("mosi"))
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 1284, "valid": 229, "test": 686}
    assert ds.modality_widths() == {"audio": 73}
    assert "vision" not in ds.splits["train"].modalities
    assert "checked against" in ds.source  # pickle text and labels agree with label.csv
    train = ds.splits["train"]
    assert train.ids[0] == "03bSnISJMiM$_$1"
    assert train.texts[0] == "anyhow it was really good"
    assert train.labels[0] == np.float32(2.4)
    audio = train.modalities["audio"]
    assert audio.features.shape == (1284, 1, 73) and (audio.lengths == 1).all()
    assert np.isfinite(audio.features).all()


def test_mosi_label_csv_alone_is_text_only(shared_data):
    ds = load_dataset("x", labels=shared_data("mosi") / "mosi" / "label.csv")
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 1284, "valid": 229, "test": 686}
    assert ds.modality_widths() == {}


def test_mosei_text_only(shared_data):
    ds = load_dataset("mosei", root=shared_data("mosei"))
    counts = {k: len(v) for k, v in ds.splits.items()}
    assert counts == {"train": 16274, "valid": 1861, "test": 4653}
    assert ds.modality_widths() == {}
    labels = np.concatenate([s.labels for s in ds.splits.values()])
    assert labels.min() >= -3 and labels.max() <= 3
    assert all(t.strip() for s in ds.splits.values() for t in s.texts)
