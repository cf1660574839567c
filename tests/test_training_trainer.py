"""Trainer behaviour beyond the main CLI test: NaN stops training; baseline; several seeds."""

from __future__ import annotations

import logging

import pytest
from training_fixtures import fast_overrides, read_json, tiny_encoder

from psamf.cli import main
from psamf.training import (
    Trainer,
    TrainingDivergedError,
    apply_overrides,
    get_preset,
    load_config,
    prepare,
)


def test_a_nan_loss_stops_training_with_a_clear_error(tmp_path):
    encoder = tiny_encoder(tmp_path / "tiny")
    config = apply_overrides(get_preset("cpu"), fast_overrides(encoder, tmp_path / "cache",
                                                               progress="false"))
    prepared = prepare(config)
    prepared.splits["train"].personality[:] = float("nan")  # poisoned input reaches the loss
    trainer = Trainer(prepared.config, prepared.splits, seed=0, folder=tmp_path / "seed-0")
    with pytest.raises(TrainingDivergedError, match="nan at epoch 1, step 1"):
        trainer.fit()
    assert not (tmp_path / "seed-0" / "metrics.json").exists()


def test_text_finetune_baseline_with_two_seeds_and_a_summary(tmp_path, capsys):
    encoder = tiny_encoder(tmp_path / "tiny")
    overrides = fast_overrides(encoder, tmp_path / "cache", epochs=1,
                               **{"model.model_type": "text_finetune"})
    assert main(["train", "--out", str(tmp_path / "runs"), "--name", "tf", "--seeds", "1,2",
                 *overrides]) == 0
    assert not (tmp_path / "cache").exists()  # personality skipped entirely
    run = tmp_path / "runs" / "tf"
    config = load_config(run)
    assert config.model.model_type == "text_finetune" and config.model.audio_dim is None
    assert config.seeds == (1, 2)
    per_seed = [read_json(run / f"seed-{s}" / "metrics.json")["test"]["mae"] for s in (1, 2)]
    assert per_seed[0] != per_seed[1]  # different seeds, different runs
    summary = read_json(run / "summary.json")["test"]
    assert summary["mean"]["mae"] == pytest.approx(sum(per_seed) / 2)
    assert summary["std"]["mae"] == pytest.approx(abs(per_seed[0] - per_seed[1]) / 2 ** 0.5)
    rows = (run / "summary.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["seed", "1", "2", "mean", "std"]
    assert "mean ± std" in capsys.readouterr().out


def test_the_log_says_when_an_epoch_is_safely_saved(tmp_path, caplog):
    """Stopping after the epoch line but before this one loses the epoch (it was being saved)."""
    encoder = tiny_encoder(tmp_path / "tiny")
    config = apply_overrides(get_preset("cpu"), fast_overrides(encoder, tmp_path / "cache",
                                                               epochs=2, progress="false"))
    prepared = prepare(config)
    folder = tmp_path / "seed-0"
    seen: list[tuple[str, bool]] = []

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage()
            if "epoch 1" in text:
                seen.append((text, (folder / "checkpoint").is_dir()
                             and (folder / "best").is_dir()))

    spy = Spy()
    logging.getLogger("psamf.training.trainer").addHandler(spy)
    try:
        with caplog.at_level(logging.INFO, logger="psamf.training.trainer"):
            Trainer(prepared.config, prepared.splits, seed=0, folder=folder).fit()
    finally:
        logging.getLogger("psamf.training.trainer").removeHandler(spy)
    saved = [ready for text, ready in seen if "epoch 1 saved" in text]
    assert saved == [True]
    assert [ready for text, ready in seen if "epoch 1/2" in text] == [False]
