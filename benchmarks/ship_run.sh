#!/usr/bin/env bash
# Issue 26's run: the pre-registered recipe (benchmarks/results/README.md), alone, 2 threads.
#   PATH=.venv/bin:$PATH EPOCHS=45 bash benchmarks/ship_run.sh
# Trains on all 60,000 images and reads the test set once, after the last epoch
# (--test-every 0); then evaluates the final weights without and with the TTA chosen on
# validation earlier.  Resumable: run it again and it goes on from the newest checkpoint.
# The log (every part) goes to benchmarks/results/ship-seed0.log; copy config.json,
# metrics.jsonl and curves.png (no weights) to benchmarks/results/ship-seed0/ afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=2
run=${SCRATCH:-runs}/ship log=benchmarks/results/ship-seed0.log
amx=$(grep -o 'amx[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')
resume=()
[ -d "$run/checkpoints" ] && resume=(--resume)
echo "# $(date -u +%FT%TZ) $(lscpu | sed -n 's/^Model name: *//p') (${amx:-no AMX});" \
  "OMP_NUM_THREADS=2; commit $(git rev-parse --short HEAD)" | tee -a "$log"
start=$(date +%s)
python -m resnet_gluon train --recipe fast --epochs "${EPOCHS:?set EPOCHS}" --seed 0 \
  --test-every 0 --checkpoint-every 100 --out "$run" --no-progress "${resume[@]}" 2>&1 |
  tee -a "$log"
echo "# train wall time $(( $(date +%s) - start )) s" | tee -a "$log"
python -m resnet_gluon evaluate --params "$run/model.params" | tee -a "$log"
python -m resnet_gluon evaluate --params "$run/model.params" --tta --tta-shift 1 | tee -a "$log"
