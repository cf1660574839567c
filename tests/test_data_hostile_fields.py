"""Plain-data pickles with the wrong things inside: every field of a valid MMSA file replaced by a
value of another shape or type. The restricted unpickler admits all of them (they are plain data),
so the readers must turn each into a clean load or one ``PsamfError`` line — never a traceback."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from test_data_readers import SIZES, mmsa_split

from psamf.cli import main
from psamf.data import load_dataset
from psamf.errors import PsamfError

DEEP = "psamf-deep-list-placeholder"


def _dumps(data: dict) -> bytes:
    """Protocol 2 (no frames), with the string DEEP replaced by a list nested 5,000 deep: too deep
    for pickle.dumps to write, but a few bytes per level for a hostile file."""
    raw = pickle.dumps(data, protocol=2)
    placeholder = b"X" + len(DEEP).to_bytes(4, "little") + DEEP.encode()
    levels = 5000
    return raw.replace(placeholder, b"]" * levels + b"a" * (levels - 1))


WEIRD = {
    "none": None,
    "int": 5,
    "huge int": 2**70,
    "text": "abc",
    "bad utf-8": b"\xff\xfe\x00",
    "empty list": [],
    "dict": {"a": 1},
    "deep list": DEEP,  # str() of it recurses past Python's limit
    "object dicts": np.array([{"x": 1}] * 5, dtype=object),
    "empty array": np.zeros((0,), dtype=np.float32),
    "nan": np.full(5, np.nan, dtype=np.float32),
    "inf 3-d": np.full((5, 6, 7), np.inf, dtype=np.float32),
    "4-d": np.zeros((5, 6, 7, 2), dtype=np.float32),
    "complex": np.ones(5, dtype=np.complex64),
    "bools": np.ones(5, dtype=bool),
    "datetimes": np.arange(5).astype("datetime64[D]"),
    "strings 3-d": np.array([[["x"]]] * 5),
    "negative lengths": np.full(5, -1, dtype=np.int64),
}
FIELDS = ("id", "raw_text", "regression_labels", "audio", "audio_lengths", "vision",
          "vision_lengths")


@pytest.mark.parametrize("field", FIELDS)
def test_every_field_of_the_wrong_shape_or_type_is_one_error_or_a_load(tmp_path, field):
    outcomes = {}
    for name, value in WEIRD.items():
        data = {split: mmsa_split(split, n, aligned=False) for split, n in SIZES.items()}
        data["train"][field] = value
        folder = tmp_path / f"{field}-{name}".replace(" ", "_")
        folder.mkdir()
        (folder / "unaligned_50.pkl").write_bytes(_dumps(data))
        try:
            load_dataset(str(folder))
            outcomes[name] = "loaded"
        except PsamfError as err:
            message = str(err)
            assert "\n" not in message and "unaligned_50.pkl" in message, message
            outcomes[name] = "refused"
    # A field that the model needs cannot be absent, a scalar or a container of the wrong kind.
    for name in ("none", "int", "dict", "deep list", "object dicts"):
        assert outcomes[name] == "refused", (field, name)


def test_the_cli_reports_a_deeply_nested_transcript_in_one_line(tmp_path, capsys):
    data = {split: mmsa_split(split, n, aligned=False) for split, n in SIZES.items()}
    data["valid"]["raw_text"] = [DEEP] + ["ok"] * (SIZES["valid"] - 1)
    (tmp_path / "unaligned_50.pkl").write_bytes(_dumps(data))
    assert main(["data", "info", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "field 'raw_text', index 0: expected text, got list" in err
