"""Where free3d computes: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.

Weights on disk are always device-free (safetensors of CPU tensors), so a model
trained on a GPU loads on a CPU and the other way round; this module only chooses
where tensors live while a command runs. Training and inference both use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported on use: the CLI reads DEVICE_HELP before it needs torch
    import torch

DEVICE_HELP = "where to compute: auto (CUDA when present), cpu, cuda or cuda:N"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: CUDA when present, else the CPU; otherwise the named device, checked."""
    import torch

    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"--device {device!r}: not a device (auto, cpu, cuda or cuda:N)") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {device}: free3d runs on cpu or cuda")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s)")
    return dev


def enable_fast_math(device: torch.device, *, fixed_shapes: bool = False) -> None:
    """Training arithmetic: subnormals flushed to zero on the CPU; TF32 matmuls and
    convolutions on CUDA (Ampere and later): ~fp32 accuracy, much faster.

    ``fixed_shapes``: also let cuDNN time its convolution algorithms once per shape,
    which pays when every step has the same shapes (fixed training windows) and costs
    much when they vary (tokenising clips of many lengths).
    """
    import torch

    if device.type == "cpu":
        # subnormal floats (|x| < 1.2e-38) appear in training and take x86 CPUs a slow
        # microcode path: flushing them to zero made a cpu-preset prior step 4 to 10x
        # faster on this project's development machine, and changes nothing above 1e-38
        torch.set_flush_denormal(True)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = fixed_shapes


def model_device(model: torch.nn.Module) -> torch.device:
    """Where ``model``'s weights live (its inputs go there); the CPU for a model without any."""
    import torch

    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return torch.device("cpu") if tensor is None else tensor.device


@contextmanager
def tf32_scope(device: torch.device, *, enabled: bool) -> Iterator[None]:
    """TF32 matmuls and convolutions on (``enabled``) or off (IEEE fp32) for a block on CUDA.

    The flags are process-wide: setting them for the block and restoring them after
    keeps an fp32 model (or an evaluation) exact even when a training run's
    :func:`enable_fast_math` or another model turned TF32 on. Nothing happens on the CPU.
    """
    import torch

    if device.type != "cuda":
        yield
        return
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = matmul.allow_tf32, cudnn.allow_tf32
    matmul.allow_tf32 = cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = saved


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small host tensor (indices, masks) onto ``device``; on a GPU through pinned memory,
    so the copy does not make the host wait for the work already queued."""
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)
