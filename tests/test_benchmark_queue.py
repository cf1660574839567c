"""The benchmark harness's own checks (real_data.py, speed.py): locks, deadlines, stopping."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import real_data  # noqa: E402  (benchmark script, not a package)


@pytest.mark.parametrize("text", ["10:05:00", "25:00", "noon", "12:61"])
def test_a_malformed_deadline_is_refused_with_the_expected_format(text: str) -> None:
    with pytest.raises(SystemExit, match="HH:MM"):
        real_data._parse_deadline(text)


def test_deadline_forms() -> None:
    assert real_data._parse_deadline(None) is None
    assert real_data._parse_deadline("60") == pytest.approx(time.time() + 60, abs=2)
    # HH:MM is today's or, if that was over 12 hours ago, tomorrow's.
    assert -12 * 3600 <= real_data._parse_deadline("00:00") - time.time() <= 24 * 3600


def test_a_budget_variant_changes_exactly_the_argument_it_names() -> None:
    longer = real_data._budget_with("mosi-mpnet", "epochs=6", "epochs=10")
    base = real_data.BUDGETS["mosi-mpnet"]
    assert [(a, b) for a, b in zip(base, longer, strict=True) if a != b] == [
        ("epochs=6", "epochs=10")]
    # A variant whose argument is missing from the base would silently equal the base.
    with pytest.raises(ValueError, match="epochs=7"):
        real_data._budget_with("mosi-mpnet", "epochs=7", "epochs=10")


def test_every_job_names_its_dataset_and_missing_data_is_reported(tmp_path, monkeypatch) -> None:
    jobs = real_data.queue()
    assert {job.dataset for job in jobs} == {"mosi", "mosei"}
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
    out = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines()
                          if ":\t" in line)
        except OSError:  # the process ended while we looked
            continue
        if fields.get("PPid", "").strip() == str(pid):
            out.append(int(status.parent.name))
    return out


def test_speed_memory_stops_its_training_run_when_terminated(tmp_path, shared_data) -> None:
    """A session ending (SIGTERM) must not leave `psamf train` running on its own."""
    root = shared_data("mosei")
    script = Path(real_data.__file__).with_name("speed.py")
    env = {**os.environ, "PSAMF_DATA_ROOT": str(root)}
    bench = subprocess.Popen([sys.executable, str(script), "memory", "--steps", "1",
                              "--out", str(tmp_path)], env=env, stdout=subprocess.PIPE,
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
    exp = real_data.Experiment(group="g", name=model, label=model, budget="mosi-minilm",
                               overrides=(f"model.model_type={model_type}",), seeds=(0,),
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
