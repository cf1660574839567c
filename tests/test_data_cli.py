"""``psamf data info`` through the CLI entry point and as a real process."""

from __future__ import annotations

import subprocess
import sys

from psamf.cli import main


def test_data_info_sample(capsys):
    assert main(["data", "info", "sample"]) == 0
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out
    assert "train     400 utterances" in out and "test      200 utterances" in out
    assert "audio (d=12), vision (d=10)" in out


def test_data_info_folder_and_missing_folder(tmp_path, capsys):
    (tmp_path / "label.csv").write_text(
        "id,text,label,mode\na,good film,1.5,train\nb,bad film,-2,val\nc,fine,0,test\n"
    )
    assert main(["data", "info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "valid       1 utterances" in out and "absent: audio, vision" in out
    assert main(["data", "info", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "missing: no such folder" in err and "Traceback" not in err
    assert main(["data", "info", "mosi", "--root", str(tmp_path)]) == 2
    assert "--root" in capsys.readouterr().err


def test_data_info_subprocess(tmp_path):
    (tmp_path / "label.csv").write_text(
        "video_id,clip_id,text,label,mode\nv,1,good,1.0,train\nv,2,bad,-1.0,valid\n"
        "w,1,meh,0.0,test\nw,2,great,2.5,test\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "psamf", "data", "info", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "test        2 utterances" in proc.stdout
    assert "labels: min -1.000, max 2.500" in proc.stdout
