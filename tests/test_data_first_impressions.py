"""First Impressions reader: the real corpus and small pickles written at test time."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from psamf.data import BIG_FIVE, PersonalityDataset, load_dataset, read_first_impressions

STEMS = ("training", "validation", "test")


def write_fi(folder: Path, clips: dict[str, list[str]], *, drop_trait: str | None = None,
             extra_annotated: str | None = None, bad_score: float | None = None) -> Path:
    """Write the six ChaLearn-style pickles (protocol 2, as the Python 2 originals)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for stem in STEMS:
        names = clips[stem]
        ann = {t: {c: float(rng.uniform()) for c in names} for t in (*BIG_FIVE, "interview")}
        if drop_trait and stem == "training":
            del ann[drop_trait]
        if extra_annotated and stem == "validation":
            ann["openness"][extra_annotated] = 0.5
        if bad_score is not None and stem == "test":
            ann["neuroticism"][names[0]] = bad_score
        tra = {c: ("" if i == 0 else f"transcript of {c}") for i, c in enumerate(names)}
        (folder / f"annotation_{stem}.pkl").write_bytes(pickle.dumps(ann, protocol=2))
        (folder / f"transcription_{stem}.pkl").write_bytes(pickle.dumps(tra, protocol=2))
    return folder


CLIPS = {
    "training": ["b.001.mp4", "a.002.mp4", "c.003.mp4"],
    "validation": ["d.001.mp4", "e.001.mp4"],
    "test": ["f.004.mp4", "g.001.mp4"],
}


def test_fixture_corpus_reads(tmp_path):
    folder = write_fi(tmp_path / "fi", CLIPS)
    ds = read_first_impressions(folder)
    assert isinstance(ds, PersonalityDataset)
    assert list(ds.splits) == ["train", "valid", "test"]
    train = ds.splits["train"]
    assert train.ids == sorted(CLIPS["training"])
    assert train.targets.dtype == np.float32 and train.targets.shape == (3, 5)
    ann = pickle.loads((folder / "annotation_training.pkl").read_bytes())
    idx = train.ids.index("c.003.mp4")
    expected = [ann[t]["c.003.mp4"] for t in BIG_FIVE]
    np.testing.assert_allclose(train.targets[idx], expected, rtol=1e-6)
    # The first-written clip of each split has an empty transcript: kept, and counted.
    assert train.texts[train.ids.index("b.001.mp4")] == ""
    assert "(1 empty transcripts)" in ds.summary()
    assert ds.traits == BIG_FIVE


def test_load_dataset_by_name_uses_root(tmp_path):
    write_fi(tmp_path / "first_impressions", CLIPS)
    ds = load_dataset("first_impressions", root=tmp_path)
    assert len(ds.splits["valid"]) == 2


def test_missing_file_names_it(tmp_path):
    folder = write_fi(tmp_path / "fi", CLIPS)
    (folder / "transcription_validation.pkl").unlink()
    with pytest.raises(FileNotFoundError, match="transcription_validation.pkl"):
        read_first_impressions(folder)


def test_missing_trait_is_refused(tmp_path):
    folder = write_fi(tmp_path / "fi", CLIPS, drop_trait="agreeableness")
    with pytest.raises(ValueError, match=r"annotation_training\.pkl.*agreeableness"):
        read_first_impressions(folder)


def test_clip_without_transcript_is_refused(tmp_path):
    folder = write_fi(tmp_path / "fi", CLIPS, extra_annotated="zzz.009.mp4")
    with pytest.raises(ValueError, match=r"valid.*zzz\.009\.mp4"):
        read_first_impressions(folder)


def test_score_out_of_range_is_refused(tmp_path):
    folder = write_fi(tmp_path / "fi", CLIPS, bad_score=float("nan"))
    with pytest.raises(ValueError, match=r"'test', field 'neuroticism', index \d"):
        read_first_impressions(folder)


def test_real_corpus(shared_data):
    ds = load_dataset("first_impressions", root=shared_data("first_impressions"))
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 6000, "valid": 2000,
                                                          "test": 2000}
    for split in ds.splits.values():
        assert split.targets.shape == (len(split), 5)
        assert split.targets.dtype == np.float32
        assert np.isfinite(split.targets).all()
        assert split.targets.min() >= 0 and split.targets.max() <= 1
    assert ds.traits == BIG_FIVE
