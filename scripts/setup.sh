#!/usr/bin/env bash
# Creates .venv (if needed) and installs psamf with its test tools, the media stack (psamf
# extract / predict --media), the export stack (serve: onnx, onnxruntime) and Optuna (tune: psamf
# tune), plus the Debian packages the tests use. Idempotent and quiet.
# PYTHON selects the interpreter (default python3, >= 3.10). PSAMF_EXTRAS overrides the extras
# (default dev,media,egemaps,serve,tune; e.g. PSAMF_EXTRAS=dev for the light core alone).
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
extras=${PSAMF_EXTRAS:-dev,media,egemaps,serve,tune}

# Debian packages: espeak-ng speaks the test clips; chromium + chromium-driver run the web page
# in the serve tests. Installed only when missing, and only as root
# (CI and fresh machines start bare); elsewhere say what to install.
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: the media tests need ${missing[*]} (Debian: sudo apt-get install ${missing[*]})" >&2
  fi
fi

[ -x .venv/bin/python ] || "$py" -m venv .venv
stamp=.venv/.psamf-setup-stamp
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ] \
   || [ "$(cat "$stamp")" != "$extras" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[$extras]" >&2
  echo "$extras" > "$stamp"
fi
