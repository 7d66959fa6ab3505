"""Training speed of every stage, in steps per second, on any device.

Each stage runs through the real training entry points (``train`` / ``train_generator``)
into a temporary folder: ``--warmup`` steps, then ``--steps`` timed ones. The timing
comes from the run's own log.csv (seconds since the loop started, written on log steps,
where the loop waits for the device), so start-up, data loading and tokenising are
not counted and nothing is timed that a real run would not do.

    python benchmarks/train_speed.py --data DIR --preset paper --device cuda \\
        --precision fp32,bf16 --json speed.json

Upstream runs come from the benchmark itself: the ML-RQ reads the prior it timed, the
transformers tokenise with the ML-RQ it timed (weights a few steps from random: speed
does not depend on them). Defaults: batch 256 x 64 frames for the autoencoders and 256
for the transformers (the issue's targets), ``paper`` preset.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from free3d.device import resolve_device
from free3d.training.generation import make_generator_config, train_generator
from free3d.training.lifting import make_config, train

LIFTING = ("prior", "mlrq", "rvq3d")
GENERATOR = ("masked", "residual", "length")


def steps_per_second(run: Path, warmup: int) -> float:
    with open(run / "log.csv", newline="") as f:
        rows = {int(r["step"]): float(r["seconds"]) for r in csv.DictReader(f)}
    last = max(rows)
    return (last - warmup) / (rows[last] - rows[warmup])


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def measure(data: str, work: Path, *, stages: list[str], precisions: list[str], preset: str,
            device: str, steps: int, warmup: int, batch_size: int, window: int,
            gen_batch_size: int, recipe: str = "free3d") -> list[dict]:
    """One row per (stage, precision): steps/s, ms/step, batch."""
    total = warmup + steps
    rows = []
    upstream = {}  # stage -> a run folder of it, for the stages that read one
    needs = {"mlrq": "prior", "masked": "mlrq", "residual": "mlrq", "length": "mlrq"}
    needed = set(stages)
    for s in stages:
        while s in needs:
            s = needs[s]
            needed.add(s)
    for stage in [s for s in LIFTING + GENERATOR if s in needed]:
        timed = stage in stages
        for precision in precisions if timed else precisions[:1]:
            out = work / f"{stage}-{precision}"
            common = dict(iters=total if timed else 2, log_every=warmup if timed else 1,
                          checkpoint_every=10**9, precision=precision)
            t0 = time.perf_counter()
            if stage in LIFTING:
                # every window ``window`` frames: the stated batch, whatever the recipe's range
                cfg = make_config(stage, data, preset=preset, recipe=recipe, batch_size=batch_size,
                                  window=window, window_max=0, finetune_iters=0, warmup_iters=10,
                                  prior=upstream.get("prior") if stage == "mlrq" else None, **common)
                train(cfg, out, progress=False, device=device)
            else:
                # one frame offset: tokenising is start-up, not timed, and this keeps it short
                cfg = make_generator_config(stage, data, upstream["mlrq"], preset=preset, offsets=1,
                                            batch_size=gen_batch_size, warmup_iters=10, **common)
                train_generator(cfg, out, progress=False, device=device)
            upstream.setdefault(stage, str(out))
            if not timed:
                continue
            rate = steps_per_second(out, warmup)
            row = {"stage": stage, "precision": precision, "steps_per_s": round(rate, 2),
                   "ms_per_step": round(1000 / rate, 2), "wall_s": round(time.perf_counter() - t0, 1),
                   "batch": gen_batch_size if stage in GENERATOR else f"{batch_size}x{window}"}
            if stage == "mlrq":
                row["recipe"] = recipe
            rows.append(row)
            print(f"{stage:9} {precision:5} {row['batch']!s:>8}  {rate:8.2f} steps/s  "
                  f"{1000 / rate:8.2f} ms/step  (stage wall {row['wall_s']} s)", flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="prepared dataset folder")
    p.add_argument("--preset", choices=("cpu", "paper"), default="paper")
    p.add_argument("--device", default="auto")
    p.add_argument("--stages", default=",".join(LIFTING + GENERATOR))
    p.add_argument("--precision", default="fp32", help="comma-separated: fp32, bf16")
    p.add_argument("--recipe", default="free3d", help="the ML-RQ recipe timed")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=256, help="autoencoder windows per step")
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--gen-batch-size", type=int, default=256, help="transformer clips per step")
    p.add_argument("--json", help="also write the rows here")
    p.add_argument("--work", help="folder for the runs (default: a temporary one)")
    args = p.parse_args()
    if args.steps % args.warmup:
        p.error("--steps must be a multiple of --warmup (timing is read on log steps)")
    device = resolve_device(args.device)
    print(f"device: {device_name(device)}; torch {torch.__version__}; preset {args.preset}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        rows = measure(args.data, work, stages=args.stages.split(","),
                       precisions=args.precision.split(","), preset=args.preset, device=args.device,
                       steps=args.steps, warmup=args.warmup, batch_size=args.batch_size,
                       window=args.window, gen_batch_size=args.gen_batch_size, recipe=args.recipe)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": device_name(device), "torch": torch.__version__,
                                               "preset": args.preset, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
