"""Readers for every supported layout, on small real-format files written at test time."""

from __future__ import annotations

import csv
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest

from psamf.data import (
    MultimodalDataset,
    load_dataset,
    read_authors_layout,
    read_label_csv,
    read_mmsa_pickle,
)

SIZES = {"train": 5, "valid": 3, "test": 4}


def mmsa_split(
    split: str, n: int, *, aligned: bool, vision: bool = True, text: bool = True, t: int = 6
) -> dict:
    """One split in the MMSA pickle layout, including fields the readers must ignore."""
    rng = np.random.default_rng(len(split) * 100 + n)
    ids = np.array([f"vid{split}{i // 2}$_${i % 2 + 1}" for i in range(n)], dtype=object)
    labels = np.round(rng.uniform(-3, 3, size=n), 2).astype(np.float32)
    out: dict = {
        "id": ids,
        "regression_labels": labels,
        "classification_labels": (labels > 0).astype(np.float32),
        "text": rng.normal(size=(n, t, 5)).astype(np.float32),  # GloVe-like, ignored
        "annotations": np.array(["Positive"] * n, dtype=object),
    }
    if text:
        out["raw_text"] = np.array([f"utterance {j} of {split}" for j in range(n)], dtype=object)
    for name, width in (("audio", 4), *((("vision", 3),) if vision else ())):
        feats = rng.normal(size=(n, t, width)).astype(np.float32)
        if not aligned:
            lengths = rng.integers(1, t + 1, size=n)
            lengths[0] = t
            feats[np.arange(t)[None, :] >= lengths[:, None]] = 0.0
            out[f"{name}_lengths"] = [int(x) for x in lengths]  # MMSA stores a list
        out[name] = feats
    return out


def write_pickle(path: Path, obj: object, protocol: int = 4) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def write_mmsa(path: Path, *, aligned: bool = False, valid_key: str = "valid", **kw) -> Path:
    data = {
        (valid_key if s == "valid" else s): mmsa_split(s, n, aligned=aligned, **kw)
        for s, n in SIZES.items()
    }
    return write_pickle(path, data)


