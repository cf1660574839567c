import os
import subprocess

import torch

from psamf.provenance import git_commit, machine


def _git(repo, *args):
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True, capture_output=True, text=True,
    ).stdout.strip()


def test_git_commit_sha_and_dirty_only_for_src(tmp_path):
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "a.py").write_text("x = 1\n")
    (repo / "notes.md").write_text("hi\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "init")
    sha = _git(repo, "rev-parse", "HEAD")

    assert git_commit(repo / "src") == sha
    (repo / "notes.md").write_text("changed\n")  # outside src/: still clean
    (repo / "src" / "new.py").write_text("")  # untracked: still clean
    assert git_commit(repo) == sha
    (repo / "src" / "a.py").write_text("x = 2\n")
    assert git_commit(repo / "src") == sha + "+dirty"
    assert git_commit(repo) == sha + "+dirty"


def test_git_commit_outside_a_checkout(tmp_path):
    assert git_commit(tmp_path) == "unknown"


def test_machine_line_names_cores_gpu_and_the_moment_of_the_load_average():
    line = machine("at the end")
    assert line.startswith(f"{os.cpu_count()} CPU cores (")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    assert f"), {gpu}, load average at the end " in line
    assert len(line.rsplit("at the end ", 1)[1].split(", ")) == 3  # 1, 5 and 15 minutes
