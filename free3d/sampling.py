"""Token sampling (MoMask, DESIGN.md section 3): masked transformer for layer 0, then the
residual transformer for layers 1..L-1.

Speed (issue 4): every prompt and both classifier-free-guidance branches go through
one batched forward pass per iteration; the text prefix tokens and padding masks are
built once per call. Each sample draws its noise from its own generator, so a sample
depends on its seed, not on what else is in the batch (up to the float rounding of
batched kernels, which can flip a near-tie, more often in bfloat16).

Devices: the tokens are sampled on the transformer's device. The generators stay on
the CPU and their draws are moved there, so a seed gives the same noise on a CPU and
on a GPU (the samples then differ only by the float rounding of the two devices).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields

import torch
from torch import Tensor

from .device import model_device
from .models.masked_transformer import MaskedTransformer
from .models.residual_transformer import ResidualTransformer

# The accepted range of each sampling setting: (low, high, whole number, high included).
# Wide enough for any sensible use; beyond it a sample is noise or one repeated token.
SAMPLING_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "iterations": (1, 1000, True, True),
    "guidance": (0.0, 100.0, False, True),  # 0: unconditional, 1: conditional only
    "residual_guidance": (0.0, 100.0, False, True),
    "top_k": (0.0, 1.0, False, False),  # the fraction of logits filtered out
    "temperature": (1e-3, 100.0, False, True),  # smaller ones divide the logits into inf
    "residual_temperature": (1e-3, 100.0, False, True),
}


def check_sampling_value(name: str, value: object, label: str | None = None) -> int | float:
    """``value`` of the sampling setting ``name`` as an int or float, or a ValueError naming
    ``label`` (the option as the caller spelled it; default the field name)."""
    low, high, whole, closed = SAMPLING_RANGES[name]
    kind = "a whole number" if whole else "a finite number"
    ok_type = isinstance(value, numbers.Integral if whole else numbers.Real) and not isinstance(value, bool)
    # (an int is always finite; math.isfinite would overflow on a huge one)
    finite = ok_type and (isinstance(value, numbers.Integral) or math.isfinite(value))
    if not (finite and low <= value and (value <= high if closed else value < high)):
        upto = f"to {high:g}" if closed else f"up to (not including) {high:g}"
        raise ValueError(f"{label or name} must be {kind} from {low:g} {upto}, got {value!r}")
    return int(value) if whole else float(value)


@dataclass
class SamplingConfig:
    iterations: int = 10
    guidance: float = 4.0  # classifier-free guidance of the masked transformer
    residual_guidance: float = 5.0
    top_k: float = 0.9  # MoMask's filter threshold: keep the top 10% of logits
    temperature: float = 1.0
    residual_temperature: float = 1.0

    def __post_init__(self) -> None:
        # a NaN guidance makes every logit NaN and every token 0: checked here, for every caller
        for f in fields(self):
            setattr(self, f.name, check_sampling_value(f.name, getattr(self, f.name)))

    def to_dict(self) -> dict:
        return asdict(self)


def cosine_schedule(t: Tensor | float) -> Tensor:
    """Fraction of tokens still masked at time t in [0, 1]."""
    return torch.cos(torch.as_tensor(t) * math.pi / 2)


def top_k_filter(logits: Tensor, threshold: float) -> Tensor:
    """Keep the ceil((1 - threshold) * V) largest logits, the rest -inf."""
    k = max(1, math.ceil((1.0 - threshold) * logits.shape[-1]))
    if k >= logits.shape[-1]:
        return logits
    kth = logits.topk(k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def gumbel_noise(shape: tuple[int, int, int], generators: list[torch.Generator], lengths: Tensor, *,
                 device: torch.device | str = "cpu") -> Tensor:
    """Gumbel(0, 1) noise (B, n, V) on ``device``; row b's first lengths[b] positions from generators[b].

    Each row draws only for its own length, so its noise does not depend on how long
    the other prompts in the batch are. The generators are CPU generators: their
    uniform draws are made on the CPU and moved, whatever ``device`` is.
    """
    b, n, v = shape
    u = torch.full(shape, 0.5)
    for i, (g, length) in enumerate(zip(generators, lengths.tolist())):
        u[i, :length] = torch.rand(length, v, generator=g)
    return -torch.log(-torch.log(u.to(device).clamp(1e-10, 1.0 - 1e-7)))


def sample_from_logits(logits: Tensor, temperature: float, top_k: float,
                       generators: list[torch.Generator], lengths: Tensor) -> Tensor:
    """Gumbel-max over the top-k logits: a categorical draw from softmax(logits / t)."""
    filtered = top_k_filter(logits.float(), top_k) / temperature
    return (filtered + gumbel_noise(filtered.shape, generators, lengths, device=filtered.device)).argmax(-1)


def padding_mask(lengths: Tensor, n: int) -> Tensor | None:
    """(B, n) True past each length; None when nothing is padded (the fast path)."""
    mask = torch.arange(n, device=lengths.device)[None] >= lengths[:, None]
    return mask if bool(mask.any()) else None


class _Guided:
    """Logits with classifier-free guidance, both branches in one forward pass."""

    def __init__(self, body, text: Tensor, scale: float, mask: Tensor | None) -> None:
        self.scale = scale
        cond = body.condition(text)
        if scale == 1.0:  # conditional only
            self.prefix, self.mask = cond, mask
        else:
            uncond = body.condition(text, drop=torch.ones(len(text), dtype=torch.bool, device=text.device))
            self.prefix = torch.cat([cond, uncond])
            self.mask = None if mask is None else torch.cat([mask, mask])

    def __call__(self, forward, *inputs: Tensor) -> Tensor:
        if self.scale == 1.0:
            return forward(*inputs, self.prefix, self.mask).float()
        both = forward(*(torch.cat([x, x]) for x in inputs), self.prefix, self.mask)
        cond, uncond = both.float().chunk(2)
        return uncond + self.scale * (cond - uncond)


@torch.inference_mode()
def sample_base_tokens(model: MaskedTransformer, text: Tensor, lengths: Tensor, config: SamplingConfig,
                       generators: list[torch.Generator], known: Tensor | None = None) -> Tensor:
    """Layer-0 tokens (B, n) by iterative unmasking; -1 past each length.

    ``known`` (B, n) holds tokens to keep (>= 0) and -1 where to generate (editing).
    Each iteration re-masks the least confident generated tokens on a cosine schedule.
    Inputs may be on any device; the result is on the model's.
    """
    device = model_device(model)
    text, lengths = text.to(device), lengths.to(device)
    b, n = len(lengths), int(lengths.max())
    pad = padding_mask(lengths, n)
    is_pad = pad if pad is not None else torch.zeros(b, n, dtype=torch.bool, device=device)
    if known is None:
        known = torch.full((b, n), -1, dtype=torch.long, device=device)
    known = known[:, :n].to(device)
    fixed = (known >= 0) | is_pad
    to_generate = (~fixed).sum(1)
    ids = torch.where(is_pad, model.pad_id, torch.where(fixed, known, model.mask_id))
    scores = torch.where(fixed, 1e5, 0.0)  # kept tokens are never re-masked
    guided = _Guided(model.body, text, config.guidance, pad)
    forward = lambda x, prefix, mask: model.head(model.body(prefix, model.token_emb(x), mask))  # noqa: E731
    for step in range(config.iterations):
        frac = cosine_schedule(step / config.iterations)
        num_masked = (frac * to_generate).round().clamp(min=1).long()
        ranks = scores.argsort(1).argsort(1)
        is_mask = (ranks < num_masked[:, None]) & ~fixed
        ids = torch.where(is_mask, model.mask_id, ids)
        logits = guided(forward, ids)
        pred = sample_from_logits(logits, config.temperature, config.top_k, generators, lengths)
        ids = torch.where(is_mask, pred, ids)
        probs = logits.softmax(-1).gather(-1, pred.unsqueeze(-1)).squeeze(-1)
        scores = torch.where(is_mask, probs, 1e5)
    return torch.where(is_pad, -1, ids)


@torch.inference_mode()
def sample_residual_tokens(model: ResidualTransformer, base: Tensor, text: Tensor, lengths: Tensor,
                           config: SamplingConfig, generators: list[torch.Generator],
                           known: Tensor | None = None) -> Tensor:
    """All L layers (B, n, L) from layer 0; ``known`` (B, n, L) >= 0 entries are kept.

    Inputs may be on any device; the result is on the model's.
    """
    device = model_device(model)
    base, text, lengths = base.to(device), text.to(device), lengths.to(device)
    known = None if known is None else known.to(device)
    b, n = base.shape
    layers = model.config.num_quantizers
    pad = padding_mask(lengths, n)
    is_pad = (pad if pad is not None else torch.zeros(b, n, dtype=torch.bool, device=device)).unsqueeze(-1)
    codes = torch.full((b, n, layers), -1, dtype=torch.long, device=device)
    codes[..., 0] = base
    guided = _Guided(model.body, text, config.residual_guidance, pad)
    history = torch.zeros(b, n, model.config.code_dim, dtype=model.first_embed.dtype, device=device)
    for j in range(1, layers):
        prev = codes[..., j - 1]
        history = history + model.embed_table(j - 1)[torch.where(prev < 0, model.pad_id, prev)]
        layer = torch.full((b,), j, dtype=torch.long, device=device)
        logits = guided(model, history, layer)
        pred = sample_from_logits(logits, config.residual_temperature, config.top_k, generators, lengths)
        if known is not None:
            pred = torch.where(known[:, :n, j] >= 0, known[:, :n, j], pred)
        codes[..., j] = pred
    return torch.where(is_pad, -1, codes)
