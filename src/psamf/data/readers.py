"""Readers for the multimodal sentiment formats in the wild, all returning ``MultimodalDataset``.

- MMSA feature pickles (``aligned_50.pkl`` / ``unaligned_50.pkl`` and files in that layout): split
  -> ``id``, ``raw_text``, ``regression_labels``, optional ``audio`` / ``vision`` (N, T, d) with
  ``audio_lengths`` / ``vision_lengths``. A modality whose key is missing is simply absent. Aligned
  files carry no lengths: every one of their T frames counts as valid (that is what "aligned to the
  text" means; the zero frames the aligner padded with are kept, as aligned-data baselines do).
- The PSA-MF authors' layout: an unaligned pickle with split -> ``vision``, ``audio``, ``labels``,
  ``id`` and no text, plus an MMSA ``label.csv`` that supplies the transcripts (joined on id
  ``video_id$_$clip_id``).
- ``label.csv`` alone (text-only runs): columns ``video_id, clip_id, text, label, mode`` (MMSA,
  optional ``annotation``) or ``id, text, label, mode``.

Every result goes through ``psamf.data.validate.validate_dataset`` (one set of rules for all).
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from psamf.data._util import few
from psamf.data.dataset import (
    MODALITIES,
    SPLITS,
    ModalityFeatures,
    MultimodalDataset,
    PersonalityDataset,
    SplitData,
)
from psamf.data.first_impressions import FI_SPLIT_FILES, read_first_impressions
from psamf.data.safe_pickle import safe_load
from psamf.data.validate import validate_dataset
from psamf.errors import InputError, NotFoundError

log = logging.getLogger(__name__)

# Spellings of the split names found in released files -> ours.
SPLIT_ALIASES: dict[str, str] = {
    "train": "train", "training": "train",
    "valid": "valid", "val": "valid", "dev": "valid", "validation": "valid",
    "test": "test",
}
ID_SEPARATOR = "$_$"
MMSA_PICKLE_NAMES: tuple[str, ...] = ("unaligned_50.pkl", "aligned_50.pkl")
LABEL_CSV = "label.csv"


# ----------------------------------------------------------------------------- label.csv


@dataclass(frozen=True)
class LabelRow:
    """One utterance of a label.csv: the text, the label and the split it belongs to."""

    text: str
    label: float
    split: str
    line: int  # 1-based line number in the file, for error messages


def read_label_rows(path: str | Path, *, encoding: str = "utf-8") -> dict[str, LabelRow]:
    """Rows of a label.csv keyed by utterance id, in file order (either column layout).

    ``encoding`` is the file's text encoding (a UTF-8 byte-order mark is skipped); a file that
    does not decode is refused with the encoding to pass instead.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"{path}: label file not found")
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        with path.open(newline="", encoding=codec) as handle:
            return _label_rows(csv.DictReader(handle), path)
    except UnicodeError as err:
        raise InputError(_decode_message(path, encoding, err)) from None
    except LookupError:
        raise InputError(f"{path}: unknown text encoding {encoding!r}; use e.g. utf-8, latin-1, "
                         "cp1252 or utf-16") from None
    except csv.Error as err:
        raise InputError(f"{path}: not a readable CSV file ({err})") from None


