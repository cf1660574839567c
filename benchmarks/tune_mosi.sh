#!/usr/bin/env bash
# The small MOSI study of benchmarks/tune_mosi.md: 4 trials of PSA-MF + MiniLM, 2 epochs each on
# the first 128 training utterances (full validation split; the test split is never read), the
# default search space, TPE seed 0, median pruning. Then the exported preset, record and plots are
# copied into benchmarks/tune_mosi/. Run from the repository root (MOSI under ../shared/data or
# $PSAMF_DATA_ROOT); OUT (default runs/tune) holds the study and its trial run folders.
set -euo pipefail
out=${OUT:-runs/tune}
psamf=${PSAMF:-psamf}
$psamf tune --data mosi --trials 4 --study mosi-minilm --out "$out" --seed 0 --no-progress \
  model.text_encoder=minilm epochs=2 eval_batch_size=64 data.limit_train=128
mkdir -p benchmarks/tune_mosi
cp "$out"/mosi-minilm/{best_preset.yaml,study.json,optimization_history.png,param_importances.png,intermediate_values.png} \
  benchmarks/tune_mosi/
