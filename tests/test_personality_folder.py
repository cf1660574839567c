"""EncoderFolder (what psamf knows about a personality encoder folder), the one pooling vocabulary
with its legacy ``cls``, and the pin on P's identity string (result files and the P cache use it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from model_fixtures import make_tiny_bert

from psamf.personality import (
    POOLINGS,
    EncoderFolder,
    PersonalityEncoder,
    TraitHead,
    encode_texts,
    identity_string,
    load_trait_head,
)
from psamf.personality.pooling import canonical_pooling

TEXTS = ["I love long walks", "parties are tiring", "plans, always plans"]


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> str:
    """A tiny encoder folder that was never personality-pretrained (no trait head)."""
    return make_tiny_bert(tmp_path_factory.mktemp("plain"), seed=3)


@pytest.fixture()
def pretrained(tmp_path, plain) -> str:
    """A copy of ``plain`` with a real mean-pooled trait head saved beside it."""
    folder = tmp_path / "pretrained"
    shutil.copytree(plain, folder)
    TraitHead(hidden_size=32, pooling="mean", fallback=[0.4] * 5).save(folder)
    return str(folder)


def _set_head_pooling(folder: str, value: str) -> None:
    path = Path(folder) / "trait_head.json"
    config = json.loads(path.read_text())
    config["pooling"] = value
    path.write_text(json.dumps(config))


def test_one_pooling_vocabulary():
    assert POOLINGS == ("first", "mean")
    assert [canonical_pooling(p) for p in POOLINGS] == list(POOLINGS)
    assert canonical_pooling("cls") == "first"  # legacy word, read only
    with pytest.raises(ValueError, match="trait_head.json 'pooling'.*'max'"):
        canonical_pooling("max", where="trait_head.json 'pooling'")


def test_folder_without_trait_head_is_not_pretrained(plain):
    folder = EncoderFolder.open(plain)
    assert not folder.pretrained and folder.is_folder and folder.hub_id is None
    assert folder.pooling == "first"  # no head: the paper's first token
    assert folder.head_config() is None and folder.trait_head() is None


def test_pretrained_folder_pools_as_its_trait_head(pretrained):
    folder = EncoderFolder.open(pretrained)
    assert folder.pretrained and folder.pooling == "mean"
    head = folder.trait_head()
    assert head is not None and head.pooling == "mean" and head.fallback == [0.4] * 5
    # Asking for a pooling overrides the head's, and changes P's identity.
    first = EncoderFolder.open(pretrained, pooling="first")
    assert first.pooling == "first" and first.pretrained
    assert first.identity() != folder.identity()
    assert first.content_id() == folder.content_id()  # the trait head is not part of it
    # The head only knows P pooled its own way: no Big Five reading from first-token P.
    assert first.trait_head() is None


def test_trait_head_is_not_part_of_the_content_identity(plain, pretrained):
    assert EncoderFolder.open(pretrained).content_id() == EncoderFolder.open(plain).content_id()


def test_legacy_cls_trait_head_still_loads(pretrained):
    _set_head_pooling(pretrained, "cls")
    folder = EncoderFolder.open(pretrained)
    assert folder.pooling == "first"
    assert folder.head_config()["pooling"] == "first"
    assert load_trait_head(pretrained).pooling == "first"
    legacy = PersonalityEncoder(pretrained)
    assert legacy.pooling == "first"
    assert legacy.identity == PersonalityEncoder(pretrained, pooling="first").identity
    assert PersonalityEncoder(pretrained, pooling="cls").identity == legacy.identity
    assert legacy.identity.endswith(":cls:128")


def test_bad_trait_head_pooling_names_the_file(pretrained):
    _set_head_pooling(pretrained, "max")
    with pytest.raises(ValueError, match=r"trait_head\.json 'pooling'.*'max'"):
        EncoderFolder.open(pretrained)
    (Path(pretrained) / "trait_head.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"trait_head\.json: not valid JSON"):
        EncoderFolder.open(pretrained)


def test_identity_string_format_is_pinned():
    """Committed result files record P's identity (e.g. ``sha256-2dfdcbcd51980946:cls:128``) and
    the P cache is keyed by it: first still renders as ``cls``."""
    assert identity_string("sha256-2dfdcbcd51980946", "first", 128) == \
        "sha256-2dfdcbcd51980946:cls:128"
    assert identity_string("sha256-2dfdcbcd51980946", "cls", 128) == \
        "sha256-2dfdcbcd51980946:cls:128"
    assert identity_string("sha256-f4d6f24f52dd13ff", "mean", 128) == \
        "sha256-f4d6f24f52dd13ff:mean:128"
    assert identity_string("sha256-f4d6f24f52dd13ff", "mean", 64) == \
        "sha256-f4d6f24f52dd13ff:mean:64"


def test_content_identity_of_fixed_bytes_is_pinned(tmp_path):
    """The value below was computed by the code before the refactor (models/personality_encoder.py
    ``_content_id``) on exactly these bytes; a change here would orphan every cached P and make
    recorded identities unmatchable."""
    folder = tmp_path / "enc"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}\n')
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 4)
    (folder / "vocab.txt").write_text("[PAD]\n[CLS]\nhello\n")
    (folder / "trait_head.json").write_text('{"pooling": "mean"}')
    (folder / "README.md").write_text("not hashed")
    spec = EncoderFolder.open(folder, pooling="first")
    assert spec.content_id() == "sha256-e69d9caf8a381227"
    assert spec.identity() == "sha256-e69d9caf8a381227:cls:128"
    assert EncoderFolder.open(folder).identity() == "sha256-e69d9caf8a381227:mean:128"


def test_encoder_identity_is_the_folder_identity(plain):
    spec = EncoderFolder.open(plain)
    encoder = PersonalityEncoder(spec)
    assert encoder.folder is spec and encoder.identity == spec.identity()
    assert encoder.identity == f"{spec.content_id()}:cls:128"


def test_one_encode_path(plain):
    """PersonalityEncoder.encode is encode_texts on the stock forward (what trait heads and the
    ridge baseline read), for both poolings."""
    for pooling in POOLINGS:
        encoder = PersonalityEncoder(plain, pooling=pooling)
        direct = encode_texts(encoder.encoder.model, encoder.tokenizer, TEXTS, pooling=pooling,
                              max_tokens=128, batch_size=2)
        assert torch.equal(encoder.encode(TEXTS, batch_size=2), direct)
    first = PersonalityEncoder(plain).encode(TEXTS)
    assert not torch.allclose(first, PersonalityEncoder(plain, pooling="mean").encode(TEXTS))
