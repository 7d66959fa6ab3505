#!/usr/bin/env bash
# The `paper` preset end to end on one GPU, from a packed dataset, in a time budget:
# speed probe -> 2D prior -> ML-RQ -> masked and residual transformers (side by side)
# -> length estimator -> assemble -> `eval lift` -> a short table 1 (one repeat).
#
#   bash scripts/train_gpu.sh PACK OUT [MINUTES]      # MINUTES: the whole budget, default 12
#
# PACK: made by `free3d data pack` (the Bandai-Namco set packs into 34 MB). Each stage
# gets a share of the minutes left after the probe, turned into steps with the speed
# the probe measured on this GPU (OUT/speed.json, OUT/budget.json say what was chosen).
# Stages resume if the script is re-run. PYTHON names the interpreter (default python3).
set -euo pipefail
PACK=${1:?usage: train_gpu.sh PACK OUT [MINUTES]}
OUT=${2:?usage: train_gpu.sh PACK OUT [MINUTES]}
MINUTES=${3:-12}
PY=${PYTHON:-python3}
PRESET=${PRESET:-paper}  # cpu: the same pipeline at the small sizes (a quick check of the script)
DEVICE=${DEVICE:-cuda}
BATCH=${BATCH:-256}  # windows (of 64 frames) or clips per step, every stage
F3D="$PY -m free3d"
START=$(date +%s)
DATA=$OUT/data
mkdir -p "$OUT"
[ -f "$DATA/meta.json" ] || $F3D data unpack "$PACK" "$DATA" --quiet

# 1. how fast is each stage here (fp32 = TF32 matmuls; bf16 autocast for the transformers)
[ -f "$OUT/speed.json" ] || $PY benchmarks/train_speed.py --data "$DATA" --preset "$PRESET" --device "$DEVICE" \
    --stages prior,mlrq,masked,residual,length --precision fp32,bf16 --steps 40 --warmup 20 \
    --batch-size "$BATCH" --gen-batch-size "$BATCH" \
    --json "$OUT/speed.json" --work "$OUT/speed"

# 2. the budget: shares of the minutes left (after a reserve for start-up, tokenising and
#    evaluation), at the measured speeds; the faster precision for the transformers
$PY - "$OUT/speed.json" "$MINUTES" "$(( $(date +%s) - START ))" "$OUT/budget.json" \
    > "$OUT/budget.env" <<'EOF'
import json, sys
speed = json.load(open(sys.argv[1]))["rows"]
minutes, spent = float(sys.argv[2]), float(sys.argv[3])
left = minutes * 60 - spent - 240  # reserve: five start-ups, tokenising three times, both evals
if left < 60:
    sys.exit(f"train_gpu.sh: {minutes} minutes leave {left:.0f} s to train; give more")
rate = {(r["stage"], r["precision"]): r["steps_per_s"] for r in speed}
best = lambda s: max(("fp32", "bf16"), key=lambda p: rate.get((s, p), 0))
# the two transformers share the GPU: each runs at about half its own speed
share = {"prior": 0.15, "mlrq": 0.50, "masked": 0.30, "residual": 0.30, "length": 0.05}
slow = {"masked": 0.5, "residual": 0.5}
out = {}
for stage, frac in share.items():
    precision = "fp32" if stage in ("prior", "mlrq") else best(stage)
    steps = int(left * frac * rate[(stage, precision)] * slow.get(stage, 1.0)) // 100 * 100
    out[stage] = (max(steps, 200), precision)
for stage, (steps, precision) in out.items():
    print(f"{stage.upper()}_STEPS={steps}")
    print(f"{stage.upper()}_PRECISION={precision}")
json.dump({"seconds_to_train": left, "stages": out}, open(sys.argv[4], "w"), indent=1)
EOF
# shellcheck disable=SC1091
. "$OUT/budget.env"
echo "budget: prior $PRIOR_STEPS, mlrq $MLRQ_STEPS, masked $MASKED_STEPS ($MASKED_PRECISION)," \
     "residual $RESIDUAL_STEPS ($RESIDUAL_PRECISION), length $LENGTH_STEPS steps"

common=(--data "$DATA" --preset "$PRESET" --device "$DEVICE" --quiet --batch-size "$BATCH")
# 3. Free3D, 2D only: the prior, then the ML-RQ (default free3d recipe; a fifth fine-tunes)
$F3D train prior "${common[@]}" --out "$OUT/prior" --iters "$PRIOR_STEPS" --finetune-iters 0 \
    --warmup-iters $(( PRIOR_STEPS / 10 ))
# windows of the preset's one length: the step budget above was measured at it (the
# free3d recipe's 1 to 3x longer windows cost twice the frames a step; not yet timed on a GPU)
$F3D train mlrq "${common[@]}" --out "$OUT/mlrq" --prior "$OUT/prior" \
    --iters $(( MLRQ_STEPS * 4 / 5 )) --finetune-iters $(( MLRQ_STEPS / 5 )) \
    --warmup-iters $(( MLRQ_STEPS / 20 )) --window-max 0
# 4. the transformers on its tokens, side by side on the one GPU
gen=(--data "$DATA" --mlrq "$OUT/mlrq" --preset "$PRESET" --device "$DEVICE" --quiet --batch-size "$BATCH")
$F3D train masked "${gen[@]}" --out "$OUT/masked" --iters "$MASKED_STEPS" \
    --precision "$MASKED_PRECISION" --warmup-iters $(( MASKED_STEPS / 10 )) & masked=$!
$F3D train residual "${gen[@]}" --out "$OUT/residual" --iters "$RESIDUAL_STEPS" \
    --precision "$RESIDUAL_PRECISION" --warmup-iters $(( RESIDUAL_STEPS / 10 )) & residual=$!
wait "$masked"; wait "$residual"  # a failed stage stops the script
$F3D train length "${gen[@]}" --out "$OUT/length" --iters "$LENGTH_STEPS" \
    --warmup-iters $(( LENGTH_STEPS / 10 ))
$F3D model assemble --mlrq "$OUT/mlrq" --masked "$OUT/masked" --residual "$OUT/residual" \
    --length "$OUT/length" --out "$OUT/model"
echo "trained in $(( $(date +%s) - START )) s"

# 5. the lifter's own 3D, then table 1 with one repeat (the full protocol uses 5 or 20)
$F3D eval lift --data "$DATA" --model "$OUT/mlrq" --reference zero-depth --json "$OUT/lift.json" \
    --device "$DEVICE" --quiet | tee "$OUT/lift.txt"
$F3D eval generation --data "$DATA" --model "Free3D ($PRESET preset, $DEVICE)=$OUT/model" \
    --reconstruction "ML-RQ reconstruction=$OUT/model" --repeats 1 --out "$OUT/table1" \
    --device "$DEVICE" --quiet
cat "$OUT/table1.md"
echo "train_gpu.sh finished in $(( $(date +%s) - START )) s"
