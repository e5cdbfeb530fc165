#!/usr/bin/env bash
# Makes the side environment of suite `onmt`: OpenNMT-py 3.5.1 beside the CPU
# build of torch, in .onmt-venv/ at the repository's root (or in $1).
# OpenNMT-py declares torch < 2.3, which pip would satisfy with CUDA wheels of
# several GB; it is installed with --no-deps, its other dependencies by name.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.onmt-venv}"
python3 -m venv "$venv"
"$venv/bin/pip" install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
  || "$venv/bin/pip" install -q torch==2.13.0
"$venv/bin/pip" install -q configargparse pyyaml sacrebleu six numpy "pyonmttok>=1.37,<2" \
  "ctranslate2>=4,<5" rapidfuzz pyahocorasick fasttext-wheel spacy
"$venv/bin/pip" install -q --no-deps OpenNMT-py==3.5.1
"$venv/bin/python" -c "import onmt, torch; print('OpenNMT-py', onmt.__version__, 'torch', torch.__version__)"
