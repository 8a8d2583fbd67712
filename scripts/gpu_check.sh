#!/usr/bin/env bash
# Every GPU check of the kernels (issue 20: attention backward, padding-free LM, delta-rule backward, selective scan)
# and then `nc bench kernels`, in one run of about 5-8 minutes on an H100/H200. From the repository root:
#     scripts/gpu_check.sh [directory for the log]        (PYTHON=... to pick the interpreter)
# Prints the device, versions, correctness against the references (bf16 and fp32, with their bars), the no-sync and
# CUDA-graph checks of the packed LM, the tiles chosen for the card, the benchmark table and which bars are met.
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${1:-${OUT:-.}}
mkdir -p "$dir"
unset TRITON_INTERPRET                        # compile for the GPU, never the interpreter
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || echo "nvidia-smi not found"
  timeout 560 "${PYTHON:-python}" scripts/gpu_check.py
  echo "exit status $?"
} 2>&1 | tee "$dir/gpu_check.log"