def _label_rows(reader: csv.DictReader, path: Path) -> dict[str, LabelRow]:
    columns = set(reader.fieldnames or ())
    if {"video_id", "clip_id"} <= columns:
        make_id = _mmsa_id
    elif "id" in columns:
        make_id = _plain_id
    else:
        raise InputError(
            f"{path}: no id columns; expected 'video_id,clip_id' (MMSA) or 'id', found "
            f"{', '.join(sorted(columns)) or 'no header'}"
        )
    missing = {"text", "label", "mode"} - columns
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(sorted(missing))}; a label.csv needs "
            "text, label and mode (train/valid/test)"
        )
    width = len(reader.fieldnames or ())
    rows: dict[str, LabelRow] = {}
    for record in reader:
        line = reader.line_num  # the physical line the record ends on (quoted text may wrap)
        if None in record.values():  # DictReader fills the fields a short row lacks with None
            given = sum(v is not None for v in record.values())
            raise InputError(
                f"{path}: line {line} has {given} field(s) but the header has {width}; "
                "complete the row or remove it"
            )
        if None in record:  # and puts a long row's extra fields under the key None
            raise InputError(
                f"{path}: line {line} has {width + len(record[None])} fields but the header has "
                f"{width}; quote text that contains commas"
            )
        uid = make_id(record)
        mode = (record["mode"] or "").strip().lower()
        if mode not in SPLIT_ALIASES:
            raise InputError(
                f"{path}: line {line}, field 'mode': '{record['mode']}' is not a split name "
                f"(use one of {', '.join(SPLIT_ALIASES)})"
            )
        try:
            label = float(record["label"])
        except (TypeError, ValueError):
            raise InputError(
                f"{path}: line {line} (id {uid}), field 'label': '{record['label']}' is not "
                "a number"
            ) from None
        if uid in rows:
            raise InputError(
                f"{path}: line {line}: id '{uid}' repeats line {rows[uid].line}"
            )
        rows[uid] = LabelRow(record["text"] or "", label, SPLIT_ALIASES[mode], line)
    if not rows:
        raise InputError(f"{path}: no rows below the header")
    return rows


def _decode_message(path: Path, encoding: str, err: UnicodeError) -> str:
    """Which encoding the file is probably in: a UTF-16/32 byte-order mark, or NUL bytes beside
    ASCII (UTF-16 without one), else a single-byte Windows / ISO encoding."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        guess = "utf-16"
    else:
        try:
            path.read_bytes().decode("cp1252")
            guess = "cp1252"
        except UnicodeDecodeError:  # latin-1 decodes any byte sequence
            guess = "latin-1"
    where = f" at byte {err.start}" if isinstance(err, UnicodeDecodeError) else ""
    if guess == encoding.lower():
        return f"{path}: cannot be read as {encoding}{where}; pass the file's real encoding " \
               "with --labels-encoding (Python: labels_encoding=)"
    return (f"{path}: not valid {encoding} text{where}; it looks like {guess}: pass "
            f"--labels-encoding {guess} (train also: data.labels_encoding={guess}; Python: "
            f"labels_encoding='{guess}'), or save the file as UTF-8")


def _mmsa_id(record: Mapping[str, str]) -> str:
    return f"{record['video_id']}{ID_SEPARATOR}{record['clip_id']}"


def _plain_id(record: Mapping[str, str]) -> str:
    return str(record["id"])


def read_label_csv(
    path: str | Path, *, name: str | None = None, encoding: str = "utf-8"
) -> MultimodalDataset:
    """A text-only dataset from a label.csv (``encoding``: its text encoding)."""
    path = Path(path)
    rows = read_label_rows(path, encoding=encoding)
    splits: dict[str, SplitData] = {}
    for split in SPLITS:
        ids = [uid for uid, row in rows.items() if row.split == split]
        splits[split] = SplitData(
            ids=ids,
            texts=[rows[i].text for i in ids],
            labels=np.array([rows[i].label for i in ids], dtype=np.float64),
        )
    _require_splits(splits, path)
    return validate_dataset(
        MultimodalDataset(name=name or path.parent.name, splits=splits, source=str(path))
    )


# ----------------------------------------------------------------------------- feature pickles


def _load_split_dict(path: Path) -> dict[str, Mapping[str, Any]]:
    """The pickle's top level, with split names normalised to train / valid / test."""
    data = safe_load(path)
    if not isinstance(data, Mapping):
        raise InputError(
            f"{path}: expected a dict of splits (train/valid/test), found {type(data).__name__}"
        )
    splits: dict[str, Mapping[str, Any]] = {}
    for key, value in data.items():
        ours = SPLIT_ALIASES.get(str(key).lower())
        if ours is None:
            log.debug("%s: ignoring top-level key %r", path, key)
            continue
        if ours in splits:
            raise InputError(f"{path}: two keys name the '{ours}' split (e.g. 'valid' and 'val')")
        if not isinstance(value, Mapping):
            raise InputError(f"{path}: split '{key}' is a {type(value).__name__}, not a dict")
        splits[ours] = value
    _require_splits(splits, path)
    return {s: splits[s] for s in SPLITS}


