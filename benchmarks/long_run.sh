#!/usr/bin/env bash
# Issue 37's run, pre-registered in benchmarks/results/README.md ("90 epochs in several parts"):
# --recipe fast, seed 0, all 60,000 images, 90 epochs, --test-every 0, --checkpoint-every 100,
# alone on the machine, 2 threads.
#   PATH=.venv/bin:$PATH bash benchmarks/long_run.sh
# Resumable across sessions: run it again and it goes on from the run's newest checkpoint
# (train --resume); stop it with Ctrl-C or kill, losing at most the 100 steps since that
# checkpoint.  The run directory is $SCRATCH/ship90-seed0 ($HOME/runs by default): outside the
# checkout, which each session gets afresh.  Each part appends to
# benchmarks/results/ship90-seed0.log its date, CPU, commit and the checkpoint it starts from,
# then train's output; after the last epoch it evaluates the final weights without and with
# the test-time augmentation chosen on validation earlier.  Copy config.json, metrics.jsonl
# and curves.png (no weights) to benchmarks/results/ship90-seed0/ at each stop.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=2
run=${SCRATCH:-$HOME/runs}/ship90-seed0 log=benchmarks/results/ship90-seed0.log
# grep finds nothing on a CPU with neither (an AVX2-only EPYC): not an error.
isa=$({ grep -o 'amx[a-z_0-9]*\|avx512_bf16' /proc/cpuinfo || true; } | sort -u | tr '\n' ' ')
# The recipe is bfloat16: a CPU without AVX-512 cannot run it (no oneDNN kernel), so no part
# starts there (the log would only gain a refusal).
if ! bf16=$(python -c 'import sys; from resnet_gluon.precision import bfloat16_case
case, words = bfloat16_case(); print(words); sys.exit(case == "unsupported")'); then
  echo "long_run.sh: this CPU cannot run the pre-registered bfloat16 recipe ($bf16); run it" \
    "on a CPU with AVX-512 (an AMX Xeon, an AVX512-BF16 EPYC)." >&2
  exit 1
fi
resume=() from="the beginning"
if [ -d "$run/checkpoints" ]; then
  resume=(--resume)
  from=$(ls -d "$run"/checkpoints/ckpt-* 2>/dev/null | tail -1)
fi
echo "# $(date -u +%FT%TZ) $(lscpu | sed -n 's/^Model name: *//p') (${isa:-no AMX, no AVX512-BF16});" \
  "OMP_NUM_THREADS=2; commit $(git rev-parse --short HEAD); from ${from}" | tee -a "$log"
start=$(date +%s)
python -m resnet_gluon train --recipe fast --epochs 90 --seed 0 --test-every 0 \
  --checkpoint-every 100 --out "$run" --no-progress "${resume[@]}" 2>&1 | tee -a "$log"
echo "# train wall time of this part $(( $(date +%s) - start )) s" | tee -a "$log"
python -m resnet_gluon evaluate --params "$run/model.params" | tee -a "$log"
python -m resnet_gluon evaluate --params "$run/model.params" --tta --tta-shift 1 | tee -a "$log"
