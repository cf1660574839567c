"""The CLI's rough edges: one-line errors (exit 2), Ctrl-C (exit 130, resumable), nothing written
by a refused run, overrides anywhere, label.csv encodings, file modes, run.json provenance."""

from __future__ import annotations

import csv
import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import psamf_command, signal_in_second_epoch
from training_fixtures import fast_overrides, read_json, tiny_encoder

from psamf.cli import main

TINY = {"data.limit_train": 8, "data.limit_valid": 8, "data.limit_test": 8}


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def _one_error_line(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"psamf {command}: error:"), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hardening")


@pytest.fixture(scope="module")
def encoder(workdir) -> str:
    return tiny_encoder(workdir / "tiny-bert")


@pytest.fixture(scope="module")
def tiny_run(workdir, encoder) -> Path:
    """One seed, one epoch, 8 utterances per split; overrides split around the flags."""
    settings = fast_overrides(encoder, workdir / "cache", epochs=1, **TINY)
    half = len(settings) // 2
    argv = ["train", "--data", "sample", *settings[:half], "--seeds", "1", "--no-progress",
            *settings[half:], "--out", str(workdir / "runs"), "--name", "tiny"]
    assert main(argv) == 0
    return workdir / "runs" / "tiny"


# --- overrides anywhere, provenance, single-seed summaries -------------------------------------


def test_overrides_are_accepted_between_flags(tiny_run):
    config = json.loads(json.dumps(__import__("yaml").safe_load((tiny_run / "config.yaml")
                                                                .read_text())))
    assert config["seeds"] == [1] and config["epochs"] == 1
    assert config["data"]["limit_train"] == 8 and config["data"]["limit_test"] == 8
    assert config["model"]["fusion_hidden"] == 32  # from the first half of the overrides


def test_unknown_flag_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "epochs=1", "--bogus", "data.limit_train=8"])
    assert exit_.value.code == 2
    line = _one_error_line(capsys.readouterr().err, "train")
    assert "--bogus" in line and "data.limit_train" not in line


def test_run_json_records_commit_wall_time_and_memory(tiny_run):
    from psamf.provenance import git_commit

    info = read_json(tiny_run / "run.json")
    assert info["git_commit"] == git_commit() != ""
    (session,) = info["sessions"]
    assert session["git_commit"] == info["git_commit"] and session["resumed"] is False
    assert (session["status"], session["exit_status"]) == ("finished", 0)
    assert session["started"].endswith("Z") and len(session["started"]) == 20
    assert session["wall_seconds"] > 0 and session["peak_memory_mib"]["rss"] > 10
    assert session["threads"] == torch.get_num_threads() >= 1
    for when in ("start", "end"):
        load = session["load_average"][when]
        assert len(load) == 3 and all(v >= 0 for v in load)


def test_single_seed_summaries_show_no_zero_spread(tiny_run, capsys):
    md = (tiny_run / "summary.md").read_text()
    assert "±" not in md and "mean (n=1)" in md
    rows = list(csv.reader((tiny_run / "summary.csv").read_text().splitlines()))
    assert rows[-1][0] == "std" and all(cell == "" for cell in rows[-1][1:])
    summary = read_json(tiny_run / "summary.json")
    assert summary["test"]["n"] == 1 and set(summary["test"]["std"].values()) == {None}
    assert main(["evaluate", str(tiny_run)]) == 0
    printed = capsys.readouterr().out
    assert "±" not in printed and "mean (n=1)" in printed


def test_two_seeds_still_show_mean_and_std():
    from psamf.training.reports import csv_table, markdown_table, summarize

    per_seed = [{"seed": s, "test": {"mae": v}} for s, v in ((1, 0.7), (2, 0.9))]
    summary = summarize(per_seed)
    assert "0.8000 ± 0.1414" in markdown_table(summary) and summary["n"] == 2
    assert csv_table(summary).splitlines()[-1].startswith("std,0.141")


# --- nothing written by a refused run ----------------------------------------------------------