def _require_splits(splits: Mapping[str, Any], path: Path) -> None:
    missing = [s for s in SPLITS if s not in splits or len(splits[s]) == 0]
    if missing:
        raise InputError(
            f"{path}: split(s) {', '.join(missing)} missing or empty; psamf needs train, valid "
            "(also accepted: val, dev) and test"
        )


def _field(split: Mapping[str, Any], key: str, path: Path, split_name: str) -> Any:
    if key not in split:
        raise InputError(
            f"{path}: split '{split_name}' has no field '{key}' (fields: "
            f"{', '.join(map(str, split))})"
        )
    return split[key]


def _text(value: Any, where: str, index: int) -> str:
    """A transcript or id as text: str, UTF-8 bytes, or a number (ids written as numbers). Anything
    else (a list, a dict, ...) is refused: str() of a container from a hostile file can recurse
    without end or take minutes."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InputError(f"{where}, index {index}: bytes that are not UTF-8 ({err.reason} at "
                             f"byte {err.start}); re-export the text as UTF-8") from None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return str(value)
    raise InputError(f"{where}, index {index}: expected text, got {type(value).__name__}")


def _array(value: Any, where: str, dtype: Any = None) -> np.ndarray:
    """``np.asarray`` for a field of a file: what numpy cannot make an array of (ragged or too
    deeply nested lists, mixed objects) is one line naming the field, not numpy's traceback."""
    try:
        return np.asarray(value, dtype=dtype)
    except (ValueError, TypeError, OverflowError, RecursionError) as err:
        reason = " ".join(str(err).split())[:120]
        raise InputError(f"{where}: not an array ({type(err).__name__}: {reason}); expected "
                         "numbers in the MMSA layout") from None


def _strings(values: Any, where: str) -> list[str]:
    return [_text(v, where, i) for i, v in enumerate(_array(values, where, object).reshape(-1))]


def _ids(values: Any, where: str) -> list[str]:
    """Utterance ids; a 2-D id array (video, clip, ...) becomes ``video$_$clip``."""
    arr = _array(values, where, object)
    if arr.ndim == 2 and arr.shape[1] >= 2:
        return [f"{_text(row[0], where, i)}{ID_SEPARATOR}{_text(row[1], where, i)}"
                for i, row in enumerate(arr)]
    return _strings(arr, where)


def _modalities(
    split: Mapping[str, Any], path: Path, split_name: str
) -> dict[str, ModalityFeatures]:
    """Audio / vision features present in the split; lengths default to T (aligned data)."""
    out: dict[str, ModalityFeatures] = {}
    for name in MODALITIES:
        if name not in split:
            continue
        where = f"{path}: split '{split_name}', field '{name}'"
        feats = _array(split[name], where)
        if feats.ndim != 3:
            raise InputError(
                f"{path}: split '{split_name}', field '{name}': features must be 3-D (N, T, d), "
                f"got shape {feats.shape}"
            )
        key = f"{name}_lengths"
        if key in split:
            lengths = _array(split[key], f"{where}_lengths").reshape(-1)
        else:
            lengths = np.full(feats.shape[0], feats.shape[1], dtype=np.int64)
        out[name] = ModalityFeatures(feats, lengths)
    return out


def read_mmsa_pickle(path: str | Path, *, name: str | None = None) -> MultimodalDataset:
    """An MMSA-layout pickle (aligned or unaligned; any subset of audio / vision)."""
    path = Path(path)
    return _mmsa_dataset(_load_split_dict(path), path, name)


