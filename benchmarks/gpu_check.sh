#!/usr/bin/env bash
# The GPU checks of issue 19, in about 8 minutes on one CUDA GPU (H100/H200 class):
#
#   1. the CUDA tests (tests/training/test_cuda.py: bf16 autocast, TF32, fused AdamW, pinned
#      batches, train.compile on the GPU), the compile and optimizer tests, and the memory
#      check (a study on CUDA is measured against the GPU's memory);
#   2. 500 training steps of studies/dynamic_dropout_gpu.yaml (nanoGPT's shakespeare_char
#      baseline: 6 layers x 384, context 256, batch 64, dropout 0.2), eager and compiled:
#      steady steps/s, whole-run time with compilation, peak GPU memory;
#   3. R-Drop's concatenated forward pass against two passes, GPT and encoder (target >= 1.2x).
#
# Needs a Python environment whose torch has CUDA (the README's install, with torch's CUDA
# build) and the repository's packages; run it from anywhere:
#
#   benchmarks/gpu_check.sh [LOG_FOLDER]     # PYTHON=/absolute/path/to/python to choose one
#
# Everything printed is also written to LOG_FOLDER/gpu_check.log (default: the current folder).
# Each step has its own time limit, so one slow step cannot take the others' time.
set -uo pipefail

cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
LOG_DIR="${1:-.}"
mkdir -p "$LOG_DIR"
LOG="$LOG_DIR/gpu_check.log"
: > "$LOG"
status=0

step() {  # step SECONDS TITLE COMMAND...: run COMMAND with a time limit, log it, keep going
  local limit="$1" title="$2"
  shift 2
  echo "=== $title ($(date +%T), limit ${limit} s)" | tee -a "$LOG"
  timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
  local code="${PIPESTATUS[0]}"
  echo "=== exit $code" | tee -a "$LOG"
  [ "$code" -eq 0 ] || status=1
}

if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "error: $PY has no CUDA device (torch $("$PY" -c 'import torch; print(torch.__version__)' \
    2>/dev/null || echo missing)); run this on a GPU machine with torch's CUDA build" | tee -a "$LOG"
  exit 2
fi
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
  --format=csv | tee -a "$LOG"

step 120 "CUDA, compile, optimizer and memory-check tests" \
  "$PY" -m pytest tests/training/test_cuda.py tests/training/test_compile.py \
  tests/training/test_optim.py tests/config/test_checks.py -q -p no:cacheprovider -rs
step 240 "500 steps of dynamic_dropout_gpu.yaml, eager and compiled" \
  "$PY" benchmarks/compiled_steps.py studies/dynamic_dropout_gpu.yaml --steps 500 \
  --warmup-steps 20 --override train.eval_batches=20
step 45 "R-Drop on the GPT: concatenated pass against two passes" \
  "$PY" benchmarks/rdrop.py --model gpt --layers 6 --width 384 --batch 64 --rounds 5 --steps 10
step 45 "R-Drop on the encoder: concatenated pass against two passes" \
  "$PY" benchmarks/rdrop.py --model encoder --rounds 5 --steps 10

echo "done: $LOG (exit $status)"
exit "$status"
