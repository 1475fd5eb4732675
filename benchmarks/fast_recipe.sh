#!/usr/bin/env bash
# Time to accuracy with --recipe fast, alone on the machine at 2 threads.
#   PATH=.venv/bin:$PATH bash benchmarks/fast_recipe.sh val       # choose: 5,000 held out, seed 0
#   PATH=.venv/bin:$PATH TTA="--tta --tta-shift 1" bash benchmarks/fast_recipe.sh 0 1 2   # per seed
# "val" trains on 55,000 images and then evaluates the held-out 5,000 without and with each
# test-time augmentation (the choice of TTA is made there, never on the test set).  A seed
# trains on all 60,000, then evaluates the test set once with $TTA; the wall time of both
# is the figure.  Resumable: run it again and a run goes on from its checkpoint (the wall
# time then covers the last part only; the log keeps every part).  Copies each run's
# config, metrics and curves (no weights) to benchmarks/results/fast-{val-seed0,seedN}/.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=2
scratch=${SCRATCH:-runs/fast}
results=benchmarks/results
cpu=$(lscpu | sed -n 's/^Model name: *//p')
amx=$(grep -o 'amx[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')
for what in "$@"; do
  if [ "$what" = val ]; then
    name=fast-val-seed0; opts=(--val-split 5000 --seed 0)
  else
    name=fast-seed$what; opts=(--seed "$what")
  fi
  run=$scratch/$name log=$results/$name.log
  resume=()
  [ -d "$run/checkpoints" ] && resume=(--resume)
  echo "# $(date -u +%FT%TZ) $cpu (${amx:-no AMX}); OMP_NUM_THREADS=2" | tee -a "$log"
  start=$(date +%s)
  python -m resnet_gluon train --recipe fast "${opts[@]}" --out "$run" --checkpoint-every 100 \
    --no-progress "${resume[@]}" 2>&1 | tee -a "$log"
  if [ "$what" = val ]; then
    for tta in "" "--tta" "--tta-shift 1" "--tta --tta-shift 1" "--tta --tta-shift 2"; do
      # shellcheck disable=SC2086
      python -m resnet_gluon evaluate --params "$run/model.params" --val-split 5000 --seed 0 \
        $tta | grep "^val acc" | tee -a "$log"
    done
  else
    # shellcheck disable=SC2086
    python -m resnet_gluon evaluate --params "$run/model.params" ${TTA:-} | tee -a "$log"
  fi
  echo "# wall time $(( $(date +%s) - start )) s (training and evaluation)" | tee -a "$log"
  mkdir -p "$results/$name"
  cp "$run"/{config.json,metrics.jsonl,curves.png} "$results/$name/"
done
