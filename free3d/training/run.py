"""A training run's folder: config JSON, safetensors weights, optimizer state, CSV log.

Layout::

    config.json        the run's full config (and what it was trained from)
    model.safetensors  weights of the last checkpoint (buffers included)
    state.pt           optimizer state, step, RNG states: what resuming needs
    log.csv            one row per logged step

Every file is written to a temporary name and renamed, so a run killed mid-write keeps
its previous checkpoint and resumes from it.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from ..checkpoints import CONFIG, WEIGHTS, load_weights, read_config
from ..files import usual_mode

STATE = "state.pt"
LOG = "log.csv"


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        usual_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: dict) -> None:
    _atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2) + "\n"))


def save_weights(path: Path, model: nn.Module) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    _atomic(path, lambda tmp: save_file(tensors, tmp))


class RunDir:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def read_config(self) -> dict:
        return read_config(self.path)

    def has_checkpoint(self) -> bool:
        return (self.path / WEIGHTS).is_file() and (self.path / STATE).is_file()

    def save_checkpoint(self, model: nn.Module, optimizer: torch.optim.Optimizer, step: int,
                        extra: dict | None = None) -> None:
        save_weights(self.path / WEIGHTS, model)
        state = {"step": step, "optimizer": optimizer.state_dict(),
                 "torch_rng": torch.get_rng_state(), **(extra or {})}
        _atomic(self.path / STATE, lambda tmp: torch.save(state, tmp))

    def load_state(self) -> dict:
        """The last checkpoint's training state (optimizer, generators, step, extras)."""
        try:  # tensors and plain values only: loading a run folder never runs its code
            return torch.load(self.path / STATE, map_location="cpu", weights_only=True)
        except Exception as e:  # pickle, zip and torch raise many types for a broken file
            raise ValueError(f"{self.path / STATE}: cannot read the training state ({type(e).__name__}); "
                             "remove the run folder or choose another --out") from None

    def load_checkpoint(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
        load_weights(self.path / WEIGHTS, model)
        state = self.load_state()
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        return state

    def log(self, row: dict) -> None:
        p = self.path / LOG
        new = not p.exists()
        with open(p, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)

    def truncate_log(self, step: int) -> None:
        """Drop log rows after ``step`` (written after the checkpoint a resume starts from)."""
        p = self.path / LOG
        if not p.exists():
            return
        with open(p, newline="") as f:
            rows = list(csv.DictReader(f))
        kept = [r for r in rows if int(r["step"]) <= step]
        if len(kept) != len(rows):
            with open(p, "w", newline="") as f:
                if kept:
                    w = csv.DictWriter(f, fieldnames=list(kept[0]))
                    w.writeheader()
                    w.writerows(kept)


def check_numbers(config: dict) -> None:
    """One clear error, naming the option, for a step count, batch or rate out of range.

    Called before a run folder is touched, so a bad value leaves nothing on disk.
    """
    at_least_one = ("batch_size", "checkpoint_every", "log_every", "window", "offsets")
    at_least_zero = ("iters", "finetune_iters", "warmup_iters")
    positive = ("lr", "temperature")
    for name in at_least_one + at_least_zero:
        if name in config and (not isinstance(config[name], int) or isinstance(config[name], bool)
                               or config[name] < (1 if name in at_least_one else 0)):
            least = 1 if name in at_least_one else 0
            raise ValueError(f"--{name.replace('_', '-')} must be a whole number of at least {least} "
                             f"(got {config[name]!r})")
    for name in positive + ("finetune_lr",):
        if name in config and not (math.isfinite(config[name]) and
                                   (config[name] > 0 or name == "finetune_lr" and config[name] == 0)):
            raise ValueError(f"--{name.replace('_', '-')} must be a positive number (got {config[name]!r})")
    if config.get("iters", 1) + config.get("finetune_iters", 0) < 1:
        raise ValueError("--iters (with --finetune-iters) must add up to at least one step")


def check_run_folder(run: RunDir, config: dict, parse, keep: tuple[str, ...]) -> bool:
    """Whether ``run`` resumes; refuses a folder holding another run or something else.

    ``config`` is the new run's train config as a dict, ``parse`` turns a stored one into
    the same form (fields added since get their defaults), ``keep`` names the fields a
    resumed run may change (its length, its checkpoint and log cadence). A folder whose
    run never reached a checkpoint holds nothing to keep: it starts again (its old log
    is dropped), whatever its config was.
    """
    check_numbers(config)
    weights, state = (run.path / WEIGHTS).is_file(), (run.path / STATE).is_file()
    if (run.path / CONFIG).exists():
        if weights and not state:
            raise ValueError(f"{run.path} holds trained weights but no {STATE}, so it cannot "
                             "resume; choose another --out (--init-from this folder starts "
                             "a new run from its weights)")
        old = parse(run.read_config()["train"])
        differ = sorted(k for k in set(old) | set(config)
                        if k not in keep and old.get(k) != config.get(k))
        if differ and weights:
            said = ", ".join(f"{k} {old.get(k)!r} -> {config.get(k)!r}" for k in differ[:4])
            raise ValueError(f"{run.path} holds a run with a different config ({said}); "
                             "choose another --out to start a new run")
    elif run.path.exists() and any(run.path.iterdir()):
        raise FileExistsError(f"{run.path} exists and is not a free3d run; choose another --out")
    return weights and state


def start_fresh(run: RunDir) -> None:
    """Drop the log of an attempt that died before its first checkpoint (its steps are
    trained again), so each step is logged once."""
    (run.path / LOG).unlink(missing_ok=True)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resume_from(run: RunDir, model: nn.Module, optimizer: torch.optim.Optimizer,
                sampler: torch.Generator, device: torch.device | None = None, *,
                total: int) -> int:
    """Load the last checkpoint into model, optimizer and batch sampler; its step
    (refused when it is past ``total``, the steps the run is now asked for).

    The batch sampler is a CPU generator, so a run resumes on any device with the same
    batches; the CUDA generator (dropout, Gumbel noise) is restored when both the saved
    run and this one are on CUDA.
    """
    state = run.load_checkpoint(model, optimizer)
    if state["step"] > total:
        raise ValueError(f"{run.path} is already at step {state['step']}, past the {total} steps "
                         "asked for; give more --iters to train on, or another --out")
    sampler.set_state(state["sampler_rng"])
    if device is not None and device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    run.truncate_log(state["step"])
    return state["step"]
