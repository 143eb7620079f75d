#!/usr/bin/env bash
# GPU checks and figures, for a machine with CUDA and a torch that sees it.
#
#   bash benchmarks/gpu_check.sh [OUTDIR]
#
# 1. the device tests and the sampler/energy contract tests with --device cuda;
# 2. the command line end to end on CUDA (train by PCD and by DSM, evaluate, sample, logz, ising);
# 3. benchmarks/scale.py's GPU rows (CPU -> GPU speed-up, fraction of peak FLOP/s);
# 4. Ising checkerboard-Gibbs spin updates per second on CUDA (benchmarks/discrete.py).
# Run from the repository root; ebmlab is imported from src/ (no install needed).
set -u
OUTDIR=${1:-${OUT:-gpu-results}}
mkdir -p "$OUTDIR"
export PYTHONPATH="$PWD/src:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
} 2>&1 | tee "$OUTDIR/gpu.txt"

echo "== tests on cuda"
timeout 300 $PY -m pytest -q -p no:cacheprovider -o addopts="" --device cuda \
  tests/test_devices.py tests/samplers/test_contract.py tests/energies/test_contract.py \
  2>&1 | tail -25 | tee "$OUTDIR/pytest_cuda.log"

echo "== command line on cuda"
R=$(mktemp -d)
{
  $PY -m ebmlab train --device cuda --steps 500 --out "$R/pcd" --quiet &&
  $PY -m ebmlab sample "$R/pcd" -n 2000 -o "$R/s.npy" --device cuda &&
  $PY -m ebmlab logz "$R/pcd" --json --device cuda &&
  $PY -m ebmlab train --device cuda --objective dsm --steps 500 --out "$R/dsm" --quiet &&
  cat "$R/pcd/report.json" "$R/dsm/report.json" &&
  $PY -m ebmlab ising --size 64 --temperature 2.0 --sweeps 2000 --method wolff --device cuda --json
} 2>&1 | tail -60 | tee "$OUTDIR/cli_cuda.log"

echo "== scale (GPU rows)"
timeout 300 $PY benchmarks/scale.py --skip fast grid train --json "$OUTDIR/scale_gpu.json" \
  2>&1 | tee "$OUTDIR/scale_gpu.log"

echo "== Ising throughput on cuda"
timeout 200 $PY benchmarks/discrete.py --section throughput --impl ebmlab --no-venv \
  --device cuda --rounds 3 --json "$OUTDIR/ising_gpu.json" 2>&1 | tee "$OUTDIR/ising_gpu.log"
