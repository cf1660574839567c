"""DDP: two CPU processes (gloo, ``psamf train --nproc 2``) train what one process trains.

One module-scoped run in this process is the reference. The same run in two processes must reach
the same per-epoch validation MAE and training losses, within ``TOLERANCE``: with the losses
computed over the gathered global batch, the two runs differ only in float rounding (each rank's
batch trimmed to its own longest transcript, so other matmul shapes; the gradient summed by DDP's
all-reduce instead of inside one backward). Measured on this configuration: |delta| <= 1.4e-7 after
two epochs. Computing the losses per rank instead (no gather: each rank's contrastive loss sees
only its half of the batch) moves the validation MAE by 2e-3 and 1.1e-2 in these two epochs, so
1e-5 tells the two apart with margin both ways.

The training set (40) with a global batch of 13 leaves a final batch of one every epoch (the
contrastive terms drop out, their projections get no gradient). The 2-process run is stopped
after epoch 1 and finished with ``--resume``: epoch 1 comes from the first launch, epoch 2 from
the resumed one, and both must match the one-process run (a rank that failed to load the
checkpoint would train other weights than rank 0 and break the match).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import psamf_command
from training_fixtures import TEST_DEVICE_ENV, fast_overrides, read_json, tiny_encoder

from psamf.cli import main
from psamf.errors import InputError
from psamf.training.distributed import SINGLE, World, check_gpus, share

TOLERANCE = 1e-5
TRAIN, BATCH = 40, 13
HELPER = Path(__file__).with_name("stop_after_epoch.py")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ddp")


@pytest.fixture(scope="module")
def overrides(workdir) -> list[str]:
    # Dropout off (head and encoder): each rank draws its own masks, one process other ones.
    encoder = Path(tiny_encoder(workdir / "tiny-bert"))
    config = read_json(encoder / "config.json")
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (encoder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    # NCCL when the suite runs on CUDA with a GPU for each process; else gloo on CPU (one GPU
    # cannot hold two NCCL ranks, see test_more_processes_than_gpus_is_one_line)
    cuda = os.environ.get(TEST_DEVICE_ENV) == "cuda" and torch.cuda.device_count() >= 2
    return fast_overrides(str(encoder), workdir / "cache", **{
        "model.dropout": 0.0, "data.limit_train": TRAIN, "data.limit_valid": 24,
        "data.limit_test": 24, "batch_size": BATCH, "device": "cuda" if cuda else "cpu"})


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _train(workdir: Path, name: str, overrides: list[str], head: list[str],
           *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*head, "train", *flags, "--out", str(workdir / "runs"), "--name", name, "--no-progress",
         *overrides], env=_env(), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def one(workdir, overrides) -> dict:
    assert main(["train", "--out", str(workdir / "runs"), "--name", "one", "--no-progress",
                 *overrides]) == 0
    return read_json(workdir / "runs" / "one" / "seed-0" / "metrics.json")


@pytest.fixture(scope="module")
def two(workdir, overrides) -> tuple[Path, str]:
    """The 2-process run: launched by torchrun, stopped after epoch 1's checkpoint in both
    processes, then finished with ``psamf train --nproc 2 --resume`` (one run, two launches, to
    keep the module near a minute on a loaded 2-core machine). Returns (run, resumed stderr)."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node=2"]
    stopped = _train(workdir, "two", overrides, [*torchrun, str(HELPER), "1"])
    assert stopped.returncode != 0, stopped.stderr[-3000:]
    assert "psamf train --resume" in stopped.stderr, stopped.stderr[-3000:]
    run = workdir / "runs" / "two"
    assert read_json(run / "seed-0" / "checkpoint" / "state.json")["loop"]["epoch"] == 1
    assert not (run / "seed-0" / "metrics.json").exists()
    resumed = subprocess.run(
        [*psamf_command(), "train", "--nproc", "2", "--resume", str(run), "--no-progress"],
        env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return run, resumed.stderr


def test_share_deals_each_global_batch_out_in_order():
    batch = list(range(100, 107))
    parts = [share(batch, World(rank=r, size=3)) for r in range(3)]
    assert [p for p, _ in parts] == [[100, 101, 102], [103, 104], [105, 106]]
    assert all(sizes == [3, 2, 2] for _, sizes in parts)
    # smaller than the world: every rank takes all of it, nothing to gather
    assert share([5], World(rank=1, size=2)) == ([5], None)
    assert share(batch, SINGLE) == (batch, None)


def test_two_processes_match_one_process_epoch_by_epoch(one, two):
    run, resumed = two
    assert "resuming after epoch 1, step 0" in resumed
    assert TRAIN % BATCH == 1  # the last global batch of every epoch holds one sample
    got = read_json(run / "seed-0" / "metrics.json")
    assert len(got["history"]) == len(one["history"]) == 2
    for a, b in zip(one["history"], got["history"], strict=True):
        assert b["valid"]["mae"] == pytest.approx(a["valid"]["mae"], abs=TOLERANCE)
        assert set(a["train"]) == set(b["train"]) == {"loss", "task", "ccl", "ps", "clm"}
        for term, value in a["train"].items():
            assert b["train"][term] == pytest.approx(value, abs=TOLERANCE), term
    assert got["best_epoch"] == one["best_epoch"]
    for split in ("valid", "test"):
        assert got[split]["mae"] == pytest.approx(one[split]["mae"], abs=TOLERANCE)


def test_rank0_writes_whole_split_predictions_once(one, workdir, two):
    run, _ = two
    rows = (run / "seed-0" / "predictions_test.csv").read_text().splitlines()[1:]
    reference = (workdir / "runs" / "one" / "seed-0" / "predictions_test.csv").read_text()
    ref_rows = reference.splitlines()[1:]
    assert len(rows) == len(ref_rows) == 24  # gathered, not one rank's half, no padding repeats
    for row, ref in zip(rows, ref_rows, strict=True):
        assert row.split(",")[:2] == ref.split(",")[:2]  # same ids, same order
        assert float(row.split(",")[2]) == pytest.approx(float(ref.split(",")[2]), abs=1e-4)
    # one event file per launch (rank 0's), not one per process
    assert len(list((run / "seed-0" / "tensorboard").glob("events.out.tfevents.*"))) == 2
    sessions = read_json(run / "run.json")["sessions"]  # rank 0 records each call, once
    assert [(s["world_size"], s["resumed"], s["status"]) for s in sessions] == [
        (2, False, "interrupted"), (2, True, "finished")]
    assert sessions[1]["threads"] == 1  # OMP_NUM_THREADS=1 here; cores // 2 otherwise


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_process_count_is_one_line(value, capsys):
    assert main(["train", "--nproc", value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--nproc {value}" in err[0]


def test_gpu_count_check_refuses_more_processes_than_gpus(monkeypatch):
    """The rule on any machine: CUDA with fewer GPUs than processes is refused, naming both
    ways out; CPU runs and one process are never refused (here the GPU count is patched)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    for device in ("auto", "cuda", None):
        with pytest.raises(InputError, match=r"2 processes on this machine need one GPU each, "
                                             r"but torch sees 1; use at most 1 .* device=cpu"):
            check_gpus(device, 2)
    check_gpus("cuda", 1)
    check_gpus("cpu", 8)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    check_gpus("auto", 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_more_processes_than_gpus_is_one_line(workdir, overrides):
    """On a real CUDA machine: one process more than its GPUs, through --nproc and through
    torchrun, is one line and exit status 2, before any run folder is made."""
    n = torch.cuda.device_count() + 1
    settings = [o for o in overrides if not o.startswith("device=")] + ["device=cuda"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc-per-node={n}", "-m", "psamf"]
    for name, head, flags in (("nproc", psamf_command(), ["--nproc", str(n)]),
                              ("torchrun", torchrun, [])):
        done = _train(workdir, f"too-many-{name}", settings, head, *flags)
        assert done.returncode != 0, name
        if name == "nproc":  # psamf's own launcher: refused before launching, once
            assert done.returncode == 2
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and "need one GPU each" in lines[0], done.stderr[-2000:]
        else:  # torchrun's: every process says the same line instead of dying on set_device
            assert "need one GPU each" in done.stderr and "invalid device ordinal" not in \
                done.stderr, done.stderr[-2000:]
        assert not (workdir / "runs" / f"too-many-{name}").exists()


def test_nproc_resume_checks_the_gpus_against_the_runs_own_device(one, workdir, monkeypatch,
                                                                  capsys):
    """``--nproc N --resume RUN`` checks the GPUs against the device RUN was saved with, not the
    default ``auto`` (which, on an H200, refused to resume a device=cpu run in two processes):
    here a run saved with device=cuda, on a machine that seems to have one GPU."""
    import shutil

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    run = workdir / "runs" / "saved-cuda"
    shutil.copytree(workdir / "runs" / "one", run)
    config = run / "config.yaml"
    text = config.read_text(encoding="utf-8")
    assert "  device: cpu\n" in text
    config.write_text(text.replace("  device: cpu\n", "  device: cuda\n"), encoding="utf-8")
    assert main(["train", "--nproc", "2", "--resume", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "device=cuda: 2 processes on this machine need one GPU each" in err[0]
    # a setting beside --resume is refused once, before launching, as without --nproc
    assert main(["train", "--nproc", "2", "--resume", str(run), "epochs=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume continues a run with its saved config" in err[0]