def _mmsa_dataset(
    raw: Mapping[str, Mapping[str, Any]], path: Path, name: str | None
) -> MultimodalDataset:
    splits: dict[str, SplitData] = {}
    for split_name, split in raw.items():
        splits[split_name] = SplitData(
            ids=_ids(_field(split, "id", path, split_name),
                     f"{path}: split '{split_name}', field 'id'"),
            texts=_strings(_field(split, "raw_text", path, split_name),
                           f"{path}: split '{split_name}', field 'raw_text'"),
            labels=_array(_field(split, "regression_labels", path, split_name),
                          f"{path}: split '{split_name}', field 'regression_labels'"),
            modalities=_modalities(split, path, split_name),
        )
    return validate_dataset(
        MultimodalDataset(name=name or path.parent.name, splits=splits, source=str(path))
    )


def read_authors_layout(
    features: str | Path, labels: str | Path, *, name: str | None = None,
    encoding: str = "utf-8",
) -> MultimodalDataset:
    """The PSA-MF authors' unaligned pickle (no text) joined with a label.csv for the text."""
    features = Path(features)
    return _authors_dataset(_load_split_dict(features), features, Path(labels), name, encoding)


def _authors_dataset(
    raw: Mapping[str, Mapping[str, Any]], features: Path, labels: Path, name: str | None,
    encoding: str = "utf-8",
) -> MultimodalDataset:
    rows = read_label_rows(labels, encoding=encoding)
    splits: dict[str, SplitData] = {}
    for split_name, split in raw.items():
        ids = _ids(_field(split, "id", features, split_name),
                   f"{features}: split '{split_name}', field 'id'")
        unknown = [i for i in ids if i not in rows]
        if unknown:
            raise InputError(
                f"{features}: split '{split_name}', field 'id': {len(unknown)} id(s) not in "
                f"{labels} (ids are matched as video_id{ID_SEPARATOR}clip_id): {few(unknown)}"
            )
        wrong_fold = [i for i in ids if rows[i].split != split_name]
        if wrong_fold:
            log.warning(
                "%s: split '%s': %d id(s) sit in another fold in %s (e.g. %s); using the "
                "pickle's split", features, split_name, len(wrong_fold), labels, wrong_fold[0],
            )
        key = "labels" if "labels" in split else "regression_labels"
        splits[split_name] = SplitData(
            ids=ids,
            texts=[rows[i].text for i in ids],
            labels=_array(_field(split, key, features, split_name),
                          f"{features}: split '{split_name}', field '{key}'"),
            modalities=_modalities(split, features, split_name),
        )
    dataset = validate_dataset(
        MultimodalDataset(
            name=name or features.parent.name, splits=splits, source=f"{features} + {labels}"
        )
    )
    _warn_label_disagreement(dataset, rows, labels)
    return dataset


def _warn_label_disagreement(
    dataset: MultimodalDataset, rows: Mapping[str, LabelRow], labels_path: Path
) -> None:
    for split_name, split in dataset.splits.items():
        csv_labels = np.array([rows[i].label for i in split.ids])
        differ = np.flatnonzero(np.abs(csv_labels - split.labels) > 1e-3)
        if differ.size:
            log.warning(
                "%s: split '%s': %d label(s) differ from the feature pickle's (e.g. id %s); "
                "using the pickle's", labels_path, split_name, differ.size,
                split.ids[int(differ[0])],
            )


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def check_against_labels(
    dataset: MultimodalDataset, labels_path: str | Path, *, encoding: str = "utf-8"
) -> None:
    """Refuse when a pickle and a label.csv describing the same corpus disagree.

    Same ids per split, same labels (to 1e-3), same text up to case and whitespace.
    """
    labels_path = Path(labels_path)
    rows = read_label_rows(labels_path, encoding=encoding)
    source = dataset.source
    for split_name, split in dataset.splits.items():
        csv_ids = {uid for uid, row in rows.items() if row.split == split_name}
        only_pickle = sorted(set(split.ids) - csv_ids)
        only_csv = sorted(csv_ids - set(split.ids))
        if only_pickle or only_csv:
            raise InputError(
                f"{source} and {labels_path} disagree on split '{split_name}': "
                f"{len(only_pickle)} id(s) only in the pickle ({few(only_pickle, 3)}), "
                f"{len(only_csv)} only in the csv ({few(only_csv, 3)})"
            )
        for i, uid in enumerate(split.ids):
            row = rows[uid]
            if not math.isclose(row.label, float(split.labels[i]), abs_tol=1e-3):
                raise InputError(
                    f"{source}: split '{split_name}', field 'regression_labels', index {i} (id "
                    f"{uid}): {float(split.labels[i])} but {labels_path} line {row.line} says "
                    f"{row.label}"
                )
            if _norm(row.text) != _norm(split.texts[i]):
                raise InputError(
                    f"{source}: split '{split_name}', field 'raw_text', index {i} (id {uid}) "
                    f"differs from {labels_path} line {row.line}"
                )


