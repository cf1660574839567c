"""``psamf tune`` on the sample with a tiny real BERT: workers sharing one SQLite study, the
exported preset, the test split kept out, a dead worker's trial retried, one-line refusals."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import psamf_command
from training_fixtures import fast_overrides, read_json, tiny_encoder

from psamf.cli import main
from psamf.training.config import TrainConfig, apply_overrides
from psamf.training.prepare import prepare
from psamf.training.presets import get_preset
from psamf.training.trainer import Trainer

optuna = pytest.importorskip("optuna", reason="psamf tune needs the tune extra (optuna)")

TRIALS = 4


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tune")


@pytest.fixture(scope="module")
def overrides(workdir) -> list[str]:
    encoder = tiny_encoder(workdir / "tiny-bert")
    # batch_size is searched (tune refuses a key both fixed and searched)
    return [o for o in fast_overrides(encoder, workdir / "cache") if not o.startswith("batch_")]


SPACE = ["--space", "optim.other_lr=log:1e-4:3e-3", "--space", "batch_size=choice:16,32",
         "--space", "model.dropout=float:0:0.3"]


def _tune(workdir: Path, overrides: list[str], study: str, *extra: str) -> list[str]:
    return ["tune", "--study", study, "--out", str(workdir / "studies"), "--no-progress",
            *SPACE, *extra, *overrides]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def _load(workdir: Path, study: str):
    return optuna.load_study(study_name=study,
                             storage=f"sqlite:///{workdir / 'studies' / study / 'study.db'}")


@pytest.fixture(scope="module")
def shared_study(workdir, overrides) -> tuple[str, list[str]]:
    """Two worker processes started together on one study of TRIALS trials."""
    args = _tune(workdir, overrides, "shared", "--trials", str(TRIALS), "--prune-startup", "1",
                 "--prune-warmup", "0")
    procs = [subprocess.Popen(psamf_command(*args), cwd=workdir, env=_env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for proc, (_out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    return "shared", [out for out, _err in outs]


def test_two_workers_finish_n_trials_between_them(workdir, shared_study):
    name, outputs = shared_study
    trials = _load(workdir, name).trials
    assert sorted(t.number for t in trials) == list(range(TRIALS))  # none lost or duplicated
    states = {t.state for t in trials}
    assert states <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert optuna.trial.TrialState.COMPLETE in states
    ran = [int(out.split("this worker ran ")[1].split()[0]) for out in outputs]
    assert sum(ran) == TRIALS
    # distinct draws: the per-trial sampler seed differs, so no two trials share parameters
    assert len({tuple(sorted(t.params.items())) for t in trials}) == TRIALS
    folder = workdir / "studies" / name
    for name_ in ("best_preset.yaml", "study.json", "optimization_history.png",
                  "param_importances.png", "intermediate_values.png"):
        assert (folder / name_).is_file(), name_
    # the test split was never read into a trial: not prepared, not evaluated, not written
    for trial in trials:
        run = Path(trial.user_attrs["run"])
        assert set(read_json(run / "run.json")["dataset"]["sizes"]) == {"train", "valid"}
        assert not (run / "seed-0" / "predictions_test.csv").exists()
        if trial.state == optuna.trial.TrialState.COMPLETE:
            metrics = read_json(run / "seed-0" / "metrics.json")
            assert metrics["test"] == {}
            assert metrics["valid"]["mae"] == pytest.approx(trial.value)
        assert [h for h in trial.intermediate_values] == list(
            range(1, len(trial.intermediate_values) + 1))  # one report per epoch


def test_exported_preset_reproduces_the_best_trial(workdir, shared_study, capsys):
    name, _ = shared_study
    study = _load(workdir, name)
    best = study.best_trial
    preset_file = workdir / "studies" / name / "best_preset.yaml"
    preset = get_preset(str(preset_file))
    for key, value in best.params.items():
        head, _, tail = key.partition(".")
        assert (getattr(getattr(preset, head), tail) if tail else getattr(preset, head)) == value
    rc = main(["train", "--preset", str(preset_file), "--out", str(workdir / "runs"),
               "--name", "from-preset", "--no-progress"])
    assert rc == 0
    trained = TrainConfig.load(workdir / "runs" / "from-preset" / "config.yaml")
    assert trained == TrainConfig.load(Path(best.user_attrs["run"]) / "config.yaml")
    summary = read_json(workdir / "runs" / "from-preset" / "summary.json")
    assert summary["valid"]["mean"]["mae"] == pytest.approx(best.value, abs=1e-4)
    # the study is full: one more worker runs nothing and only exports again
    rc = main(_tune(workdir, [*_fixed(workdir)], name, "--trials", str(TRIALS)))
    assert rc == 0
    assert "this worker ran 0 trial(s)" in capsys.readouterr().out


def _fixed(workdir: Path) -> list[str]:
    encoder = str(workdir / "tiny-bert")
    return [o for o in fast_overrides(encoder, workdir / "cache") if not o.startswith("batch_")]


def test_a_worker_with_another_space_is_refused(workdir, shared_study, capsys):
    name, _ = shared_study
    args = _tune(workdir, _fixed(workdir), name, "--trials", str(TRIALS))
    args[args.index("model.dropout=float:0:0.3")] = "model.dropout=float:0:0.5"
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "was started with another search space" in err


def test_trainer_never_touches_a_dropped_test_split(workdir, overrides):
    config = apply_overrides(get_preset("cpu"), [*overrides, "epochs=2"])
    prepared = prepare(config, test=False)
    assert set(prepared.splits) == set(prepared.raw) == {"train", "valid"}
    epochs = []
    result = Trainer(prepared.config, prepared.splits, seed=0, folder=workdir / "no-test",
                     on_epoch=lambda record: epochs.append(record.valid["mae"]),
                     evaluate_test=False).fit()
    assert result.test == {} and set(result.predictions) == {"valid"}
    assert epochs == [h.valid["mae"] for h in result.history] and len(epochs) == 2
    assert result.valid["mae"] == pytest.approx(min(epochs))  # the selected (best) epoch
    with pytest.raises(KeyError):  # evaluating test would need the split the option kept out
        Trainer(prepared.config, prepared.splits, seed=0, folder=workdir / "no-test").fit()


def test_a_dead_workers_trial_is_failed_and_retried(workdir, overrides):
    """A worker SIGKILLed mid-trial leaves it RUNNING; once its heartbeat is stale the next worker
    marks it FAIL and re-runs its parameters as a new trial, and the budget still ends at N."""
    args = _tune(workdir, overrides, "killed", "--trials", "2", "--heartbeat", "1",
                 "--pruner", "none")
    victim = subprocess.Popen(psamf_command(*args), cwd=workdir, env=_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = workdir / "studies" / "killed" / "study.db"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and victim.poll() is None and not _running(db):
        time.sleep(0.2)
    assert victim.poll() is None, "the worker ended before it was caught inside a trial"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    time.sleep(2.5)  # past the grace period (twice the 1 s heartbeat)
    assert main(args) == 0
    trials = _load(workdir, "killed").trials
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(failed) == 1 and len(done) == 2 and len(trials) == 3
    retry = next(t for t in done if t.system_attrs.get("failed_trial") == failed[0].number)
    assert retry.params == failed[0].params
    assert retry.user_attrs["run"] != failed[0].user_attrs["run"]  # its own run folder


def _running(db: Path) -> bool:
    """Whether the study database holds a RUNNING trial that has recorded a heartbeat (plain SQL:
    the worker may still be creating its tables, which optuna.load_study would race with).
    Optuna judges staleness from heartbeats only: a worker killed between creating its trial and
    its first heartbeat leaves a RUNNING trial no one fails (the module doc of tuning.study)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(
                "SELECT count(*) FROM trials JOIN trial_heartbeats USING (trial_id) "
                "WHERE state = 'RUNNING'").fetchone()[0] > 0
    except sqlite3.Error:
        return False


