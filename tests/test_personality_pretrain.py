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


def _config(encoder: Path, data: Path, **overrides) -> PretrainConfig:
    base = dict(data=str(data), backbone=str(encoder), epochs=2, batch_size=8, encoder_lr=1e-3,
                head_lr=3e-2, warmup=0.0, max_tokens=32, seed=3, baselines=False)
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
    config = _config(tiny_encoder, corpus, epochs=5, batch_size=16, pooling="mean",
                     baselines=True)
    metrics = pretrain_personality(config, out)

    # The folder is a plain HF encoder folder plus the head, metrics and a model card.
    from transformers import AutoModel, AutoTokenizer

    assert AutoModel.from_pretrained(str(out)).config.hidden_size == 32
    AutoTokenizer.from_pretrained(str(out))
    head = load_trait_head(out)
    assert head is not None and head.traits == BIG_FIVE and head.pooling == "mean"
    assert (out / "README.md").read_text().count("fine-tuned") >= 1
    assert json.loads((out / "metrics.json").read_text())["test"]["clips"] == 16
    assert not out.with_name("enc.partial").exists()
    assert PretrainConfig.load(out / "config.yaml") == config  # the run's settings travel with it

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
    config = _config(tiny_encoder, corpus, epochs=3)
    full = pretrain_personality(config, tmp_path / "a")

    out_b = tmp_path / "b"
    assert pretrain_personality(config, out_b, stop_after_epochs=1) is None
    assert not out_b.exists()
    assert (tmp_path / "b.partial" / "checkpoint" / "state.json").is_file()
    assert (tmp_path / "b.partial" / "best" / "model.safetensors").is_file()
    # A different config refuses to continue someone else's unfinished run, naming the field.
    with pytest.raises(ValueError, match=r"config.yaml.*\(seed\).*--resume"):
        pretrain_personality(_config(tiny_encoder, corpus, epochs=3, seed=4), out_b)
    resumed = pretrain_personality(config, out_b)  # the same config continues it too

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
                 "--out", str(out), "epochs=1", "baselines=false"])
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
    config = _config(tiny_encoder, corpus, epochs=3)
    out = tmp_path / "c"
    with pytest.raises(FileNotFoundError, match="no completed epoch"):
        pretrain_personality(config, out, stop_after_epochs=0, finish_early=True)
    assert pretrain_personality(config, out, stop_after_epochs=1) is None
    metrics = pretrain_personality(config, out, finish_early=True)
    assert (metrics["epochs_completed"], metrics["epochs_planned"]) == (1, 3)
    assert len(metrics["history"]) == 1 and metrics["best_epoch"] == 1
    assert load_trait_head(out) is not None and not (tmp_path / "c.partial").exists()


# ----------------------------------------------------------------------------- CLI: config style


def _cli(tiny_encoder: Path, corpus: Path, out: Path, *extra: str) -> list[str]:
    return ["pretrain-personality", "--data", str(corpus), "--backbone", str(tiny_encoder),
            "--out", str(out), "--device", "cpu", "batch_size=8", "encoder_lr=1e-3",
            "head_lr=3e-2", "warmup=0", "max_tokens=32", "seed=3", "baselines=false", *extra]


def test_cli_unknown_key_is_one_line_with_the_valid_keys(tiny_encoder, corpus, tmp_path, capsys):
    code = main(_cli(tiny_encoder, corpus, tmp_path / "out", "epochz=2"))
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "epochz" in err and "encoder_lr" in err
    assert not any(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.parametrize("bad", ["epochs=two", "pooling=max", "limit=1"])
def test_cli_bad_values_are_refused(tiny_encoder, corpus, tmp_path, capsys, bad):
    code = main(_cli(tiny_encoder, corpus, tmp_path / "out", bad))
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].count("error") == 1
    assert not any(tmp_path.iterdir())


def test_cli_overrides_anywhere_and_saved_config(tiny_encoder, corpus, tmp_path):
    from psamf.personality.config import get_preset

    out = tmp_path / "enc"
    # Overrides before, between and after the flags; the later one wins.
    args = ["pretrain-personality", "epochs=3", "--data", str(corpus), "pooling=first",
            "--backbone", str(tiny_encoder), *_cli(tiny_encoder, corpus, out)[5:], "epochs=1"]
    assert main(args) == 0
    saved = PretrainConfig.load(out / "config.yaml")
    assert (saved.epochs, saved.pooling, saved.seed, saved.baselines) == (1, "first", 3, False)
    assert (saved.data, saved.backbone) == (str(corpus), str(tiny_encoder))
    # Fields not overridden keep the preset's values.
    preset = get_preset("minilm")
    assert (saved.preset, saved.weight_decay, saved.loss) == ("minilm", preset.weight_decay,
                                                              preset.loss)
    assert load_trait_head(out).pooling == "first"


def test_cli_resume_matches_uninterrupted_run(tiny_encoder, corpus, tmp_path, capsys):
    full, part = tmp_path / "full", tmp_path / "part"
    assert main(_cli(tiny_encoder, corpus, full, "epochs=3")) == 0
    assert main(_cli(tiny_encoder, corpus, part, "epochs=3", "--stop-after-epochs", "2")) == 0
    assert f"--resume {part}" in capsys.readouterr().out
    saved = PretrainConfig.load(tmp_path / "part.partial" / "config.yaml")
    assert saved.epochs == 3 and not part.exists()
    # --resume takes the settings from the saved config, and refuses new ones.
    assert main(["pretrain-personality", "--resume", str(part), "epochs=5"]) == 2
    assert "--resume continues" in capsys.readouterr().err
    assert main(["pretrain-personality", "--resume", str(part), "--device", "cpu"]) == 0
    a = json.loads((full / "metrics.json").read_text())
    b = json.loads((part / "metrics.json").read_text())
    for m in (a, b):
        for h in m["history"]:
            h.pop("seconds")
    assert a["history"] == b["history"] and a["test"] == b["test"] and a["valid"] == b["valid"]
    assert a["best_epoch"] == b["best_epoch"]
    wa, wb = load_file(str(full / "model.safetensors")), load_file(str(part / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert PretrainConfig.load(part / "config.yaml") == saved
    # Nothing left to resume: the message says so and names the finished folder.
    assert main(["pretrain-personality", "--resume", str(part)]) == 2
    assert "has finished" in capsys.readouterr().err


def test_resume_restores_best_missed_by_a_crash(tiny_encoder, corpus, tmp_path):
    """A run that died after an improving epoch's checkpoint but before best/ was written must
    still test that epoch's weights (best/ is rebuilt from the checkpoint)."""
    import shutil

    from psamf.personality.pretrain import resume_pretraining

    config = _config(tiny_encoder, corpus, epochs=2)
    full = pretrain_personality(config, tmp_path / "a")
    out = tmp_path / "b"
    assert pretrain_personality(config, out, stop_after_epochs=1) is None
    shutil.rmtree(tmp_path / "b.partial" / "best")  # as if killed between the two writes
    resumed = resume_pretraining(out)
    assert resumed["test"] == full["test"] and resumed["best_epoch"] == full["best_epoch"]


def test_old_partial_folder_is_refused_with_how_to_go_on(tiny_encoder, corpus, tmp_path):
    old = tmp_path / "old.partial"
    (old / "checkpoint").mkdir(parents=True)
    (old / "recipe.json").write_text("{}")
    with pytest.raises(ValueError, match=r"without config.yaml.*delete"):
        pretrain_personality(_config(tiny_encoder, corpus, epochs=1), tmp_path / "old")
