#!/usr/bin/env bash
# Runs benchmark suites on a machine with a CUDA GPU and JAX or PyTorch but no
# TensorFlow (internet access not needed), from the repository root there:
#
#   bash benchmarks/gpu.sh BACKEND [SUITE ...] [python -m benchmarks options]
#
# BACKEND is jax or torch. It installs the wheels in .whl/ (fetched beforehand,
# on a machine with internet access, by `bash benchmarks/fetch_wheels.sh
# editdistance`: Keras, namex, optree and editdistance for Python 3.12) into
# /tmp/site, then runs the suites with results in $OUT/gpu-BACKEND
# (benchmarks/results/gpu-BACKEND without $OUT). Records of suites run in an
# earlier call are carried over from benchmarks/results/gpu-BACKEND, so suites
# can be run in separate calls and still land in one results.json.
# docs/gpu.md describes the whole procedure.
set -euo pipefail
python=${PYTHON:-python3}
cd "$(dirname "$0")/.."
source benchmarks/gpu_env.sh
gpu_env gpu.sh "${1:-}" editdistance || {
  echo "usage: bash benchmarks/gpu.sh jax|torch [SUITE ...] [options]" >&2; exit 2; }
backend=$1
shift
out=${OUT:-benchmarks/results}/gpu-$backend
mkdir -p "$out"
earlier=benchmarks/results/gpu-$backend/results.json
if [ -f "$earlier" ] && [ ! -f "$out/results.json" ]; then
  cp "$earlier" "$out/results.json"
fi
exec "$python" -m benchmarks --backend "$backend" --out "$out" "$@"
