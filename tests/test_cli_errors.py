"""Bad command lines: a clear one-line message, exit code 2, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from psamf.cli import main


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(("args", "fragments"), [
    (["--data", "nosuch_dataset"], ["nosuch_dataset", "not a known dataset"]),
    (["--data", "{tmp}/missing/folder"], ["missing/folder"]),
    (["optim.lr_encodr=3e-5"], ["optim.lr_encodr", "valid keys", "optim.encoder_lr"]),
    (["epochs=two"], ["epochs", "'two'"]),
    (["model.use_prefusion=maybe"], ["model.use_prefusion"]),
    (["epochs=0"], ["epochs"]),
    (["--seeds", "1,x"], ["seeds"]),
])
def test_train_refuses_bad_arguments_before_writing(tmp_path, capsys, args, fragments):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    before = _listing(tmp_path)
    rc = main(["train", "--out", str(tmp_path / "runs"), "--no-progress", *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("psamf train: error:") and len(err.strip().splitlines()) == 1
    for fragment in fragments:
        assert fragment in err
    assert _listing(tmp_path) == before


def test_train_refuses_an_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    rc = main(["train", "--out", str(blocker / "runs"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "file.txt" in err and "--out" in err
    assert _listing(tmp_path) == ["file.txt"]


def test_resume_and_evaluate_of_a_missing_run(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nope"), "--text", "hi"]) == 2
    assert "nope" in capsys.readouterr().err
    assert _listing(tmp_path) == []


def test_resume_refuses_new_overrides(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path), "epochs=3"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_evaluate_refuses_an_unwritable_json_path(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("epochs: 1\n")
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    rc = main(["evaluate", str(tmp_path / "run"), "--json", str(blocker / "sub" / "out.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "file.txt" in err
