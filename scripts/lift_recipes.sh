#!/usr/bin/env bash
# ML-RQ recipes and their ablations (issue 13), every run at the lifting table's budget,
# then `free3d eval lift` over all of them. Runs share one device (a GPU: they run side
# by side; on a CPU set JOBS=1).
#
#   DATA=prepared/bandai-namco PRIOR=runs/prior RUNS=runs/recipes bash scripts/lift_recipes.sh
#
# PRIOR: a `free3d train prior --preset cpu` run. Extra arguments go to every
# `free3d train mlrq` (e.g. --device cuda).
set -euo pipefail
: "${DATA:?set DATA to a prepared dataset folder}"
: "${PRIOR:?set PRIOR to a trained 2D prior run (cpu preset)}"
RUNS=${RUNS:-runs/recipes}
ITERS=${ITERS:-2000}
FINETUNE=${FINETUNE:-500}
JOBS=${JOBS:-7}
F3=${F3:-free3d}
mkdir -p "$RUNS"

# the default recipe, then its ablations (with the position trajectory of the paper's
# representation, as they were measured in docs/results.md) and the paper's recipe
P="--recipe free3d --representation limbs"
declare -A ROWS=(
  [free3d]="--recipe free3d"
  [free3d-position]="$P"
  [free3d-position-no-cycle]="$P --lambda-cycle 0"
  [free3d-position-no-upright]="$P --no-upright-views"
  [free3d-position-floor]="$P --lambda-floor 1"
  [paper]="--recipe paper"
  [paper-cycle]="--recipe paper --lambda-cycle 1"
)
# the settings of their time, as docs/results.md measured these rows: no gradient clipping,
# spike skipping or std floor, MoMask's dead-code threshold, 40-frame windows, uniform drawing
# and a cycle that moves the root
THEN="--grad-clip 0 --skip-spikes 0 --std-floor 0 --dead-code-threshold 1 --window-max 0 --batch-size 64 --balance 0 --no-cycle-fixed-root"
for name in "${!ROWS[@]}"; do
  while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n; done
  # shellcheck disable=SC2086
  $F3 train mlrq --data "$DATA" --prior "$PRIOR" --out "$RUNS/$name" --preset cpu \
      --iters "$ITERS" --finetune-iters "$FINETUNE" --quiet $THEN ${ROWS[$name]} "$@" \
      > "$RUNS/$name.log" 2>&1 &
done
wait
models=()
# the settings of their time, as docs/results.md measured these rows: no gradient clipping,
# spike skipping or std floor, MoMask's dead-code threshold, 40-frame windows, uniform drawing
# and a cycle that moves the root
THEN="--grad-clip 0 --skip-spikes 0 --std-floor 0 --dead-code-threshold 1 --window-max 0 --batch-size 64 --balance 0 --no-cycle-fixed-root"
for name in "${!ROWS[@]}"; do models+=(--model "$RUNS/$name"); done
$F3 eval lift --data "$DATA" "${models[@]}" --reference zero-depth --quiet \
    --json "$RUNS/lift_recipes.json" | tee "$RUNS/lift_recipes.md"
