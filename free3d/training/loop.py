"""The optimisation loop every training stage shares, on one device or under DDP.

A stage supplies a *step module* (an ``nn.Module`` whose forward takes a batch and
returns the loss and a dict of logged tensors) and a batch function; this loop sets
the learning rate, runs forward and backward (in bf16 autocast when asked), steps
the optimizer, and logs and checkpoints on schedule.

Nothing on the steps between logs waits for the device: logged values stay tensors
until a log step, and the check that the loss is finite is folded into a device flag
that is read only before a log or a checkpoint, so a diverged run raises before it can
overwrite its last good checkpoint. Under DDP (``free3d.distributed``) the step module
is wrapped in ``DistributedDataParallel``; rank 0 alone writes logs and checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
from torch import nn
from tqdm import tqdm

from .. import distributed
from ..distributed import Context
from .run import RunDir

PRECISIONS = ("fp32", "bf16")
SPIKE_WINDOW = 64  # steps whose median loss a spike is measured against


def autocast(device: torch.device, precision: str):
    """bf16 autocast for ``precision="bf16"``; fp32 (TF32 matmuls on CUDA) otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision {precision!r}: choose from {', '.join(PRECISIONS)}")
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def fit(*, run: RunDir, ctx: Context, model: nn.Module, step: nn.Module,
        optimizer: torch.optim.Optimizer, learning_rate: Callable[[int], float],
        next_batch: Callable[[], object], sampler: torch.Generator, start: int, total: int,
        log_every: int, checkpoint_every: int, precision: str = "fp32", desc: str = "train",
        progress: bool = True, grad_clip: float = 0.0, skip_spikes: float = 0.0) -> None:
    """Run steps ``start`` .. ``total`` - 1 of ``step`` (which holds ``model``).

    ``skip_spikes`` > 0 drops the gradient of a step whose loss is more than that many
    times the median of the last :data:`SPIKE_WINDOW` steps (logged as ``skipped``, the
    fraction of the steps since the last log). Adam still takes its step, from its
    momentum alone. The check stays on the device: it costs no wait.

    ``grad_clip`` > 0 scales each step's gradient down to that global norm when it is
    larger (the norm before clipping is logged as ``grad_norm``), so a runaway batch cannot
    swamp Adam's moment estimates. It does not bound the step itself (Adam's is about the
    learning rate either way), and it did not stop the divergences in docs/results.md.
    """
    device = ctx.device
    forward = step
    if ctx.world > 1:
        forward = nn.parallel.DistributedDataParallel(
            step, device_ids=[device.index] if device.type == "cuda" else None,
            # the codebooks' EMA buffers are updated from the global batch on every rank
            broadcast_buffers=False)
    not_finite = torch.zeros((), dtype=torch.bool, device=device)
    recent = torch.full((SPIKE_WINDOW,), float("nan"), device=device)  # a ring of past losses
    if skip_spikes > 0 and start > 0:  # a resumed run judges spikes as the unbroken one would
        saved = run.load_state().get("spike_history")
        if saved is not None:
            recent.copy_(saved)
    skipped = torch.zeros((), device=device)
    since_log = 0
    t0 = time.perf_counter()
    bar = tqdm(range(start, total), initial=start, total=total, desc=desc, unit="it",
               disable=not (progress and ctx.is_main))
    for i in bar:
        lr = learning_rate(i)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = next_batch()
        with autocast(device, precision):
            loss, logs = forward(batch)
        not_finite |= ~torch.isfinite(loss.detach())
        optimizer.zero_grad(set_to_none=True)
        if skip_spikes > 0:
            value = loss.detach().float()
            if ctx.world > 1:  # every process skips the same steps
                value = distributed.all_mean(value[None])[0]
            # the first steps have no history: nanmedian of all-NaN is NaN, and x > NaN is False
            spike = value > skip_spikes * recent.nanmedian()
            recent[i % SPIKE_WINDOW] = value
            skipped += spike.float()
            loss = torch.where(spike, loss * 0.0, loss)
        loss.backward()
        if grad_clip > 0:
            logs = {**logs, "grad_norm": nn.utils.clip_grad_norm_(model.parameters(), grad_clip)}
        optimizer.step()
        done, since_log = i + 1, since_log + 1
        log_now = done % log_every == 0 or done == total
        save_now = done % checkpoint_every == 0 or done == total
        if not (log_now or save_now):
            continue
        if bool(distributed.all_sum(not_finite.int())):
            kept = (f"the last checkpoint is kept in {run.path}" if run.has_checkpoint()
                    else "no checkpoint had been written yet")
            raise FloatingPointError(f"the loss stopped being finite before step {done}; {kept}")
        if log_now:
            if skip_spikes > 0:
                logs = {**logs, "skipped": skipped / since_log}
                skipped = torch.zeros((), device=device)
            since_log = 0
            names = list(logs)
            values = distributed.all_mean(torch.stack([logs[k].detach().float() for k in names]))
            if ctx.is_main:
                run.log({"step": done, "lr": lr, "seconds": round(time.perf_counter() - t0, 3),
                         **{k: round(v, 6) for k, v in zip(names, values.tolist())}})
            bar.set_postfix(loss=f"{values[names.index('loss')]:.4f}")
        if save_now:
            if ctx.is_main:
                extra = {"sampler_rng": sampler.get_state(), "spike_history": recent.cpu()}
                if device.type == "cuda":
                    extra["cuda_rng"] = torch.cuda.get_rng_state(device)
                run.save_checkpoint(model, optimizer, done, extra)
            distributed.barrier()
