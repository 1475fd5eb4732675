#!/usr/bin/env bash
# The book's recipe (seed 0) in bfloat16 and in float32, one after the other, alone on the
# machine at 2 threads; then bf16 and INT8 inference of the float32 run's weights against
# float32 on the 10,000 test images (accuracy lines only; the full reports go to stdout).
# Resumable: run it again and each run goes on from its checkpoint.
#   PATH=.venv/bin:$PATH bash benchmarks/bf16_recipe.sh [SCRATCH_DIR]      (default runs/amx)
# DTYPES=bfloat16 trains the bf16 run only.  Copies each run's config, metrics and curves (no
# weights) to benchmarks/results/book-recipe-DTYPE-2threads/.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=${1:-runs/amx}
export OMP_NUM_THREADS=2
results=benchmarks/results
for dtype in ${DTYPES:-bfloat16 float32}; do
  run=$scratch/book-recipe-$dtype
  resume=()
  [ -d "$run/checkpoints" ] && resume=(--resume)
  python -m resnet_gluon train --out "$run" --dtype "$dtype" --checkpoint-every 50 \
    --no-progress "${resume[@]}" | tee -a "$results/book-recipe-$dtype-2threads.log"
  mkdir -p "$results/book-recipe-$dtype-2threads"
  cp "$run"/{config.json,metrics.jsonl,curves.png} "$results/book-recipe-$dtype-2threads/"
done
weights=$scratch/book-recipe-float32/model.params
{ python -m resnet_gluon evaluate --params "$weights" --dtype bfloat16
  python -m resnet_gluon evaluate --params "$weights" --int8
} | tee /dev/stderr | grep -E "^(test|bfloat16 test|int8 test) acc" \
  > "$results/book-recipe-amx-evaluate.txt"
