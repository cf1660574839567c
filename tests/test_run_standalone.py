"""A run folder outlives the place of its personality encoder, and its checkpoints survive a save
that is cut short.

One tiny run trains with a personality encoder given by a *relative* path. Evaluate / predict /
resume then run from another folder, after the encoder moved, with a copy passed as
``--personality-encoder PATH`` (``personality_encoder=PATH`` for resume), and with a different
encoder (refused). Separately, training is broken in the middle of a checkpoint save (SIGKILL
mid-write, a file-size limit that kills, one that raises); the previous checkpoint stays intact
and ``--resume`` ends with the uninterrupted metrics.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from training_fixtures import fast_overrides, read_json, tiny_encoder

from psamf.checkpointing import STATE_FILE
from psamf.cli import main

HERE = Path(__file__).resolve().parent
RESULT_KEYS = ("valid", "test", "best_epoch", "epochs_run")


def _one_error_line(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"psamf {command}: error:")
    return lines[0]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project folder with a text backbone, a personality encoder at ``enc`` (configured by
    that relative path) and one finished run ``runs/r``."""
    root = tmp_path_factory.mktemp("standalone")
    text = tiny_encoder(root / "text-bert")
    tiny_encoder(root / "enc", seed=3)
    before = Path.cwd()
    os.chdir(root)
    try:
        overrides = fast_overrides(text, root / "cache", epochs=1, personality_encoder="enc",
                                   **{"data.limit_train": 16, "data.limit_valid": 8,
                                      "data.limit_test": 8})
        assert main(["train", "--out", "runs", "--name", "r", "--no-progress", *overrides]) == 0
    finally:
        os.chdir(before)
    return root


def _eval(run: Path, out: Path, *extra: str) -> int:
    return main(["evaluate", str(run), "--json", str(out), *extra])


def test_result_files_record_which_p_produced_them(project):
    run = project / "runs" / "r"
    recorded = read_json(run / "run.json")["personality"]
    assert recorded["encoder"] == "enc" and recorded["path"] == str((project / "enc").resolve())
    assert recorded["identity"].startswith("sha256-") and recorded["pretrained"] is False
    expected = {k: recorded[k] for k in ("encoder", "identity", "pretrained")}
    assert read_json(run / "seed-0" / "metrics.json")["personality"] == expected
    assert read_json(run / "summary.json")["personality"] == expected


def test_evaluate_from_another_folder_and_after_the_encoder_moved(project, tmp_path, monkeypatch,
                                                                  capsys):
    run = project / "runs" / "r"
    test_mae = read_json(run / "seed-0" / "metrics.json")["test"]["mae"]
    monkeypatch.chdir(tmp_path)  # "enc" no longer resolves: the recorded absolute folder is used
    assert _eval(run, tmp_path / "a.json") == 0
    assert read_json(tmp_path / "a.json")["splits"]["test"]["per_seed"][0]["mae"] == \
        pytest.approx(test_mae, abs=1e-6)

    moved = tmp_path / "backup" / "enc-copy"
    shutil.copytree(project / "enc", moved)
    shutil.rmtree(project / "enc")
    try:
        capsys.readouterr()
        assert _eval(run, tmp_path / "b.json") == 2
        line = _one_error_line(capsys.readouterr().err, "evaluate")
        identity = read_json(run / "run.json")["personality"]["identity"]
        assert "--personality-encoder PATH" in line and identity in line and "enc" in line
        assert main(["predict", str(run), "--text", "hi"]) == 2
        assert "--personality-encoder PATH" in _one_error_line(capsys.readouterr().err, "predict")
        assert main(["train", "--resume", str(run), "--no-progress"]) == 2
        assert "personality_encoder=PATH" in _one_error_line(capsys.readouterr().err, "train")

        # A copy with the same content identity is accepted by all three commands.
        assert _eval(run, tmp_path / "c.json", "--personality-encoder", str(moved)) == 0
        assert read_json(tmp_path / "c.json")["splits"]["test"]["per_seed"][0]["mae"] == \
            pytest.approx(test_mae, abs=1e-6)
        from psamf.personality.head import TraitHead

        TraitHead(hidden_size=32).save(moved)  # the head is not part of P's identity
        capsys.readouterr()
        assert main(["predict", str(run), "--personality-encoder", str(moved), "--text", "hi"]) == 0
        assert set(json.loads(capsys.readouterr().out)["big_five"]) >= {"openness"}
        assert main(["train", "--resume", str(run), "--no-progress",
                     f"personality_encoder={moved}"]) == 0
        assert main(["train", "--resume", str(run), "--no-progress",
                     f"personality_encoder={moved}", "epochs=3"]) == 2
        assert "personality_encoder=PATH" in _one_error_line(capsys.readouterr().err, "train")
    finally:
        shutil.copytree(moved, project / "enc")


def test_a_different_encoder_is_refused_naming_both_identities(project, tmp_path, capsys):
    run = project / "runs" / "r"
    other = tiny_encoder(tmp_path / "other", seed=4)
    want = read_json(run / "run.json")["personality"]["identity"]
    for argv, command in (
        (["evaluate", str(run), "--personality-encoder", other], "evaluate"),
        (["predict", str(run), "--personality-encoder", other, "--text", "hi"], "predict"),
        (["train", "--resume", str(run), f"personality_encoder={other}"], "train"),
    ):
        capsys.readouterr()
        assert main(argv) == 2
        line = _one_error_line(capsys.readouterr().err, command)
        assert want in line and "identity sha256-" in line.split(want, 1)[1], line
        assert str(other) in line


