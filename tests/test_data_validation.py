"""Hostile and broken inputs: each one repaired with a counted warning or refused by name."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
from test_data_readers import SIZES, mmsa_split, write_pickle

from psamf.data import UnsafePickleError, load_dataset


def broken(tmp_path, mutate, *, name: str = "unaligned_50.pkl"):
    """Write an unaligned MMSA pickle after ``mutate(data)`` and return its folder."""
    data = {s: mmsa_split(s, n, aligned=False) for s, n in SIZES.items()}
    mutate(data)
    write_pickle(tmp_path / name, data)
    return tmp_path


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_nan_and_inf_features_are_zeroed_with_one_warning_per_field(tmp_path, caplog):
    def mutate(data):
        data["train"]["audio"][0, 0, :2] = [np.nan, np.inf]
        data["train"]["audio"][1, 0, 0] = -np.inf
        data["test"]["vision"][2, 0, 1] = np.nan

    with caplog.at_level(logging.WARNING):
        ds = load_dataset(broken(tmp_path, mutate))
    msgs = warnings_of(caplog)
    assert len(msgs) == 2
    assert any("split 'train', field 'audio'" in m and "replaced 3 non-finite" in m for m in msgs)
    assert any("split 'test', field 'vision'" in m and "replaced 1 non-finite" in m for m in msgs)
    for split in ds.splits.values():
        for mod in split.modalities.values():
            assert np.isfinite(mod.features).all()
    assert ds.splits["train"].modalities["audio"].features[0, 0, 0] == 0.0


def test_values_in_padding_are_zeroed_with_warning(tmp_path, caplog):
    def mutate(data):
        data["valid"]["audio_lengths"][1] = 2
        data["valid"]["audio"][1, 2:, :] = 1.0  # 4 frames x 4 dims beyond the length

    with caplog.at_level(logging.WARNING):
        ds = load_dataset(broken(tmp_path, mutate))
    assert any("zeroed 16 non-zero values in padding" in m for m in warnings_of(caplog))
    assert not ds.splits["valid"].modalities["audio"].features[1, 2:].any()


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d["test"].__setitem__("audio", d["test"]["audio"][:, 0, :]),
         r"split 'test', field 'audio'.*3-D"),
        (lambda d: d["valid"]["vision_lengths"].__setitem__(2, 99),
         r"split 'valid', field 'vision_lengths', index 2: length 99 outside \[0, 6\]"),
        (lambda d: d["valid"]["vision_lengths"].__setitem__(0, -1),
         r"split 'valid', field 'vision_lengths', index 0"),
        (lambda d: d["train"].__setitem__("audio", d["train"]["audio"][:-1]),
         r"split 'train', field 'audio': 4 rows but the split has 5"),
        (lambda d: d["train"].__setitem__("raw_text", d["train"]["raw_text"][:-1]),
         r"split 'train', field 'texts': 4 entries but 5 ids"),
        (lambda d: d["test"]["regression_labels"].__setitem__(3, 3.5),
         r"split 'test', field 'labels', index 3 .*outside \[-3, 3\]"),
        (lambda d: d["train"]["regression_labels"].__setitem__(1, np.nan),
         r"split 'train', field 'labels', index 1 .*not finite"),
        (lambda d: d["valid"]["raw_text"].__setitem__(1, "   "),
         r"split 'valid', field 'text', index 1: 1 empty transcript"),
        (lambda d: d["test"]["id"].__setitem__(2, d["test"]["id"][0]),
         r"split 'test', field 'id', index 2: duplicate id"),
        (lambda d: d["test"].__setitem__("audio", d["test"]["audio"][:, :, :2]),
         r"split 'test', field 'audio': width 2 but split 'train' has width 4"),
        (lambda d: d["test"]["id"].__setitem__(1, d["train"]["id"][4]),
         r"split 'test', field 'id', index 1: 1 id\(s\) also in split 'train'"),
    ],
    ids=["features-2d", "length-too-long", "length-negative", "rows-mismatch", "texts-mismatch",
         "label-out-of-range", "label-nan", "empty-text", "duplicate-id", "width-mismatch",
         "id-in-two-splits"],
)
def test_refused_with_file_split_field_index(tmp_path, mutate, match):
    folder = broken(tmp_path, mutate)
    with pytest.raises(ValueError, match=match) as err:
        load_dataset(folder)
    assert "unaligned_50.pkl" in str(err.value)


def test_command_in_pickle_is_not_run(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    data = {s: mmsa_split(s, n, aligned=False) for s, n in SIZES.items()}
    data["train"]["raw_text"] = Exploit()
    write_pickle(tmp_path / "unaligned_50.pkl", data)
    with pytest.raises(UnsafePickleError, match=r"unaligned_50\.pkl.*(posix|os)\.system"):
        load_dataset(tmp_path)
    assert not marker.exists()


def test_truncated_pickle(tmp_path):
    path = write_pickle(tmp_path / "unaligned_50.pkl",
                        {s: mmsa_split(s, n, aligned=False) for s, n in SIZES.items()})
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ValueError, match=r"unaligned_50\.pkl: not a readable pickle.*truncated"):
        load_dataset(tmp_path)


def test_pickle_of_the_wrong_shape(tmp_path):
    write_pickle(tmp_path / "unaligned_50.pkl", [1, 2, 3])
    with pytest.raises(ValueError, match="expected a dict of splits"):
        load_dataset(tmp_path)
    write_pickle(tmp_path / "unaligned_50.pkl",
                 {s: {"id": [s], "raw_text": ["hello"]} for s in ("train", "valid", "test")})
    with pytest.raises(ValueError, match=r"split 'train' has no field 'regression_labels'"):
        load_dataset(tmp_path)


@pytest.mark.parametrize("protocol", [2, 5])
def test_old_and_new_protocols_read_and_repair(tmp_path, protocol):
    # Protocol 2 (bytes via _codecs.encode) and 5 (arrays via _frombuffer) take other paths.
    data = {s: mmsa_split(s, n, aligned=False) for s, n in SIZES.items()}
    data["train"]["audio"][0, 0, 0] = np.nan
    (tmp_path / "unaligned_50.pkl").write_bytes(pickle.dumps(data, protocol=protocol))
    ds = load_dataset(tmp_path)
    assert len(ds.splits["train"]) == SIZES["train"]
    assert ds.splits["train"].modalities["audio"].features[0, 0, 0] == 0.0
