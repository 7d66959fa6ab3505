
# evaluation (issue 5): the evaluator (the one model trained on 3D, like the 3D baseline)
free3d train evaluator --data "$DATA" --out "$RUNS/evaluator"
# the 3D-supervised generation baseline: MoMask's RVQ-VAE on 3D with the ML-RQ's budget,
# then the same transformer recipe and budget as Free3D's (not bundled; for table 1)
free3d train rvq3d --data "$DATA" --out "$RUNS/rvq3d" --preset cpu --input-dim 3 --iters 5000 --finetune-iters 1000
OMP_NUM_THREADS=1 free3d train masked --data "$DATA" --mlrq "$RUNS/rvq3d" --out "$RUNS/masked3d" \
    --iters 3000 --batch-size 32 --quiet &
OMP_NUM_THREADS=1 free3d train residual --data "$DATA" --mlrq "$RUNS/rvq3d" --out "$RUNS/residual3d" \
    --iters 3000 --batch-size 32 --quiet &
wait
# lengths depend on the text only: the 2D-trained length estimator serves both
free3d model assemble --mlrq "$RUNS/rvq3d" --masked "$RUNS/masked3d" --residual "$RUNS/residual3d" \
    --length "$RUNS/length" --out "$RUNS/model3d"
free3d eval generation --data "$DATA" --evaluator "$RUNS/evaluator" \
    --model "3D-supervised=$RUNS/model3d" --model "Free3D (2D only)=$OUT" --out "$RUNS/table1"
