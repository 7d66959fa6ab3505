"""Replay an ML-RQ run from its last checkpoint, step by step, and name the windows of each
loss spike.

    python scripts/replay_spikes.py RUN [--steps 300] [--lr 1e-4] [--skip-spikes 5] [--factor 4]

RUN is a `free3d train mlrq` folder with a checkpoint (state.pt). The replay draws the
same batches as the run would have from there (the batch sampler is restored), steps the
optimizer as ``free3d.training.loop.fit`` does (gradient clipping from the run's config),
and nothing is written back. For each step whose loss is over ``--factor`` times the
median of the previous 64, it prints the loss terms and the two windows of the batch
whose standardised input reaches furthest (|z|, in the model's own input units) with
their clip ids. ``--lr`` replaces the run's learning rate; ``--skip-spikes`` drops the
gradient of spiking steps as the training option of that name does. docs/results.md
(stop 21) traces the ML-RQ's spikes and divergences with it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from free3d.data.motion2d import Motion2DDataset
from free3d.training.lifting import (
    StageStep,
    learning_rate,
    load_frozen_prior,
    load_run,
    load_training_clips,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="an ML-RQ run folder with a checkpoint (state.pt)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=None, help="learning rate (default: the run's)")
    ap.add_argument("--skip-spikes", type=float, default=0.0)
    ap.add_argument("--factor", type=float, default=4.0, help="a spike: loss over this x the median")
    args = ap.parse_args()
    run = Path(args.run)
    if not (run / "state.pt").is_file():
        raise SystemExit(f"{run}: no checkpoint (state.pt) to replay from")
    model, cfg, skeleton = load_run(run)
    if cfg.stage != "mlrq":
        raise SystemExit(f"{run} is a {cfg.stage} run; this replays ML-RQ runs")
    if args.lr is not None:
        cfg.lr = args.lr
    arrays = load_training_clips(cfg, skeleton)
    clip_ids = [c.clip_id for c in Motion2DDataset(cfg.data, "train").clips]
    step = StageStep(cfg, model, skeleton, arrays, load_frozen_prior(cfg.prior, skeleton))
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                                 betas=(0.9, 0.99))
    state = torch.load(run / "state.pt", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    sampler = torch.Generator()
    sampler.set_state(state["sampler_rng"])
    torch.manual_seed(0)  # Gumbel noise and dropout: any fixed draw
    model.train()
    history: list[float] = []
    print(f"replaying {run} from step {state['step']} at lr {cfg.lr:g}")
    for i in range(state["step"], state["step"] + args.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, i)
        first, where = arrays.draw(cfg.batch_size, cfg.window, sampler)
        idx = torch.from_numpy(first)[:, None] + torch.arange(cfg.window)
        batch = {k: v[idx] for k, v in arrays.arrays.items()}
        loss, logs = step(batch)
        value = float(loss.detach())
        median = float(np.median(history[-64:])) if history else value
        history.append(value)
        spike = len(history) > 5 and value > args.factor * median
        if spike:
            with torch.no_grad():
                z = model.normalizer(model.features(batch["traj2"], batch["limbs2"])).abs().amax((1, 2))
            top = z.topk(2)
            terms = " ".join(f"{k}={float(v.detach()):.3g}" for k, v in logs.items() if k != "loss")
            windows = ", ".join(f"{clip_ids[where[j]]} (|z| {float(v):.1f})"
                                for v, j in zip(top.values, top.indices.tolist()))
            print(f"step {i + 1}: loss {value:.3g} (median {median:.3g}) {terms}; "
                  f"furthest windows: {windows}")
        optimizer.zero_grad(set_to_none=True)
        if args.skip_spikes and value > args.skip_spikes * median:
            loss = loss * 0.0
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        if (i + 1) % 25 == 0:
            print(f"step {i + 1}: loss {value:.3f}, median of the last 64 {np.median(history[-64:]):.3f}")


if __name__ == "__main__":
    main()
