"""PersonalityEncoder (frozen) and PersonalityEmbeddingCache (on disk, fills in the missing).

The encoder folder object, the pooling vocabulary and the identity pin: test_personality_folder.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from model_fixtures import make_batch, make_tiny_bert
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoTokenizer

from psamf.models import PSAMFConfig, build_model
from psamf.personality import PersonalityEmbeddingCache, PersonalityEncoder

TEXTS = ["I love long walks", "parties are tiring", "", "I love long walks", "plans, always plans"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    return make_tiny_bert(tmp_path_factory.mktemp("personality"), seed=3)


def test_first_token_embedding_matches_stock(folder):
    enc = PersonalityEncoder(folder)
    assert enc.pooling == "first" and enc.hidden_size == 32
    p = enc.encode(TEXTS, batch_size=2)
    assert p.shape == (5, 32) and p.dtype == torch.float32 and not p.requires_grad
    tok = AutoTokenizer.from_pretrained(folder)
    stock = AutoModel.from_pretrained(folder).eval()
    batch = tok(TEXTS[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = stock(**batch).last_hidden_state[:, 0]
    torch.testing.assert_close(p[:2], ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(p[0], p[3])  # batching/padding does not matter


def test_pooling_from_trait_head_json_and_override(tmp_path):
    path = make_tiny_bert(tmp_path / "enc", seed=3)
    (Path(path) / "trait_head.json").write_text(json.dumps({"pooling": "mean"}))
    enc = PersonalityEncoder(path)
    assert enc.pooling == "mean"
    assert PersonalityEncoder(path, pooling="first").pooling == "first"
    assert enc.identity != PersonalityEncoder(path, pooling="first").identity
    with pytest.raises(ValueError, match="pooling"):
        PersonalityEncoder(path, pooling="max")


def test_identity_depends_on_weights(tmp_path, folder):
    other = make_tiny_bert(tmp_path / "other", seed=4)
    assert PersonalityEncoder(folder).identity == PersonalityEncoder(folder).identity
    assert PersonalityEncoder(folder).identity != PersonalityEncoder(other).identity


def test_identity_is_the_content_not_the_path(tmp_path, folder):
    moved = shutil.copytree(folder, tmp_path / "elsewhere" / "encoder")
    identity = PersonalityEncoder(folder).identity
    assert PersonalityEncoder(str(moved)).identity == identity
    assert str(folder) not in identity and str(moved) not in identity

    weights = load_file(str(moved / "model.safetensors"))
    name = sorted(weights)[0]
    weights[name] = weights[name] + 0.01
    save_file(weights, str(moved / "model.safetensors"), metadata={"format": "pt"})
    changed = PersonalityEncoder(str(moved)).identity
    assert changed != identity

    tok_config = json.loads((moved / "tokenizer_config.json").read_text())
    tok_config["model_max_length"] = 64
    (moved / "tokenizer_config.json").write_text(json.dumps(tok_config))
    assert PersonalityEncoder(str(moved)).identity not in (identity, changed)


def test_always_frozen_and_eval(folder):
    enc = PersonalityEncoder(folder)
    enc.train()
    assert not enc.training and not any(m.training for m in enc.modules())
    assert not any(p.requires_grad for p in enc.parameters())


def test_cache_computes_only_missing(tmp_path, folder):
    enc = PersonalityEncoder(folder)
    calls: list[int] = []
    original = enc.encode

    def counting(texts, **kw):
        calls.append(len(texts))
        return original(texts, **kw)

    enc.encode = counting
    cache = PersonalityEmbeddingCache(tmp_path / "cache")
    first = cache.get_or_compute(enc, TEXTS)
    assert calls == [4]  # one duplicate text
    torch.testing.assert_close(first, original(TEXTS))
    again = cache.get_or_compute(enc, TEXTS[:2])
    assert calls == [4]
    torch.testing.assert_close(again, first[:2])
    cache.get_or_compute(enc, ["a new one", TEXTS[1]])
    assert calls == [4, 1]
    # A fresh cache object reads everything from disk.
    fresh = PersonalityEmbeddingCache(tmp_path / "cache")
    torch.testing.assert_close(fresh.get_or_compute(enc, TEXTS), first)
    assert calls == [4, 1]
    assert len(list((tmp_path / "cache").rglob("chunk-*.safetensors"))) == 2


def test_cache_rejects_corrupt_chunk(tmp_path, folder):
    enc = PersonalityEncoder(folder)
    PersonalityEmbeddingCache(tmp_path / "c").get_or_compute(enc, TEXTS[:1])
    chunk = next((tmp_path / "c").rglob("chunk-*.safetensors"))
    chunk.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="delete it"):
        PersonalityEmbeddingCache(tmp_path / "c").get_or_compute(enc, TEXTS[:1])


def test_psamf_training_never_touches_personality_encoder(tmp_path, folder):
    enc = PersonalityEncoder(folder)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    text = make_tiny_bert(tmp_path / "text", seed=5)
    model = build_model(PSAMFConfig(text_encoder=text, audio_dim=5, vision_dim=7))
    batch = make_batch(model)
    batch["personality"] = PersonalityEmbeddingCache(tmp_path / "c").get_or_compute(
        enc, model.tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=True)
    )
    opt = torch.optim.Adam(model.parameter_groups(encoder_lr=1e-3, other_lr=1e-3))
    out = model(**batch)
    out.loss.backward()
    opt.step()
    assert all(p.grad is None for p in enc.parameters())
    assert not batch["personality"].requires_grad
    for k, v in enc.state_dict().items():
        assert torch.equal(v, before[k]), k
    ids = {id(p) for p in enc.parameters()}
    assert not any(id(p) in ids for p in model.parameters())