# --- a checkpoint save cut short ---------------------------------------------------------------

@pytest.fixture(scope="module")
def crash_setup(tmp_path_factory) -> tuple[Path, list[str], dict]:
    """Overrides for 2 epochs of 2 steps with a checkpoint every step, and the uninterrupted
    reference metrics."""
    root = tmp_path_factory.mktemp("crash")
    encoder = tiny_encoder(root / "tiny-bert")
    overrides = fast_overrides(encoder, root / "cache", epochs=2, checkpoint_every_steps=1,
                               **{"data.limit_train": 32, "data.limit_valid": 8,
                                  "data.limit_test": 8})
    assert main(["train", "--out", str(root / "runs"), "--name", "ref", "--no-progress",
                 *overrides]) == 0
    reference = read_json(root / "runs" / "ref" / "seed-0" / "metrics.json")
    return root, overrides, reference


@pytest.mark.parametrize(("mode", "returncode"), [
    ("kill", -signal.SIGKILL),
    ("fsize-signal", -signal.SIGXFSZ),
    ("fsize-raise", 2),
])
def test_a_save_cut_short_keeps_the_previous_checkpoint_and_resume_matches(
        crash_setup, mode, returncode):
    root, overrides, reference = crash_setup
    name = f"broken-{mode}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    # Save 3 is the first of epoch 2 (saves: epoch 1 step 1, epoch 1 end, epoch 2 step 1, ...).
    proc = subprocess.run(
        [sys.executable, str(HERE / "crash_during_save.py"), mode, "3", "train",
         "--out", str(root / "runs"), "--name", name, "--no-progress", *overrides],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == returncode, proc.stderr
    if mode == "fsize-raise":
        line = _one_error_line(proc.stderr.split("\n")[-2] + "\n", "train")
        assert "model.safetensors" in line and "unchanged" in line
    seed = root / "runs" / name / "seed-0"
    state = read_json(seed / "checkpoint" / STATE_FILE)["loop"]
    assert (state["epoch"], state["step_in_epoch"]) == (1, 0)  # the save before the broken one
    assert not (seed / "metrics.json").exists()

    assert main(["train", "--resume", str(root / "runs" / name), "--no-progress"]) == 0
    result = read_json(seed / "metrics.json")
    assert {k: result[k] for k in RESULT_KEYS} == {k: reference[k] for k in RESULT_KEYS}
    assert not list(seed.glob(".checkpoint.*"))  # the broken save's leftovers are gone


# --- result records and run folders made by an earlier psamf ------------------------------------

# What benchmarks and reports read from metrics.json: Trainer.fit's typed records keep this layout.
METRICS_KEYS = ["seed", "best_epoch", "epochs_run", "stopped_early", "history", "valid", "test",
                "personality"]
EPOCH_KEYS = ["epoch", "train", "valid", "lr", "seconds"]


def test_metrics_json_keeps_its_keys(crash_setup):
    _, _, reference = crash_setup
    assert sorted(reference) == sorted(METRICS_KEYS)
    assert [sorted(epoch) for epoch in reference["history"]] == [sorted(EPOCH_KEYS)] * 2
    assert set(reference["test"]) >= {"mae", "corr", "acc2_non0", "acc7"}
    assert sorted(reference["personality"]) == ["encoder", "identity", "pretrained"]


def _to_format1(config_yaml: Path) -> None:
    """Rewrite a run's config.yaml in the layout psamf wrote before config format 2: no stamps,
    housekeeping keys flat at the top, optim.lr_encoder / optim.lr_other."""
    import yaml

    data = yaml.safe_load(config_yaml.read_text(encoding="utf-8"))
    del data["format"], data["psamf_version"]
    data.update(data.pop("housekeeping"))
    optim = data["optim"]
    optim["lr_encoder"], optim["lr_other"] = optim.pop("encoder_lr"), optim.pop("other_lr")
    config_yaml.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def test_a_run_folder_in_the_old_config_layout_resumes_exactly_and_evaluates(crash_setup):
    root, overrides, reference = crash_setup
    run = root / "runs" / "old-layout"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(  # killed in its 3rd checkpoint save: resumes after epoch 1
        [sys.executable, str(HERE / "crash_during_save.py"), "kill", "3", "train",
         "--out", str(root / "runs"), "--name", run.name, "--no-progress", *overrides],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    _to_format1(run / "config.yaml")
    assert "format" not in (run / "config.yaml").read_text()

    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    result = read_json(run / "seed-0" / "metrics.json")
    assert {k: result[k] for k in RESULT_KEYS} == {k: reference[k] for k in RESULT_KEYS}
    assert main(["evaluate", str(run), "--json", str(root / "old-eval.json")]) == 0
    assert read_json(root / "old-eval.json")["splits"]["test"]["mean"]["mae"] == \
        pytest.approx(reference["test"]["mae"])
