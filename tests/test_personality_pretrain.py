"""Personality pretraining: learning, round trip, resume, errors (tiny BERT, FI-format fixture)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from model_fixtures import make_tiny_bert
from safetensors.torch import load_file

from psamf.cli import main
from psamf.data.dataset import BIG_FIVE
from psamf.personality import PretrainConfig, load_trait_head, predict_traits, pretrain_personality

# Words that push one trait up; the rest of each transcript is filler.
_CUES = {
    "openness": "art",
    "conscientiousness": "plan",
    "extraversion": "party",
    "agreeableness": "kind",
    "neuroticism": "worry",
}
_FILLER = ("today", "video", "really", "think", "going", "people", "time", "thing")
_FILES = {"train": "training", "valid": "validation", "test": "test"}


def write_fi_corpus(
    root: Path, sizes: dict[str, int] | None = None, *, seed: int = 0, empty: int = 1
) -> Path:
    """ChaLearn-format pickles whose trait scores follow cue-word counts (so text predicts them).

    The first ``empty`` clips of each split have an empty transcript.
    """
    sizes = sizes or {"train": 48, "valid": 16, "test": 16}
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        annotation: dict[str, dict[str, float]] = {t: {} for t in (*BIG_FIVE, "interview")}
        transcription: dict[str, str] = {}
        for i in range(n):
            clip = f"{split}{i:04d}abcde.{i % 7:03d}.mp4"
            counts = {t: int(rng.integers(0, 4)) for t in BIG_FIVE}
            words = [w for t, c in counts.items() for w in [_CUES[t]] * c]
            words += list(rng.choice(_FILLER, size=6))
            rng.shuffle(words)
            transcription[clip] = "" if i < empty else " ".join(words)
            for t in BIG_FIVE:
                annotation[t][clip] = float(np.clip(0.3 + 0.12 * counts[t]
                                                    + rng.normal(0, 0.02), 0, 1))
            annotation["interview"][clip] = float(rng.uniform())
        for kind, obj in (("annotation", annotation), ("transcription", transcription)):
            with open(root / f"{kind}_{_FILES[split]}.pkl", "wb") as fh:
                pickle.dump(obj, fh, protocol=2)
    return root


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> Path:
    # 2 layers, width 32, the MiniLM tokenizer
    return Path(make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), layers=2, heads=2))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_fi_corpus(tmp_path_factory.mktemp("fi"))


def _config(encoder: Path, **overrides) -> PretrainConfig:
    base = dict(backbone=str(encoder), epochs=2, batch_size=8, encoder_lr=1e-3, head_lr=3e-2,
                warmup=0.0, max_tokens=32, seed=3, baselines=False)
    base.update(overrides)
    return PretrainConfig(**base)


def _targets(corpus_dir: Path, stem: str) -> tuple[list[str], np.ndarray]:
    ann = pickle.loads((corpus_dir / f"annotation_{stem}.pkl").read_bytes())
    tra = pickle.loads((corpus_dir / f"transcription_{stem}.pkl").read_bytes())
    ids = sorted(tra)
    return [tra[i] for i in ids], np.array([[ann[t][i] for t in BIG_FIVE] for i in ids])


def test_learns_beyond_constant_and_round_trips(tiny_encoder, tmp_path):
    # Mean pooling: a random tiny BERT's first token needs many more steps to pick up the cues.
    corpus = write_fi_corpus(tmp_path / "fi", {"train": 160, "valid": 16, "test": 16})
    out = tmp_path / "enc"
    config = _config(tiny_encoder, epochs=5, batch_size=16, pooling="mean", baselines=True)
    metrics = pretrain_personality(config, corpus, out)

    # The folder is a plain HF encoder folder plus the head, metrics and a model card.
    from transformers import AutoModel, AutoTokenizer

    assert AutoModel.from_pretrained(str(out)).config.hidden_size == 32
    AutoTokenizer.from_pretrained(str(out))
    head = load_trait_head(out)
    assert head is not None and head.traits == BIG_FIVE and head.pooling == "mean"
    assert (out / "README.md").read_text().count("fine-tuned") >= 1
    assert json.loads((out / "metrics.json").read_text())["test"]["clips"] == 16
    assert not out.with_name("enc.partial").exists()

    # Fit on the training clips beats the constant predictor (training means).
    texts, y = _targets(corpus, "training")
    preds = np.array([[p[t] for t in BIG_FIVE] for p in predict_traits(out, texts)])
    const_mse = ((y - y.mean(0)) ** 2).mean()
    assert ((preds - y) ** 2).mean() < 0.5 * const_mse
    # The empty transcript gets the training means.
    np.testing.assert_allclose(preds[0], y.mean(0), atol=1e-6)

    # Reloaded predictions reproduce the in-run test figures exactly.
    test_texts, test_y = _targets(corpus, "test")
    test_preds = np.array([[p[t] for t in BIG_FIVE] for p in predict_traits(out, test_texts)])
    acc = 1 - np.abs(test_preds - test_y).mean()
    assert acc == pytest.approx(metrics["test"]["fine_tuned"]["acc_mean"], abs=1e-6)
    assert metrics["counts"]["train"] == {"clips": 160, "empty": 1, "truncated": 0}
    for key in ("constant", "frozen_ridge", "fine_tuned"):
        assert np.isfinite(metrics["test"][key]["r2_mean"])
    assert metrics["valid"]["fine_tuned"]["acc_mean"] > metrics["valid"]["constant"]["acc_mean"]


def test_resume_matches_uninterrupted_run(tiny_encoder, corpus, tmp_path):
    config = _config(tiny_encoder, epochs=3)
    full = pretrain_personality(config, corpus, tmp_path / "a")

    out_b = tmp_path / "b"
    assert pretrain_personality(config, corpus, out_b, stop_after_epochs=1) is None
    assert not out_b.exists()
    assert (tmp_path / "b.partial" / "checkpoint" / "state.json").is_file()
    # A different recipe refuses to continue someone else's unfinished run.
    with pytest.raises(ValueError, match="recipe.json"):
        pretrain_personality(_config(tiny_encoder, epochs=3, seed=4), corpus, out_b)
    resumed = pretrain_personality(config, corpus, out_b)

    def _no_time(history):
        return [{k: v for k, v in h.items() if k != "seconds"} for h in history]

    assert _no_time(resumed["history"]) == _no_time(full["history"])
    assert resumed["test"] == full["test"]
    assert resumed["epochs_completed"] == resumed["epochs_planned"] == 3
    wa = load_file(str(tmp_path / "a" / "model.safetensors"))
    wb = load_file(str(out_b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_cli_bad_annotation_file(tiny_encoder, tmp_path, capsys, damage):
    data = write_fi_corpus(tmp_path / "fi", {"train": 8, "valid": 4, "test": 4})
    bad = data / "annotation_validation.pkl"
    if damage == "corrupt":
        bad.write_bytes(bad.read_bytes()[:40])
    else:
        bad.unlink()
    out = tmp_path / "out"
    code = main(["pretrain-personality", "--data", str(data), "--backbone", str(tiny_encoder),
                 "--out", str(out), "--epochs", "1", "--no-baselines"])
    assert code != 0
    assert "annotation_validation.pkl" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fi"]


def test_cli_bad_backbone_leaves_nothing(tmp_path, capsys):
    data = write_fi_corpus(tmp_path / "fi", {"train": 8, "valid": 4, "test": 4})
    code = main(["pretrain-personality", "--data", str(data), "--backbone",
                 str(tmp_path / "no-such-model"), "--out", str(tmp_path / "out")])
    assert code != 0
    assert "no-such-model" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fi"]


def test_finish_early_writes_the_best_completed_epoch(tiny_encoder, corpus, tmp_path):
    config = _config(tiny_encoder, epochs=3)
    out = tmp_path / "c"
    with pytest.raises(FileNotFoundError, match="no completed epoch"):
        pretrain_personality(config, corpus, out, stop_after_epochs=0, finish_early=True)
    assert pretrain_personality(config, corpus, out, stop_after_epochs=1) is None
    metrics = pretrain_personality(config, corpus, out, finish_early=True)
    assert (metrics["epochs_completed"], metrics["epochs_planned"]) == (1, 3)
    assert len(metrics["history"]) == 1 and metrics["best_epoch"] == 1
    assert load_trait_head(out) is not None and not (tmp_path / "c.partial").exists()