def write_label_csv(path: Path, data: dict, *, variant: str = "mmsa",
                    modes: dict[str, str] | None = None) -> Path:
    """label.csv matching an MMSA-layout dict (ids video$_$clip), in either column variant."""
    modes = modes or {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        w = csv.writer(handle)
        w.writerow(["video_id", "clip_id", "text", "label", "annotation", "mode"]
                   if variant == "mmsa" else ["id", "text", "label", "mode"])
        for split, fields in data.items():
            for j, uid in enumerate(fields["id"]):
                text = f"utterance {j} of {split}"
                label = float(np.asarray(fields.get("regression_labels",
                                                    fields.get("labels"))).reshape(-1)[j])
                mode = modes.get(split, split)
                if variant == "mmsa":
                    video, clip = uid.split("$_$")
                    w.writerow([video, clip, text, label, "x", mode])
                else:
                    w.writerow([uid, text, label, mode])
    return path


def assert_well_formed(ds: MultimodalDataset) -> None:
    assert list(ds.splits) == ["train", "valid", "test"]
    assert {k: len(v) for k, v in ds.splits.items()} == SIZES
    for split in ds.splits.values():
        assert split.labels.dtype == np.float32 and split.labels.shape == (len(split),)
        for mod in split.modalities.values():
            assert mod.features.dtype == np.float32 and mod.lengths.dtype == np.int64
            beyond = np.arange(mod.max_frames)[None, :] >= mod.lengths[:, None]
            assert not mod.features[beyond].any()


def test_unaligned_mmsa_pickle_with_val_key(tmp_path):
    path = write_mmsa(tmp_path / "ds" / "unaligned_50.pkl", valid_key="val")
    ds = load_dataset(tmp_path / "ds")
    assert_well_formed(ds)
    assert ds.modality_widths() == {"audio": 4, "vision": 3}
    raw = pickle.loads(path.read_bytes())
    np.testing.assert_array_equal(ds.splits["valid"].modalities["audio"].lengths,
                                  raw["val"]["audio_lengths"])
    np.testing.assert_allclose(ds.splits["test"].labels, raw["test"]["regression_labels"])
    assert ds.splits["train"].texts[1] == "utterance 1 of train"
    assert ds.splits["train"].ids[1] == "vidtrain0$_$2"


def test_aligned_mmsa_pickle_counts_every_frame(tmp_path):
    write_mmsa(tmp_path / "aligned_50.pkl", aligned=True)
    ds = read_mmsa_pickle(tmp_path / "aligned_50.pkl")
    assert_well_formed(ds)
    for split in ds.splits.values():
        for mod in split.modalities.values():
            assert (mod.lengths == mod.max_frames).all()


def test_unaligned_preferred_when_both_present(tmp_path):
    write_mmsa(tmp_path / "aligned_50.pkl", aligned=True, t=7)
    write_mmsa(tmp_path / "unaligned_50.pkl", t=6)
    ds = load_dataset(tmp_path)
    assert ds.splits["train"].modalities["audio"].max_frames == 6
    assert "unaligned_50.pkl" in ds.source


def test_pickle_without_vision_loads_audio_only(tmp_path):
    write_mmsa(tmp_path / "features.pkl", vision=False)
    ds = load_dataset(tmp_path)
    assert_well_formed(ds)
    assert set(ds.modality_widths()) == {"audio"}
    assert "absent: vision" in ds.summary()


def test_authors_layout_joins_text_from_label_csv(tmp_path):
    data = {s: mmsa_split(s, n, aligned=False, text=False) for s, n in SIZES.items()}
    for fields in data.values():  # the authors' pickle: 'labels' shaped (N, 1), no raw_text
        fields["labels"] = fields.pop("regression_labels").reshape(-1, 1)
    write_label_csv(tmp_path / "label.csv", data)
    write_pickle(tmp_path / "unaligned.pkl", data)
    ds = load_dataset(tmp_path)
    assert_well_formed(ds)
    assert ds.splits["valid"].texts[2] == "utterance 2 of valid"
    np.testing.assert_allclose(ds.splits["train"].labels, data["train"]["labels"].reshape(-1))
    # Same result with explicit paths from anywhere.
    explicit = load_dataset("custom", features=tmp_path / "unaligned.pkl",
                            labels=tmp_path / "label.csv")
    assert explicit.splits["test"].texts == ds.splits["test"].texts


def test_authors_layout_two_column_ids(tmp_path):
    data = {s: mmsa_split(s, n, aligned=False, text=False) for s, n in SIZES.items()}
    csv_path = write_label_csv(tmp_path / "label.csv", data)
    for fields in data.values():  # ids as (video, clip) rows instead of 'video$_$clip'
        fields["id"] = np.array([uid.split("$_$") for uid in fields["id"]], dtype=object)
    write_pickle(tmp_path / "feats.pkl", data)
    ds = read_authors_layout(tmp_path / "feats.pkl", csv_path)
    assert ds.splits["train"].ids[:2] == ["vidtrain0$_$1", "vidtrain0$_$2"]
    assert ds.splits["train"].texts[1] == "utterance 1 of train"


def test_authors_layout_without_label_csv_asks_for_it(tmp_path):
    data = {s: mmsa_split(s, n, aligned=False, text=False) for s, n in SIZES.items()}
    write_pickle(tmp_path / "unaligned.pkl", data)
    with pytest.raises(ValueError, match=r"unaligned\.pkl.*raw_text.*label\.csv"):
        load_dataset(tmp_path)


def test_authors_layout_ids_that_do_not_join(tmp_path):
    data = {s: mmsa_split(s, n, aligned=False, text=False) for s, n in SIZES.items()}
    csv_path = write_label_csv(tmp_path / "label.csv", data)
    data["test"]["id"][1] = "ghost$_$9"
    write_pickle(tmp_path / "feats.pkl", data)
    with pytest.raises(ValueError, match=r"feats\.pkl: split 'test', field 'id'.*ghost\$_\$9"):
        read_authors_layout(tmp_path / "feats.pkl", csv_path)


@pytest.mark.parametrize("variant", ["mmsa", "plain"])
def test_text_only_label_csv_variants(tmp_path, variant):
    data = {s: mmsa_split(s, n, aligned=False) for s, n in SIZES.items()}
    path = write_label_csv(tmp_path / "label.csv", data, variant=variant,
                           modes={"valid": "val" if variant == "mmsa" else "dev"})
    ds = read_label_csv(path, name="tiny")
    assert_well_formed(ds)
    assert ds.name == "tiny" and ds.modality_widths() == {}
    assert ds.splits["train"].ids[3] == "vidtrain1$_$2"
    np.testing.assert_allclose(ds.splits["valid"].labels, data["valid"]["regression_labels"],
                               atol=1e-6)


def test_mmsa_pickle_checked_against_label_csv(tmp_path):
    data = {s: mmsa_split(s, n, aligned=False, vision=False) for s, n in SIZES.items()}
    write_label_csv(tmp_path / "label.csv", data)
    write_pickle(tmp_path / "mosi_like.pkl", data)
    ds = load_dataset(tmp_path)
    assert "checked against" in ds.source
    data["valid"]["raw_text"][1] = "something else entirely"
    write_pickle(tmp_path / "mosi_like.pkl", data)
    with pytest.raises(ValueError, match=r"split 'valid', field 'raw_text', index 1"):
        load_dataset(tmp_path)


def test_label_csv_bad_rows(tmp_path):
    path = tmp_path / "label.csv"
    path.write_text("id,text,label,mode\na,good,1.0,train\nb,bad,oops,test\n")
    with pytest.raises(ValueError, match=r"line 3 \(id b\), field 'label'"):
        read_label_csv(path)
    path.write_text("id,text,label,mode\na,good,1.0,holdout\n")
    with pytest.raises(ValueError, match=r"line 2, field 'mode'"):
        read_label_csv(path)
    path.write_text("id,text,mode\na,good,train\n")
    with pytest.raises(ValueError, match="missing column.*label"):
        read_label_csv(path)


def test_split_missing_from_pickle(tmp_path):
    data = {s: mmsa_split(s, n, aligned=False) for s, n in SIZES.items() if s != "test"}
    write_pickle(tmp_path / "unaligned_50.pkl", data)
    with pytest.raises(ValueError, match=r"unaligned_50\.pkl: split\(s\) test missing"):
        load_dataset(tmp_path)


def test_missing_files_and_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"mosi.*not found.*--root"):
        load_dataset("mosi", root=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty: no dataset files.*label\.csv"):
        load_dataset(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_dataset(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"absent\.pkl"):
        load_dataset("x", features=tmp_path / "absent.pkl")
    with pytest.raises(ValueError, match="unknown path argument"):
        load_dataset(tmp_path, feature=tmp_path)


def test_no_warnings_on_clean_files(tmp_path, caplog):
    write_mmsa(tmp_path / "unaligned_50.pkl")
    with caplog.at_level(logging.WARNING):
        load_dataset(tmp_path)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
