"""The benchmark harness's own checks (real_data.py, speed.py): locks, deadlines, stopping."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from benchmarks import real_data
from psamf.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("text", ["10:05:00", "25:00", "noon", "12:61"])
def test_a_malformed_deadline_is_refused_with_the_expected_format(text: str) -> None:
    with pytest.raises(SystemExit, match="HH:MM"):
        real_data._parse_deadline(text)


def test_deadline_forms() -> None:
    assert real_data._parse_deadline(None) is None
    assert real_data._parse_deadline("60") == pytest.approx(time.time() + 60, abs=2)
    # HH:MM is today's or, if that was over 12 hours ago, tomorrow's.
    assert -12 * 3600 <= real_data._parse_deadline("00:00") - time.time() <= 24 * 3600


def test_a_budget_variant_changes_exactly_the_setting_it_names() -> None:
    base = real_data.BUDGETS["mosi-mpnet"]
    longer = base.but("longer", "epochs", "10")
    assert [(a, b) for a, b in zip(base.args(), longer.args(), strict=True) if a != b] == [
        ("epochs=6", "epochs=10")]
    assert longer.config().epochs == 10 and base.config().epochs == 6
    # A variant whose setting is missing from the base would silently equal the base.
    with pytest.raises(InputError, match="epoch"):
        base.but("typo", "epoch", "10")


def test_a_budget_resolves_as_psamf_train_resolves_its_arguments() -> None:
    from psamf.cli import build_parser
    from psamf.commands.train import build_config

    for budget in real_data.BUDGETS.values():
        args = build_parser().parse_args(["train", *budget.args()])
        assert build_config(args) == budget.config(), budget.name


@pytest.mark.parametrize("overrides", [{"model.align_layr": "3"}, {"epochs": "ten"},
                                       {"model.model_type": "psamff"}])
def test_a_bad_override_fails_when_the_experiment_is_declared(overrides) -> None:
    with pytest.raises(InputError, match="experiment g/typo"):
        real_data.Experiment("g", "typo", "typo", real_data.BUDGETS["mosi-minilm"],
                             {"model.model_type": "psamf", **overrides}, (1,))


@pytest.mark.parametrize(("old", "new", "named"), [
    ("[model.align_layer=1]", "[model.align_layr=1]",
     ["model.align_layr", "experiment design/align-layer-1"]),
    # a second row named like the first: named alone, not buried in every key there is
    ("      - [lmf, ", "      - [tfn, ", ["declared twice: baselines/tfn ("]),
    ("variants_of: mosi-minilm/psamf", "variants_of: mosi-minilm/psamff",
     ["variants_of 'mosi-minilm/psamff' is not an experiment"]),
    ("include: [mosi-minilm/psamf, ", "include: [mosi-minilm/psamf-full, ",
     ["not declared: mosi-minilm/psamf-full ("]),
])
def test_a_typo_in_the_declarations_fails_at_list(tmp_path, old, new, named) -> None:
    """The declarations are checked on import: `list` exits at once, with one line naming the
    bad key and nothing else."""
    bench = tmp_path / "benchmarks"
    shutil.copytree(ROOT / "benchmarks", bench, ignore=shutil.ignore_patterns("results", "*.png"))
    source = (bench / "experiments.yaml").read_text(encoding="utf-8")
    assert old in source
    (bench / "experiments.yaml").write_text(source.replace(old, new, 1), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(tmp_path)])}
    done = subprocess.run([sys.executable, "-m", "benchmarks.real_data", "list"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    error = done.stderr.strip()
    assert error.startswith("benchmarks.real_data: error: ") and "experiments.yaml" in error
    assert all(n in error for n in named), error
    assert "mosi-minilm/text-finetune" not in error  # not the list of every experiment


def test_the_committed_declarations_list() -> None:
    ok = subprocess.run([sys.executable, "-m", "benchmarks.real_data", "list"], cwd=ROOT,
                        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "design/align-layer-1" in ok.stdout


def test_uses_personality_comes_from_the_resolved_config() -> None:
    reads_p = {e.key: e.uses_personality() for e in real_data.EXPERIMENTS}
    assert reads_p["mosi-minilm/psamf"] and reads_p["design/psamf-untuned-personality-mean"]
    assert not reads_p["mosi-minilm/text-finetune"] and not reads_p["ablation/no-personality"]
    untuned = real_data.Job(real_data.experiment("design/psamf-untuned-personality"), 1)
    assert real_data.train_args(untuned)[-1] == "personality_encoder=minilm"
    text = real_data.Job(real_data.experiment("mosi-minilm/text-finetune"), 1)
    assert not any(a.startswith("personality_encoder=") for a in real_data.train_args(text))


def test_every_group_is_one_record_with_one_budget() -> None:
    assert [g.name for g in sorted((g for g in real_data.GROUPS.values() if g.main is not None),
                                   key=lambda g: g.main)][:1] == ["mosi-minilm"]
    for name in real_data.GROUPS:
        assert len({e.budget.name for e in real_data.GROUPS[name].experiments}) == 1, name


def test_every_job_names_its_dataset_and_missing_data_is_reported(tmp_path, monkeypatch) -> None:
    jobs = real_data.queue()
    assert {job.experiment.budget.dataset for job in jobs} == {"mosi", "mosei"}
    monkeypatch.setenv("PSAMF_DATA_ROOT", str(tmp_path))
    (tmp_path / "mosi").mkdir()
    assert real_data.missing_data(jobs) == [tmp_path / "mosei"]


def test_the_job_lock_stays_held_while_a_child_holding_it_outlives_the_queue(tmp_path,
                                                                              monkeypatch):
    """A queue killed outright must not free its job while the training process still runs."""
    monkeypatch.setattr(real_data, "RUNS", tmp_path)
    job = real_data.queue()[0]
    lock = real_data.try_lock(job)
    assert lock is not None and real_data.try_lock(job) is None
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                             pass_fds=(lock.fileno(),))
    try:
        lock.close()  # the queue is gone; the child still holds the open file
        assert real_data.try_lock(job) is None
    finally:
        child.kill()
        child.wait()
    again = real_data.try_lock(job)
    assert again is not None
    again.close()


def _children(pid: int) -> list[int]:
    """The ``psamf train`` children of ``pid`` (not whatever else it runs, e.g. ``git`` while it
    imports, before its SIGTERM handler is installed)."""
    out = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines()
                          if ":\t" in line)
        except OSError:  # the process ended while we looked
            continue
        if fields.get("PPid", "").strip() != str(pid):
            continue
        try:
            argv = (status.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"psamf" in argv and b"train" in argv:
            out.append(int(status.parent.name))
    return out


def test_speed_memory_stops_its_training_run_when_terminated(tmp_path, shared_data) -> None:
    """A session ending (SIGTERM) must not leave `psamf train` running on its own."""
    root = shared_data("mosei")
    env = {**os.environ, "PSAMF_DATA_ROOT": str(root)}
    bench = subprocess.Popen([sys.executable, "-m", "benchmarks.speed", "memory", "--steps", "1",
                              "--out", str(tmp_path)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not (children := _children(bench.pid)) and time.time() < deadline:
            time.sleep(0.2)
        assert children, "speed.py memory did not start psamf train"
        time.sleep(1.0)
        bench.send_signal(signal.SIGTERM)
        _, err = bench.communicate(timeout=60)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    assert bench.returncode == 130 and "nothing was written" in err
    for pid in children:  # ended and reaped, not orphaned
        assert not Path(f"/proc/{pid}").exists()


@pytest.mark.parametrize("model", ["psamf", "text_finetune", "psamf-unrecorded"])
def test_a_result_always_states_which_p_produced_it(tmp_path, monkeypatch, model: str) -> None:
    """collect() writes personality_identity for every result: the identity the run recorded,
    or an explicit null with its source and the reason (no P; a run that did not record it)."""
    import json

    from training_fixtures import fast_overrides, tiny_encoder

    from psamf.cli import main

    monkeypatch.setattr(real_data, "RUNS", tmp_path / "runs")
    model_type = model.split("-")[0]
    exp = real_data.Experiment(group="g", name=model, label=model,
                               budget=real_data.BUDGETS["mosi-minilm"],
                               overrides={"model.model_type": model_type}, seeds=(0,),
                               personality="untuned")
    job = real_data.Job(exp, 0)
    encoder = tiny_encoder(tmp_path / "enc")
    overrides = fast_overrides(encoder, tmp_path / "cache", epochs=1,
                               **{"data.limit_train": 16, "data.limit_valid": 8,
                                  "data.limit_test": 8})
    assert main(["train", "--out", str(real_data.RUNS), "--name", job.run_name, "--no-progress",
                 f"model.model_type={model_type}", *overrides]) == 0
    run_info = json.loads((job.run_dir / "run.json").read_text(encoding="utf-8"))
    if model == "psamf-unrecorded":  # a run folder from before run.json recorded P
        run_info.pop("personality")
        (job.run_dir / "run.json").write_text(json.dumps(run_info), encoding="utf-8")
    result = real_data.collect(job)
    assert result is not None
    if model == "psamf":
        assert result["personality_identity"] == run_info["personality"]["identity"]
        assert result["personality_identity"].startswith("sha256-")
        assert result["personality_identity_source"] == "recorded"
    else:
        assert result["personality_identity"] is None
        assert result["personality_identity_source"] == "none"
        reason = "no P" if model == "text_finetune" else "not recorded by the run"
        assert reason in result["personality_identity_note"]


def test_epoch_seconds_come_from_the_runs_own_history() -> None:
    history = [{"epoch": 1, "seconds": {"train": 60.0, "valid": 2.5}},
               {"epoch": 2, "seconds": {"train": 50.125, "valid": 2.0}},
               {"epoch": 3, "seconds": {"train": 40.0, "valid": 1.0}}]
    assert real_data._epoch_seconds(history) == [52.12, 41.0]  # epoch 1 left out, as before


def test_every_call_of_a_stopped_and_resumed_run_counts_in_its_result(tmp_path, monkeypatch):
    """run_psamf on a real tiny run: a call stopped at the deadline returns None; a call killed
    outright still counts (psamf train records each call in run.json from its start), so the
    collected result sums the wall time of every call and names each command. A run folder
    started before that (its calls in the queue's bench_attempts.json) counts those calls plus
    the sessions that started after them."""
    import json

    from training_fixtures import fast_overrides, tiny_encoder

    monkeypatch.setattr(real_data, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(real_data, "LOGS", tmp_path / "logs")
    settings = dict(item.split("=", 1) for item in fast_overrides(
        tiny_encoder(tmp_path / "enc"), tmp_path / "cache", epochs=4, checkpoint_every_steps=1,
        early_stopping_patience=4, **{"data.limit_train": 16, "data.limit_valid": 8,
                                       "data.limit_test": 8}))
    exp = real_data.Experiment("g", "tiny", "tiny", real_data.Budget("tiny", "sample", settings),
                               {"model.model_type": "text_finetune"}, (0,))
    job = real_data.Job(exp, 0)
    lock = real_data.try_lock(job)
    assert lock is not None
    with lock:
        assert real_data.run_psamf(job, deadline=time.time(), lock=lock) is None
        rcs: list[int | None] = []
        call = threading.Thread(target=lambda: rcs.append(
            real_data.run_psamf(job, deadline=None, lock=lock)))
        call.start()
        checkpoint = job.run_dir / "seed-0" / "checkpoint"
        give_up = time.time() + 120
        while not checkpoint.is_dir() and call.is_alive() and time.time() < give_up:
            time.sleep(0.2)
        for pid in _children(os.getpid()):
            os.kill(pid, signal.SIGKILL)
        call.join(timeout=60)
        assert rcs == [-signal.SIGKILL], (job.run_dir / "seed-0").exists()
        assert real_data.collect(job) is None
        assert real_data.run_psamf(job, deadline=None, lock=lock) == 0
    result = real_data.collect(job)
    run_info = json.loads((job.run_dir / "run.json").read_text(encoding="utf-8"))
    sessions = run_info["sessions"]
    assert [s["status"] for s in sessions] == ["running", "finished"]  # killed, then resumed
    assert result["attempts"] == 2 and result["wall_note"] == ""
    assert result["wall_s"] == pytest.approx(sum(s["wall_seconds"] for s in sessions), abs=0.02)
    assert sessions[0]["wall_seconds"] > 0 and result["wall_s"] > sessions[1]["wall_seconds"]
    assert result["command"] == sessions[0]["command"] == run_info["command"]
    assert result["resume_commands"] == [sessions[1]["command"]]
    assert "--resume" in sessions[1]["command"] and "--resume" not in sessions[0]["command"]
    assert result["git_commits"] == sorted({s["git_commit"] for s in sessions})
    assert result["peak_rss_mib"] > 50 and result["test"]["mae"] >= 0

    # As if the first call had been made by the queue before psamf train kept sessions current:
    # bench_attempts.json holds it (and a session of the old kind, recorded at the end without
    # a start, duplicates it); only sessions that started after it ended count on top. Its peak
    # is above every session's (on CUDA a tiny run's RSS is ~2 GB, with the context).
    legacy_peak = max(s["peak_memory_mib"]["rss"] for s in sessions) + 500.0
    legacy = {"command": "psamf train --legacy", "commit": "abc", "wall_s": 7.5,
              "peak_rss_mib": legacy_peak, "started": "2020-01-01T00:00:00Z", "rc": 0}
    (job.run_dir / "bench_attempts.json").write_text(json.dumps([legacy]), encoding="utf-8")
    old_kind = {k: v for k, v in sessions[0].items() if k not in ("started", "status")}
    run_info["sessions"] = [old_kind, sessions[1]]
    (job.run_dir / "run.json").write_text(json.dumps(run_info), encoding="utf-8")
    mixed = real_data.collect(job)
    assert mixed["attempts"] == 2 and mixed["git_commit"] == "abc"
    assert mixed["wall_s"] == pytest.approx(7.5 + sessions[1]["wall_seconds"], abs=0.02)
    assert mixed["peak_rss_mib"] == legacy_peak
    assert mixed["resume_commands"] == [sessions[1]["command"]]
    legacy["started"] = sessions[1]["started"]  # the old queue ran the call that made it
    (job.run_dir / "bench_attempts.json").write_text(json.dumps([legacy]), encoding="utf-8")
    assert real_data.collect(job)["attempts"] == 1
