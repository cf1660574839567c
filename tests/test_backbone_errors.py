"""A missing or mistyped encoder is one NotFoundError line at once: no hub retries, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from training_fixtures import tiny_encoder

from psamf.backbones import resolve_backbone
from psamf.cli import main
from psamf.errors import NotFoundError


@pytest.mark.parametrize("name", [
    "minlm",  # a short name mistyped
    "sentence-transformers/all-MiniLM-L6-v3",  # a hub id mistyped (the hub is unreachable here)
    "artifacts/personality-minilm-gone",  # a relative folder that moved
    "{tmp}/deleted/encoder",  # an absolute one
])
def test_unknown_encoders_fail_fast_in_one_line(tmp_path, name):
    name = name.replace("{tmp}", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(NotFoundError) as err:
        resolve_backbone(name)
    assert time.monotonic() - start < 10
    message = str(err.value)
    assert message.startswith(f"{name}:") and "\n" not in message
    assert "folder" in message


def test_offline_mode_is_honoured_without_asking_the_hub(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NotFoundError, match="HF_HUB_OFFLINE"):
        resolve_backbone("sentence-transformers/all-MiniLM-L6-v3")


def test_a_folder_without_config_is_not_a_model(tmp_path):
    with pytest.raises(NotFoundError, match="config.json"):
        resolve_backbone(str(tmp_path))
    encoder = tiny_encoder(tmp_path / "tiny")
    assert resolve_backbone(encoder) == encoder


def _one_error_line(stderr: str, command: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"psamf {command}: error:")
    return lines[0]


def test_cli_prints_exactly_one_line_for_a_mistyped_text_encoder(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "psamf", "train", "--out", str(tmp_path / "runs"), "--no-progress",
         "model.text_encoder=minlm", f"cache_dir={tmp_path / 'cache'}"],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert time.monotonic() - start < 30  # python + torch start-up included
    line = _one_error_line(proc.stderr, "train")
    assert "minlm" in line and "neither a local folder" in line
    assert not (tmp_path / "runs").exists()


def test_cli_one_line_for_a_mistyped_personality_encoder(tmp_path, capsys):
    rc = main(["train", "--out", str(tmp_path / "runs"), "--no-progress",
               "personality_encoder=sentence-transformers/all-MiniLM-L6-v3",
               f"cache_dir={tmp_path / 'cache'}"])
    assert rc == 2
    line = _one_error_line(capsys.readouterr().err, "train")
    assert "all-MiniLM-L6-v3" in line
