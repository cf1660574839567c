#!/usr/bin/env bash
# Creates .venv (if needed) and installs psamf with its test tools. Idempotent and quiet.
# PYTHON selects the interpreter (default python3, >= 3.10).
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$py" -m venv .venv
stamp=.venv/.psamf-setup-stamp
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]' >&2
  touch "$stamp"
fi