# ----------------------------------------------------------------------------- folders


def read_features(
    features: str | Path, labels: str | Path | None = None, *, name: str | None = None,
    encoding: str = "utf-8",
) -> MultimodalDataset:
    """A feature pickle, with an optional label.csv: MMSA (cross-checked) or authors' layout."""
    features = Path(features)
    if not features.is_file():
        raise NotFoundError(f"{features}: feature pickle not found")
    raw = _load_split_dict(features)
    if all("raw_text" in split for split in raw.values()):  # MMSA; else the authors' layout
        dataset = _mmsa_dataset(raw, features, name)
        if labels is not None:
            check_against_labels(dataset, labels, encoding=encoding)
            dataset.source = f"{features} (checked against {labels})"
        return dataset
    if labels is None:
        raise InputError(
            f"{features}: the pickle has no 'raw_text' (the PSA-MF authors' layout); pass the "
            "label.csv that holds the transcripts (labels=PATH, or put label.csv beside it)"
        )
    return _authors_dataset(raw, features, Path(labels), name, encoding)


def _pick_pickle(folder: Path) -> Path | None:
    """The feature pickle to use in a folder, or None; ambiguity is an error."""
    for known in MMSA_PICKLE_NAMES:  # the unaligned file first: PSA-MF uses unaligned data
        if (folder / known).is_file():
            return folder / known
    fi_names = {f"{kind}_{stem}.pkl" for kind in ("annotation", "transcription")
                for stem in FI_SPLIT_FILES.values()}
    others = sorted(p for p in folder.glob("*.pkl") if p.name not in fi_names)
    if len(others) > 1:
        raise InputError(
            f"{folder}: several feature pickles ({few(p.name for p in others)}); say which with "
            "features=PATH (CLI: --features)"
        )
    return others[0] if others else None


def read_folder(
    folder: str | Path,
    *,
    name: str | None = None,
    features: str | Path | None = None,
    labels: str | Path | None = None,
    labels_encoding: str = "utf-8",
) -> MultimodalDataset | PersonalityDataset:
    """Sniff a folder (or use explicit ``features`` / ``labels`` paths) and read it.

    ``labels_encoding`` is the text encoding of the label.csv, when one is read.

    Folder rules: First Impressions pickles -> that corpus; a feature pickle (``unaligned_50.pkl``
    before ``aligned_50.pkl`` before any single other ``*.pkl``) with or without ``label.csv``;
    otherwise ``label.csv`` alone gives a text-only dataset.
    """
    folder = Path(folder)
    if features is None and labels is None:
        if not folder.is_dir():
            raise NotFoundError(f"{folder}: dataset folder not found")
        if (folder / "annotation_training.pkl").is_file():
            return read_first_impressions(folder)
        features = _pick_pickle(folder)
        csv_path = folder / LABEL_CSV
        labels = csv_path if csv_path.is_file() else None
        if features is None and labels is None:
            raise NotFoundError(
                f"{folder}: no dataset files found; expected {LABEL_CSV} and/or a feature "
                f"pickle ({', '.join(MMSA_PICKLE_NAMES)} or one other *.pkl), or the First "
                "Impressions annotation_*/transcription_* pickles"
            )
    name = name or folder.name
    if features is not None:
        from psamf.media.profile import read_profile  # no media libraries: just the JSON

        dataset = read_features(features, labels, name=name, encoding=labels_encoding)
        dataset.profile = read_profile(Path(features).parent)  # written by psamf extract
        return dataset
    assert labels is not None
    return read_label_csv(labels, name=name, encoding=labels_encoding)
