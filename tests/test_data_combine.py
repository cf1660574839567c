"""Several datasets as one (``mosi+mosei``, ``DIR1+DIR2``): concatenated splits, prefixed ids,
shared modalities only, and one-line refusals of bad names."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest

from psamf.cli import main
from psamf.data import combine, load_dataset, make_sample_dataset, part_indices
from psamf.errors import InputError
from psamf.training.config import DataConfig

MODE = {"train": "train", "valid": "valid", "test": "test"}


def write_label_csv(folder: Path, *, seed: int, n_train: int, n_valid: int, n_test: int) -> Path:
    """A text-only dataset folder (label.csv, ``id,text,label,mode``) from the sample's texts."""
    data = make_sample_dataset(seed, n_train=n_train, n_valid=n_valid, n_test=n_test)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "label.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", "label", "mode"])
        for split, part in data.splits.items():
            for uid, text, label in zip(part.ids, part.texts, part.labels, strict=True):
                writer.writerow([uid, text, f"{float(label):.3f}", MODE[split]])
    return folder


def test_mosi_plus_mosei_adds_up_with_text_only(shared_data, caplog):
    root = shared_data("mosi", "mosei")
    mosi, mosei = load_dataset("mosi", root), load_dataset("mosei", root)
    assert "audio" in mosi.modality_widths() and not mosei.modality_widths()
    with caplog.at_level(logging.WARNING, logger="psamf.data.combine"):
        both = load_dataset("mosi+mosei", root)
    dropped = [r for r in caplog.records if "audio dropped" in r.getMessage()]
    assert len(dropped) == 1 and "mosei" in dropped[0].getMessage()  # said once, naming why
    assert both.parts == ("mosi", "mosei") and both.dropped_modalities == ("audio",)
    assert both.modality_widths() == {}  # a text(+P) dataset
    for split in ("train", "valid", "test"):
        ids = both.splits[split].ids
        assert len(ids) == len(mosi.splits[split]) + len(mosei.splits[split])
        assert len(set(ids)) == len(ids)
        groups = part_indices(ids, both.parts)
        assert {k: len(v) for k, v in groups.items()} == {
            "mosi": len(mosi.splits[split]), "mosei": len(mosei.splits[split])}
        # labels and texts travel with their ids
        first_mosei = groups["mosei"][0]
        assert ids[first_mosei] == "mosei/" + mosei.splits[split].ids[0]
        assert both.splits[split].texts[first_mosei] == mosei.splits[split].texts[0]
        assert both.splits[split].labels[first_mosei] == mosei.splits[split].labels[0]
    summary = both.summary()
    assert "combined from: mosi, mosei" in summary and "dropped: audio" in summary
    assert f"mosi: train {len(mosi.splits['train'])}" in summary


def test_shared_modalities_are_kept_and_padded(tmp_path):
    short = make_sample_dataset(1, n_train=6, n_valid=3, n_test=4, max_frames=5)
    long = make_sample_dataset(2, n_train=5, n_valid=2, n_test=3, max_frames=9)
    both = combine([("short", short), ("long", long)])
    assert both.modality_widths() == short.modality_widths() and not both.dropped_modalities
    audio = both.splits["test"].modalities["audio"]
    assert audio.features.shape == (7, 9, short.modality_widths()["audio"])
    np.testing.assert_array_equal(audio.features[:4, :5],
                                  short.splits["test"].modalities["audio"].features)
    assert not audio.features[:4, 5:].any()  # the shorter part is zero-padded
    np.testing.assert_array_equal(audio.lengths[4:],
                                  long.splits["test"].modalities["audio"].lengths)
    # a text-only folder joined with the sample: only the text remains
    text = write_label_csv(tmp_path / "words", seed=3, n_train=4, n_valid=2, n_test=2)
    mixed = load_dataset(f"sample+{text}")
    assert mixed.parts == ("sample", "words") and mixed.modality_widths() == {}
    assert mixed.dropped_modalities == ("audio", "vision") and mixed.synthetic


def test_limits_apply_to_each_part(tmp_path):
    from psamf.training.config import TrainConfig
    from psamf.training.prepare import subset_splits

    a = write_label_csv(tmp_path / "a", seed=1, n_train=10, n_valid=4, n_test=6)
    b = write_label_csv(tmp_path / "b", seed=2, n_train=8, n_valid=3, n_test=2)
    name = f"{a}+{b}"
    config = TrainConfig(data=DataConfig(name=name, limit_test=3))
    splits = subset_splits(config, load_dataset(name))
    ids = splits["test"].ids
    assert [uid.split("/")[0] for uid in ids] == ["a"] * 3 + ["b"] * 2  # b has only 2
    assert len(splits["train"]) == 18


@pytest.mark.parametrize("name, words", [
    ("mosi+", "empty dataset name"),
    ("+mosei", "empty dataset name"),
    ("mosi+mosi", "named twice"),
])
def test_bad_names_are_one_line(name, words, capsys):
    with pytest.raises(InputError, match=words):
        DataConfig(name=name).validate()
    assert main(["data", "info", name]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err and "Traceback" not in err


def test_unusable_parts_are_one_line(tmp_path, capsys):
    text = write_label_csv(tmp_path / "words", seed=1, n_train=3, n_valid=1, n_test=1)
    cases = [
        (f"{text}+first_impressions", "personality corpus"),
        (f"{text}+{tmp_path / 'nowhere'}", "nowhere: no such folder"),
        (f"{text}+{tmp_path / 'x' / 'words'}", "named twice"),  # same folder name twice
    ]
    for name, words in cases:
        assert main(["data", "info", name]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and words in err, err
    other = make_sample_dataset(0, audio_dim=5)
    with pytest.raises(InputError, match="audio features differ in width .*a d=12, b d=5"):
        combine([("a", make_sample_dataset(0)), ("b", other)])


def test_a_folder_with_a_plus_in_its_name_is_one_folder(tmp_path):
    folder = write_label_csv(tmp_path / "pre+post", seed=1, n_train=3, n_valid=1, n_test=1)
    data = load_dataset(str(folder))
    assert not data.parts and len(data.splits["train"]) == 3


def test_features_from_different_profiles_are_not_mixed():
    """Equal widths do not make two extractors' features one kind: the profiles must agree."""
    import dataclasses

    def profiled(seed: int, acoustic: str | None):
        data = make_sample_dataset(seed, n_train=4, n_valid=2, n_test=2)
        profile = None if acoustic is None else {
            "acoustic": {"name": acoustic, "version": "1"}, "face": None}
        return dataclasses.replace(data, profile=profile)

    same = combine([("a", profiled(1, "librosa")), ("b", profiled(2, "librosa"))])
    assert same.profile == {"acoustic": {"name": "librosa", "version": "1"}, "face": None}
    for other in (profiled(2, "egemaps"), profiled(2, None)):
        with pytest.raises(InputError, match="different feature profiles .*a: acoustic=librosa"):
            combine([("a", profiled(1, "librosa")), ("b", other)])