def _refusals(workdir: Path, encoder: str) -> list[tuple[list[str], list[str]]]:
    cases = [
        (["model.align_layer=99"], ["align_layer=99", "2 layers"]),
        (["model.text_encoder=" + str(workdir / "no-such-encoder")], ["no-such-encoder"]),
        (["--data", str(workdir / "latin1")], ["label.csv", "cp1252"]),
    ]
    if not torch.cuda.is_available():
        cases.append((["device=cuda"], ["cuda", "not available"]))
    return cases


def test_refused_configs_leave_nothing_in_out(workdir, encoder, capsys):
    _write_label_csv(workdir / "latin1", "latin-1")
    out = workdir / "refused"
    out.mkdir()
    (out / "earlier-run").mkdir()
    before = _listing(out)
    for extra, fragments in _refusals(workdir, encoder):
        base = fast_overrides(encoder, workdir / "cache", epochs=1, **TINY)
        rc = main(["train", "--out", str(out), "--no-progress", *base, *extra])
        line = _one_error_line(capsys.readouterr().err, "train")
        assert rc == 2, extra
        for fragment in fragments:
            assert fragment in line, (extra, line)
        assert _listing(out) == before, extra


def test_existing_run_name_is_refused(workdir, capsys):
    (workdir / "taken" / "mine").mkdir(parents=True)
    rc = main(["train", "--out", str(workdir / "taken"), "--name", "mine", "--no-progress"])
    line = _one_error_line(capsys.readouterr().err, "train")
    assert rc == 2 and "already exists" in line and "--resume" in line
    assert _listing(workdir / "taken") == ["mine"]


# --- label.csv encodings and malformed rows -----------------------------------------------------


_ROWS = [("v1", "1", "très bien, café", "1.5", "train"), ("v2", "1", "naïve", "-1.0", "valid"),
         ("v3", "1", "déjà vu", "0.5", "test")]


