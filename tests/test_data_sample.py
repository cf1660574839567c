"""The built-in synthetic sample: deterministic, well-formed, learnable."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import Ridge

from psamf.data import load_dataset, make_sample_dataset, validate_dataset


def test_same_seed_same_data_and_different_seed_differs():
    a, b, c = make_sample_dataset(seed=3), make_sample_dataset(seed=3), make_sample_dataset(seed=4)
    for name in ("train", "valid", "test"):
        assert a.splits[name].texts == b.splits[name].texts
        np.testing.assert_array_equal(a.splits[name].labels, b.splits[name].labels)
        for m in ("audio", "vision"):
            np.testing.assert_array_equal(
                a.splits[name].modalities[m].features, b.splits[name].modalities[m].features
            )
    assert a.splits["train"].texts != c.splits["train"].texts


def test_shapes_padding_and_missing_vision():
    ds = load_dataset("sample")
    assert ds.synthetic and ds.name == "sample (synthetic)"
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 400, "valid": 100, "test": 200}
    assert ds.modality_widths() == {"audio": 12, "vision": 10}
    for split in ds.splits.values():
        assert split.labels.dtype == np.float32
        assert split.labels.min() >= -3 and split.labels.max() <= 3
        assert len(set(split.ids)) == len(split)
        for mod in split.modalities.values():
            assert mod.features.dtype == np.float32 and mod.lengths.dtype == np.int64
            n, t, _ = mod.features.shape
            beyond = np.arange(t)[None, :] >= mod.lengths[:, None]  # (N, T)
            assert not mod.features[beyond].any()
            assert (mod.lengths <= t).all()
    vision_len = ds.splits["train"].modalities["vision"].lengths
    assert 0 < (vision_len == 0).sum() < len(vision_len) // 2
    assert (ds.splits["train"].modalities["audio"].lengths > 0).all()


def test_sample_passes_the_readers_checks_without_repairs(caplog):
    ds = make_sample_dataset(seed=1)
    with caplog.at_level(logging.WARNING):
        checked = validate_dataset(ds)
    assert not caplog.records
    np.testing.assert_array_equal(checked.splits["valid"].labels, ds.splits["valid"].labels)


def test_sizes_are_configurable_and_validated():
    ds = make_sample_dataset(n_train=10, n_valid=5, n_test=7, audio_dim=3, max_frames=4)
    assert len(ds.splits["test"]) == 7
    assert ds.splits["train"].modalities["audio"].features.shape == (10, 4, 3)
    with pytest.raises(ValueError, match="at least 1"):
        make_sample_dataset(n_train=0)


def test_text_carries_the_sentiment_and_av_weakly():
    ds = make_sample_dataset(seed=0)
    train, test = ds.splits["train"], ds.splits["test"]
    vec = CountVectorizer(ngram_range=(1, 2))
    model = Ridge(alpha=1.0).fit(vec.fit_transform(train.texts), train.labels)
    pred = model.predict(vec.transform(test.texts))
    # A bag of words cannot model negation or intensity fully (a transformer can); it still beats
    # the constant predictor clearly.
    assert np.corrcoef(pred, test.labels)[0, 1] > 0.4
    const_mae = np.abs(test.labels - np.median(train.labels)).mean()
    assert np.abs(pred - test.labels).mean() < 0.85 * const_mae
    # Mean of the first audio dimension over valid frames tracks the label, but less than text.
    audio = test.modalities["audio"]
    mean0 = audio.features[:, :, 0].sum(1) / audio.lengths
    r_audio = np.corrcoef(mean0, test.labels)[0, 1]
    assert 0.2 < r_audio < 0.8
