"""Data-parallel training across processes (PyTorch DDP, launched by ``torchrun``).

``torchrun --nproc-per-node N -m free3d train ...`` starts N copies of the command with
RANK / WORLD_SIZE / LOCAL_RANK set; :func:`setup` joins them into one process group
(NCCL on GPUs, gloo on CPUs). Every rank draws the same *global* batch from the same
seeded sampler and keeps its own contiguous slice of rows, so ranks see different
windows and together exactly the batch a single process would see.

Randomness drawn per row inside a step (new views, Gumbel noise, token masks) goes
through :func:`rand_rows`: each rank draws the whole batch's numbers and keeps its
rows, so an N-process run follows the single-process run of the same global batch
(tests/test_distributed.py checks it to float tolerance). Dropout masks are the one
exception: they are drawn per rank (same distribution, other numbers).

Outside torchrun nothing here does anything: world size 1, rank 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from .device import resolve_device


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def rows(self, global_batch: int) -> slice:
        """This rank's rows of a global batch."""
        per = global_batch // self.world
        return slice(self.rank * per, (self.rank + 1) * per)


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: str | torch.device = "auto") -> Context:
    """The process group of this run (joined once), or a single-process context.

    Under torchrun each rank uses GPU ``LOCAL_RANK`` when the device is CUDA (``auto``
    with GPUs present, ``cuda``); the CPU with gloo otherwise.
    """
    if not launched_by_torchrun():
        return Context(0, 1, resolve_device(device))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        if dev.type == "cuda":
            dist.init_process_group("nccl", device_id=dev)
        else:
            dist.init_process_group("gloo")
    return Context(dist.get_rank(), dist.get_world_size(), dev)


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def barrier() -> None:
    if active():
        dist.barrier()


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rand_rows(n: int, *shape: int, generator: torch.Generator | None = None,
              dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Tensor:
    """``torch.rand(n, *shape)`` for this rank's n rows of the global batch.

    Under DDP each rank draws all world x n rows and keeps its own, so the numbers a
    row gets do not depend on how many processes share the batch.
    """
    if not active():
        return torch.rand(n, *shape, generator=generator, dtype=dtype, device=device)
    world, rank = dist.get_world_size(), dist.get_rank()
    u = torch.rand(world * n, *shape, generator=generator, dtype=dtype, device=device)
    return u[rank * n:(rank + 1) * n]


def gather_rows(x: Tensor) -> Tensor:
    """The rows of ``x`` from every rank, in rank order (no gradient): the global batch."""
    if not active():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def all_sum(x: Tensor) -> Tensor:
    """The sum of ``x`` over ranks (a new tensor; gradient-free)."""
    if not active():
        return x
    x = x.detach().clone()
    dist.all_reduce(x)
    return x


def all_mean(x: Tensor) -> Tensor:
    return all_sum(x) / world_size()