def _write_label_csv(folder: Path, encoding: str, rows=_ROWS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["video_id,clip_id,text,label,mode"]
    lines += [",".join(f'"{c}"' if "," in c else c for c in row) for row in rows]
    path = folder / "label.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


@pytest.mark.parametrize(("encoding", "guess"), [("utf-16", "utf-16"), ("latin-1", "cp1252")])
def test_label_csv_in_another_encoding(tmp_path, capsys, encoding, guess):
    path = _write_label_csv(tmp_path / "data", encoding)
    assert main(["data", "info", str(tmp_path / "data")]) == 2
    line = _one_error_line(capsys.readouterr().err, "data")
    assert str(path) in line and f"--labels-encoding {guess}" in line
    assert main(["data", "info", str(tmp_path / "data"), "--labels-encoding", guess]) == 0
    assert "3 utterances" not in capsys.readouterr().err


def test_label_csv_short_and_long_rows(tmp_path, capsys):
    short = [*_ROWS[:2], ("v3", "1", "déjà vu")]
    path = _write_label_csv(tmp_path / "short", "utf-8", short)
    assert main(["data", "info", str(tmp_path / "short")]) == 2
    line = _one_error_line(capsys.readouterr().err, "data")
    assert str(path) in line and "line 4" in line and "3 field(s)" in line
    path = _write_label_csv(tmp_path / "long", "utf-8", [*_ROWS[:2], (*_ROWS[2], "extra")])
    assert main(["data", "info", str(tmp_path / "long")]) == 2
    line = _one_error_line(capsys.readouterr().err, "data")
    assert str(path) in line and "line 4" in line and "quote" in line


def test_unknown_encoding_is_refused(tmp_path, capsys):
    _write_label_csv(tmp_path / "d", "utf-8")
    assert main(["data", "info", str(tmp_path / "d"), "--labels-encoding", "klingon"]) == 2
    assert "klingon" in _one_error_line(capsys.readouterr().err, "data")
    assert main(["train", "--data", str(tmp_path / "d"), "data.labels_encoding=klingon",
                 "--out", str(tmp_path / "runs")]) == 2
    assert "data.labels_encoding" in _one_error_line(capsys.readouterr().err, "train")
    assert not (tmp_path / "runs").exists()


# --- evaluate / predict / data on bad input -----------------------------------------------------


def test_evaluate_and_predict_on_broken_run_folders(tmp_path, capsys):
    bad_yaml = tmp_path / "bad-yaml"
    bad_yaml.mkdir()
    (bad_yaml / "config.yaml").write_text("epochs: [1\nseeds: {\n")
    not_a_run = tmp_path / "not-a-run"
    not_a_run.mkdir()
    wrong_types = tmp_path / "wrong-types"
    wrong_types.mkdir()
    (wrong_types / "config.yaml").write_text("epochs: many\nmodel: 3\n")
    for folder in (bad_yaml, not_a_run, wrong_types):
        for argv in (["evaluate", str(folder)], ["predict", str(folder), "--text", "fine"],
                     ["train", "--resume", str(folder)]):
            assert main(argv) == 2, argv
            assert folder.name in _one_error_line(capsys.readouterr().err, argv[0])


def test_evaluate_refuses_a_split_that_does_not_exist(tiny_run, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", str(tiny_run), "--split", "dev2"])
    assert exit_.value.code == 2
    assert "dev2" in _one_error_line(capsys.readouterr().err, "evaluate")


@pytest.mark.parametrize("text", ["", "   \t "])
def test_predict_refuses_empty_text(tiny_run, capsys, text):
    assert main(["predict", str(tiny_run), "--text", text]) == 2
    assert "--text is empty" in _one_error_line(capsys.readouterr().err, "predict")


def test_predict_refuses_unreadable_npy(tiny_run, tmp_path, capsys):
    empty = tmp_path / "empty.npy"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.npy"
    np.save(truncated, np.zeros((6, 12), dtype=np.float32))
    truncated.write_bytes(truncated.read_bytes()[:-40])
    archive = tmp_path / "frames.npz"
    np.savez(archive, audio=np.zeros((6, 12), dtype=np.float32))
    text = tmp_path / "text.npy"
    text.write_text("not numbers")
    for path in (empty, truncated, archive, text):
        assert main(["predict", str(tiny_run), "--text", "fine", "--audio", str(path)]) == 2
        assert path.name in _one_error_line(capsys.readouterr().err, "predict")


# --- Ctrl-C, progress bars in logs, file modes --------------------------------------------------


_psamf = psamf_command


def _umask_022() -> None:
    os.umask(0o022)
    # A shell without job control starts background jobs with SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler: give the run the default a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _check_modes(*roots: Path) -> int:
    checked = 0
    for root in roots:
        for path in [root, *root.rglob("*")]:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == (0o755 if path.is_dir() else 0o644), (oct(mode), path)
            checked += 1
    return checked


def test_ctrl_c_exits_130_resumably_and_files_honour_the_umask(workdir, encoder, tmp_path):
    """SIGINT mid-epoch: one line naming the --resume command, exit 130; the folder resumes to
    the end. Every file of the run and the P cache gets 0644 (dirs 0755) under umask 022. The
    runs log to files (not terminals): no progress bar (carriage return) may appear there."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    cache = tmp_path / "cache"
    overrides = fast_overrides(encoder, cache, epochs=3, checkpoint_every_steps=1)
    run = tmp_path / "runs" / "interrupted"
    log = tmp_path / "train.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            _psamf("-v", "train", "--out", str(tmp_path / "runs"), "--name", "interrupted",
                   *overrides),
            env=env, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=_umask_022,
        )
        sent = signal_in_second_epoch(proc, run, signal.SIGINT) is not None
    text = log.read_text()
    assert sent, f"run ended before it could be interrupted: {text[-2000:]}"
    assert proc.returncode == 130, text[-2000:]
    last = text.strip().splitlines()[-1]
    assert last == f"psamf train: interrupted; continue from the last checkpoint with: " \
                   f"psamf train --resume {run}"
    assert "Traceback" not in text and "\r" not in text
    assert not (run / "seed-0" / "metrics.json").exists()
    _check_modes(run, cache)  # the interrupted state (checkpoint/, best/) included

    with log.open("w") as err:
        resumed = subprocess.run(_psamf("-v", "train", "--resume", str(run)), env=env,
                                 stdout=subprocess.DEVNULL, stderr=err, timeout=300,
                                 preexec_fn=_umask_022)
    text = log.read_text()
    assert resumed.returncode == 0, text[-2000:]
    assert "resuming after epoch" in text and "\r" not in text
    assert read_json(run / "seed-0" / "metrics.json")["epochs_run"] == 3
    sessions = read_json(run / "run.json")["sessions"]
    assert [(s["resumed"], s["status"], s["exit_status"]) for s in sessions] == [
        (False, "interrupted", 130), (True, "finished", 0)]
    assert _check_modes(run, cache) > 15


def test_sigterm_and_sigkill_mid_epoch_still_count_in_run_json(workdir, encoder, tmp_path):
    """SIGTERM (a scheduler's stop) is handled like Ctrl-C: the resume line, exit 143, the call
    recorded as interrupted. A call killed outright keeps its entry as last updated (status
    running, its wall time up to its last epoch end); the folder still resumes to the end."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    overrides = fast_overrides(encoder, tmp_path / "cache", epochs=3, checkpoint_every_steps=1)
    run = tmp_path / "runs" / "stopped"

    def start(*argv: str) -> subprocess.Popen:
        return subprocess.Popen(_psamf("train", "--no-progress", *argv), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                preexec_fn=_umask_022)

    proc = start("--out", str(tmp_path / "runs"), "--name", "stopped", *overrides)
    sent = signal_in_second_epoch(proc, run, signal.SIGTERM) is not None
    err = proc.stderr.read()
    assert sent, f"run ended before it could be stopped: {err[-2000:]}"
    assert proc.returncode == 143, err[-2000:]
    assert err.strip().splitlines()[-1] == f"psamf train: interrupted; continue from the last " \
                                           f"checkpoint with: psamf train --resume {run}"
    assert "Traceback" not in err

    # Resumed inside epoch 2: killed inside epoch 3, once epoch 2's end has been recorded.
    proc, state = start("--resume", str(run)), run / "seed-0" / "checkpoint" / "state.json"
    while proc.poll() is None and json.loads(state.read_text())["loop"]["epoch"] < 2:
        time.sleep(0.01)
    assert signal_in_second_epoch(proc, run, signal.SIGKILL) is not None, proc.stderr.read()
    assert proc.returncode == -signal.SIGKILL

    resumed = subprocess.run(_psamf("train", "--resume", str(run), "--no-progress"), env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    sessions = read_json(run / "run.json")["sessions"]
    assert [(s["status"], s["exit_status"], s["resumed"]) for s in sessions] == [
        ("interrupted", 143, False), ("running", None, True), ("finished", 0, True)]
    assert all(s["wall_seconds"] > 0 and s["peak_memory_mib"]["rss"] > 10 for s in sessions)
    assert read_json(run / "seed-0" / "metrics.json")["epochs_run"] == 3


def test_pretrain_personality_writes_no_bars_into_a_log(workdir, encoder, tmp_path):
    from test_personality_pretrain import write_fi_corpus

    corpus = write_fi_corpus(tmp_path / "fi", {"train": 16, "valid": 8, "test": 8})
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    log = tmp_path / "pretrain.log"
    with log.open("w") as err:
        done = subprocess.run(
            _psamf("-v", "pretrain-personality", "--data", str(corpus), "--backbone", encoder,
                   "--out", str(tmp_path / "enc"), "epochs=1", "batch_size=8",
                   "max_tokens=16", "--device", "cpu"),
            env=env, stdout=subprocess.DEVNULL, stderr=err, timeout=300,
        )
    text = log.read_text()
    assert done.returncode == 0, text[-2000:]
    assert "epoch 1/1" in text  # the per-epoch log line is there; the bar is not
    assert "\r" not in text and "batch/s" not in text and "it/s" not in text
