#!/usr/bin/env bash
# The lifting table of the ML-RQ issue: every row trained with the same budget on the
# same prepared dataset, then scored by `free3d eval lift` on the test split. Its ML-RQ
# rows are the paper's recipe and its ablations (`--recipe paper`); scripts/lift_recipes.sh
# has the rows of the default `free3d` recipe.
#   DATA=data/bandai-namco RUNS=runs/lift-cpu PRESET=cpu bash scripts/lift_table.sh
# Extra arguments go to every `free3d train` call (e.g. --iters 1500 --finetune-iters 500).
# Re-running resumes unfinished runs and skips finished ones.
set -euo pipefail
DATA=${DATA:-data/bandai-namco}
RUNS=${RUNS:-runs/lift-${PRESET:-cpu}}
PRESET=${PRESET:-cpu}
# MoMask's dead-code threshold, as the rows in docs/results.md were measured (the cpu
# preset's default is 0.15 since)
common=(--data "$DATA" --preset "$PRESET" --dead-code-threshold 1 --quiet "$@")
t() {  # t NAME STAGE ARGS...: train one run and record its wall time
  local name=$1; shift
  local start=$SECONDS
  free3d train "$@" "${common[@]}" --out "$RUNS/$name"
  echo "$name $((SECONDS - start))" >> "$RUNS/wall_seconds.txt"
}
mkdir -p "$RUNS"
# the paper recipe's priors: no std floor (the free3d recipe's 0.25 came later)
t prior-vq prior --std-floor 0
t free3d mlrq --recipe paper --prior "$RUNS/prior-vq"
t rvq3d-lift rvq3d --input-dim 2
t rvq3d-recon rvq3d --input-dim 3
t no-rec mlrq --recipe paper --prior "$RUNS/prior-vq" --no-rec
t no-ori mlrq --recipe paper --prior "$RUNS/prior-vq" --no-ori
t no-feat mlrq --recipe paper --prior "$RUNS/prior-vq" --no-feat
t unshared mlrq --recipe paper --prior "$RUNS/prior-vq" --feat-encoder separate
t joints mlrq --recipe paper --prior "$RUNS/prior-vq" --representation joints
t prior-vae prior --prior-kind vae --std-floor 0
t vae-prior mlrq --recipe paper --prior "$RUNS/prior-vae"
t prior-ae prior --prior-kind ae --std-floor 0
t ae-prior mlrq --recipe paper --prior "$RUNS/prior-ae"
t upright mlrq --recipe paper --prior "$RUNS/prior-vq" --upright-views
t knee-10 mlrq --recipe paper --prior "$RUNS/prior-vq" --lambda-knee 10  # Lknee, our addition
models=()
for r in rvq3d-lift rvq3d-recon free3d no-rec no-ori no-feat vae-prior ae-prior unshared joints \
  upright knee-10; do
  models+=(--model "$RUNS/$r")
done
free3d eval lift --data "$DATA" --reference zero-depth --reference mean-pose "${models[@]}" \
  --json "$RUNS/lift_table.json" --quiet | tee "$RUNS/lift_table.md"
# the 2D-input lifters again: averaged with their mirrored lift, and on the observed 2D
# (their own depth, and rigid depth from their signs)
lifters=()
for r in rvq3d-lift free3d no-rec no-ori no-feat vae-prior ae-prior unshared joints upright knee-10; do
  lifters+=(--model "$RUNS/$r")
done
free3d eval lift --data "$DATA" --reference rigid-random-signs "${lifters[@]}" --keep-2d \
  --rigid-depth --mirror-average --json "$RUNS/lift_table_observed_2d.json" --quiet \
  | tee "$RUNS/lift_table_observed_2d.md"
