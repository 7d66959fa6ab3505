#!/usr/bin/env bash
# Paper table 3 for generation: masked + residual transformers trained on the tokens of
# ML-RQ runs from scripts/lift_table.sh (default: Free3D and without Lrec), then scored
# together by `free3d eval ablations` (generation metrics + each ML-RQ's lifting error).
#   DATA=data/bandai-namco LIFT=runs/lift-cpu LENGTH=runs/bundle/length OUT=runs/ablate \
#     bash scripts/ablation_generators.sh [NAME ...]
# LENGTH is a trained length estimator (`free3d train length`); lengths are ground truth
# in evaluation, so any one will do. TABLE names the output (default table3). Re-running
# resumes unfinished runs and the table.
set -euo pipefail
DATA=${DATA:-data/bandai-namco}
LIFT=${LIFT:-runs/lift-cpu}
LENGTH=${LENGTH:-runs/bundle/length}
OUT=${OUT:-runs/ablate}
ITERS=${ITERS:-1500}
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(free3d no-rec)
declare -A label=([free3d]="Free3D" [no-rec]="w/o Lrec" [no-ori]="w/o Lori" [no-feat]="w/o Lfeat"
  [vae-prior]="VAE prior" [ae-prior]="AE prior" [unshared]="unshared Lfeat encoder"
  [joints]="joint coordinates")
mkdir -p "$OUT"
models=()
for name in "${names[@]}"; do
  start=$SECONDS
  # one thread each, side by side: faster on two cores than one after the other
  pids=()
  for stage in masked residual; do
    OMP_NUM_THREADS=1 free3d train $stage --data "$DATA" --mlrq "$LIFT/$name" \
      --out "$OUT/$stage-$name" --iters "$ITERS" --batch-size 32 --quiet &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done  # a failed stage stops the script
  echo "$name transformers: $((SECONDS - start)) s" >> "$OUT/wall.txt"
  free3d model assemble --mlrq "$LIFT/$name" --masked "$OUT/masked-$name" \
    --residual "$OUT/residual-$name" --length "$LENGTH" --out "$OUT/model-$name"
  # the lifting table's runs share its budget; any other run is named as it is
  if [ -n "${label[$name]:-}" ]; then row="${label[$name]} (table budget)"; else row=$name; fi
  models+=(--model "$row=$OUT/model-$name")
done
free3d eval ablations --data "$DATA" "${models[@]}" --repeats 10 --mm-texts 32 \
  --out "$OUT/${TABLE:-table3}" --quiet
