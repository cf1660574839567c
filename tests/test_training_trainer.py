"""Trainer behaviour that the CLI tests do not reach: NaN stops training with a clear error."""

from __future__ import annotations

import pytest
from training_fixtures import fast_overrides, tiny_encoder

from psamf.cli import main
from psamf.training import Trainer, TrainingDivergedError, apply_overrides, get_preset, prepare


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


def test_text_finetune_baseline_trains_without_personality(tmp_path, capsys):
    encoder = tiny_encoder(tmp_path / "tiny")
    overrides = fast_overrides(encoder, tmp_path / "cache", epochs=1,
                               **{"model.model_type": "text_finetune"})
    assert main(["train", "--out", str(tmp_path / "runs"), "--name", "tf", *overrides]) == 0
    assert not (tmp_path / "cache").exists()  # personality skipped entirely
    from psamf.training import load_config

    config = load_config(tmp_path / "runs" / "tf")
    assert config.model.model_type == "text_finetune" and config.model.audio_dim is None
    assert "Test metrics" in capsys.readouterr().out
