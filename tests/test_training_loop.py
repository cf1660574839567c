"""The parts both training recipes share (psamf.training.loop)."""

from __future__ import annotations

import math

import pytest
import torch

from psamf.errors import InputError, TrainingDivergedError
from psamf.training.loop import (
    LoopState,
    best_weights_file,
    check_loss,
    epoch_order,
    restore_best,
    save_best,
)


def test_loop_state_tracks_the_best_either_way():
    low = LoopState()
    improved = []
    for m in (3.0, 2.0, 2.5):
        improved.append(low.end_epoch(m, higher_is_better=False))
        low.next_epoch()
    assert improved == [True, True, False]
    assert (low.best_metric, low.best_epoch, low.bad_epochs, low.epoch) == (2.0, 2, 1, 3)
    high = LoopState()
    for m in (0.5, 0.7, 0.6):
        high.end_epoch(m, higher_is_better=True)
        high.next_epoch()
    assert (high.best_metric, high.best_epoch, high.bad_epochs) == (0.7, 2, 1)


def test_loop_state_round_trips_and_reads_old_loop_dicts():
    state = LoopState(epoch=2, global_step=9, best_metric=0.4, best_epoch=1, history=[{"e": 1}])
    assert LoopState.from_dict(state.to_dict()) == state
    # The trainer's dict before LoopState (inf = no epoch yet) and pretraining's.
    old_trainer = {"epoch": 0, "step_in_epoch": 3, "global_step": 3, "best_mae": math.inf,
                   "best_epoch": -1, "bad_epochs": 0, "stopped_early": False, "sums": {"loss": 1.0},
                   "count": 3, "history": []}
    got = LoopState.from_dict(old_trainer)
    assert (got.best_metric, got.step_in_epoch, got.sums) == (None, 3, {"loss": 1.0})
    old_pretrain = {"epochs_done": 2, "best_epoch": 1, "best_score": 0.8, "history": [{}, {}]}
    got = LoopState.from_dict(old_pretrain)
    assert (got.epoch, got.best_metric, got.best_epoch) == (2, 0.8, 1)
    with pytest.raises(InputError, match="unknown loop state field"):
        LoopState.from_dict({"epoch": 1, "wat": 2})


def test_check_loss_is_the_one_divergence_error():
    check_loss(torch.tensor(1.0), epoch=0, step=0, fix="x")
    with pytest.raises(TrainingDivergedError, match=r"nan at epoch 2, step 5 .*; lower lr"):
        check_loss(torch.tensor(float("nan")), epoch=1, step=4, fix="lower lr",
                   terms={"mse": float("nan")})
    with pytest.raises(TrainingDivergedError, match="None"):
        check_loss(None, epoch=0, step=0, fix="x")


def test_epoch_order_is_pure():
    assert epoch_order(10, seed=1, epoch=2) == epoch_order(10, seed=1, epoch=2)
    assert epoch_order(10, seed=1, epoch=2) != epoch_order(10, seed=1, epoch=3)
    assert sorted(epoch_order(10, seed=1, epoch=2)) == list(range(10))


def test_restore_best_writes_only_a_missing_best(tmp_path):
    model = torch.nn.Linear(2, 1)
    loop = LoopState(epoch=2, best_epoch=2, best_metric=0.1)
    assert restore_best(tmp_path, model, loop)  # best/ missing: written from the model
    assert best_weights_file(tmp_path).is_file()
    assert not restore_best(tmp_path, model, loop)  # now up to date
    save_best(tmp_path, model, epoch=1)
    assert restore_best(tmp_path, model, loop)  # an older epoch's best/: replaced
    assert not restore_best(tmp_path, model, LoopState(epoch=3, best_epoch=2))  # not the last
