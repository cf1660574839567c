"""A tiny trained run (tiny BERT with a trait head as its personality encoder) for export tests."""

from __future__ import annotations

from pathlib import Path

from training_fixtures import fast_overrides, tiny_encoder

from psamf.cli import main


def tiny_trained_run(workdir: Path) -> Path:
    """One seed, one epoch on a slice of the sample; P from a tiny BERT that has a trait head."""
    from psamf.personality.head import TraitHead

    encoder = tiny_encoder(workdir / "tiny-bert")
    TraitHead(hidden_size=32).save(encoder)  # so the Big Five reading travels too
    settings = fast_overrides(encoder, workdir / "cache", epochs=1, **{
        "data.limit_train": 32, "data.limit_valid": 16, "data.limit_test": 16})
    assert main(["train", "--out", str(workdir / "runs"), "--name", "tiny", "--no-progress",
                 *settings]) == 0
    return workdir / "runs" / "tiny"