@pytest.mark.parametrize(("space", "needle"), [
    ("optim.encoder_lr", "write KEY=KIND:ARGS"),
    ("optim.nope=log:1e-5:1e-4", "unknown config key 'optim.nope'"),
    ("optim.encoder_lr=gauss:1:2", "unknown kind 'gauss'"),
    ("optim.encoder_lr=log:0:1e-4", "log needs LOW > 0"),
    ("optim.encoder_lr=float:1e-3:1e-4", "LOW must be below HIGH"),
    ("batch_size=float:8:64", "batch_size is int-valued"),
    ("batch_size=choice:16", "two or more"),
    ("batch_size=choice:16,x", "is not an integer"),
    ("model.dropout=float:0:1.5", "refused by the config"),
    ("data.name=choice:mosi,mosei", "cannot be searched"),
    ("seeds=choice:1,2", "cannot be searched"),
])
def test_bad_space_is_one_line_exit_2(space, needle, capsys, tmp_path):
    assert main(["tune", "--out", str(tmp_path), "--space", space]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("psamf tune: error: --space")
    assert needle in err and space.split("=")[0] in err
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_tune_without_optuna_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "optuna", None)  # what an install without the extra sees
    assert main(["tune", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install 'psamf[tune]'" in err


def test_preset_yaml_is_the_saved_config_layout(workdir, shared_study):
    data = yaml.safe_load((workdir / "studies" / "shared" / "best_preset.yaml").read_text())
    assert data["format"] == 2 and data["preset"] == "tune-shared"
