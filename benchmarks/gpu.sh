#!/usr/bin/env bash
# Runs benchmark suites on a borrowed GPU machine (JAX and PyTorch with CUDA, no
# TensorFlow, no internet), from the repository root there:
#
#   bash benchmarks/gpu.sh BACKEND [SUITE ...] [python -m benchmarks options]
#
# BACKEND is jax or torch. It installs the wheels carried in .whl/ (made here by
# `../shared/device/fetch-wheels.sh editdistance`: Keras, namex, optree and
# editdistance for Python 3.12) into /tmp/site, then runs the suites with results
# in $OUT/gpu-BACKEND (benchmarks/results/gpu-BACKEND without $OUT). Records of
# suites run in an earlier call are carried over from benchmarks/results/gpu-BACKEND,
# so suites can be run in separate calls and still land in one results.json.
set -euo pipefail
usage="usage: bash benchmarks/gpu.sh jax|torch [SUITE ...] [options]"
backend=${1:-}
case "$backend" in
  jax|torch) shift ;;
  *) echo "gpu.sh: expected the backend jax or torch first. Received: '$backend'. $usage" >&2; exit 2 ;;
esac
python=${PYTHON:-python3}
cd "$(dirname "$0")/.."
shopt -s nullglob
wheels=(.whl/*.whl)
if [ ${#wheels[@]} -eq 0 ]; then
  echo "gpu.sh: no wheels in .whl/; run ../shared/device/fetch-wheels.sh editdistance" \
       "in the repository root and carry .whl in the run call" >&2
  exit 2
fi
"$python" -m pip install -q --no-index --no-deps --upgrade --target /tmp/site "${wheels[@]}"
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH} KERAS_BACKEND=$backend
out=${OUT:-benchmarks/results}/gpu-$backend
mkdir -p "$out"
earlier=benchmarks/results/gpu-$backend/results.json
if [ -f "$earlier" ] && [ ! -f "$out/results.json" ]; then
  cp "$earlier" "$out/results.json"
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
  --format=csv,noheader || true
exec "$python" -m benchmarks --backend "$backend" --out "$out" "$@"
