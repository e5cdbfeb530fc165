#!/bin/bash
# Kills a `seqzoo train` run with SIGKILL in the middle of an epoch, resumes it,
# and prints its dev metrics per epoch beside an uninterrupted run's.
# Usage (from the repository root): bash benchmarks/resume_check.sh [OUT_DIR]
set -euo pipefail
OUT=${1:-runs/resume-check}
SEQZOO=${SEQZOO:-seqzoo}
export TF_CPP_MIN_LOG_LEVEL=3
ARGS=(--model seq2seq_luong --train data/letters_source.txt data/letters_target.txt
      --dev data/letters_dev_source.txt data/letters_dev_target.txt --epochs 4
      --schedule warmup --set warmup_steps=200 --learning-rate 0.003 --checkpoint-every 100
      --quiet --overwrite)
rm -rf "$OUT/killed"
"$SEQZOO" train "${ARGS[@]}" --out "$OUT/full"
"$SEQZOO" train "${ARGS[@]}" --out "$OUT/killed" &
PID=$!
# Step 400 is batch 86 of epoch 3 (157 batches an epoch).
until [ -e "$OUT/killed/checkpoints/ckpt-00000400.npz" ]; do sleep 0.05; done
sleep 1
kill -9 "$PID"
wait "$PID" || true
echo "killed with SIGKILL; checkpoints left: $(ls "$OUT/killed/checkpoints" | tr '\n' ' ')"
"$SEQZOO" train --resume "$OUT/killed" --quiet
python3 - "$OUT" <<'PY'
import json, sys
full, killed = (json.load(open(f"{sys.argv[1]}/{name}/run.json")) for name in ("full", "killed"))
print(f"steps: uninterrupted {full['steps']}, killed and resumed {killed['steps']}")
for a, b in zip(full["history"], killed["history"]):
    print(f"epoch {a['epoch']} step {a['step']}/{b['step']}: dev_loss {a['dev_loss']:.6f} / "
          f"{b['dev_loss']:.6f}, dev exact match {a['dev_exact_match']:.3f} / "
          f"{b['dev_exact_match']:.3f}")
PY
