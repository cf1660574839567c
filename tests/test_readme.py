"""The README's Python API example runs exactly as printed (offline, on the built-in sample)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _api_block() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the Python API section should hold one python block"
    return blocks[0]


def test_readme_python_api_example_runs(tmp_path):
    code = _api_block()
    assert "..." not in code  # no placeholders
    src = str(Path(__file__).resolve().parents[1] / "src")
    # PYTHONPATH kept after src: where the packages are importable that way (not installed)
    path = os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
    env = {"PYTHONPATH": path, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.strip().splitlines()
    assert first == "torch.Size([8]) ['ccl', 'clm', 'ps', 'task']"
    assert 0.0 <= float(second) <= 6.0  # a MAE on labels in [-3, 3]
