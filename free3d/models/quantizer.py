"""MoMask's residual vector quantizer (``QuantizeEMAReset`` + ``ResidualVQ``).

Written out here rather than wrapping vector-quantize-pytorch because five of MoMask's
behaviours are not settings there: quantize dropout with a probability (the library
drops on every training batch), codebook initialised from the first batch without
k-means, dead codes reset from the batch when their EMA count falls below 1 *inside*
the EMA update, Gumbel sampling only in training, and -1 codes for dropped layers.
``tests/test_quantizer.py`` pins each behaviour.

One deliberate difference: the straight-through estimator is applied once to the sum
of the layers. MoMask applies it inside each layer, which multiplies the gradient the
encoder receives from the reconstruction by the number of kept layers; here the
commitment weight alone sets the balance.

Layout: inputs and outputs are (B, T, D), channels last. All randomness comes from
torch's RNG, so ``torch.manual_seed`` makes training repeatable.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import distributed


class QuantizerOutput(NamedTuple):
    quantized: Tensor  # (B, T, D), straight-through
    codes: Tensor  # (B, T, L) long, -1 for dropped layers
    commit_loss: Tensor  # scalar: mean over used layers of MSE(residual, code)
    perplexity: Tensor  # (L,) code usage per layer (0 for dropped layers)


class EMACodebook(nn.Module):
    """One codebook with EMA updates and dead-code reset (MoMask's QuantizeEMAReset)."""

    def __init__(self, *, size: int, dim: int, decay: float, dead_code_threshold: float) -> None:
        super().__init__()
        self.size, self.dim = size, dim
        self.decay, self.dead_code_threshold = decay, dead_code_threshold
        self.register_buffer("codebook", torch.zeros(size, dim))
        self.register_buffer("code_sum", torch.zeros(size, dim))
        self.register_buffer("code_count", torch.zeros(size))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))
        self._known_initialised = False  # host copy of the flag: reading it on a GPU would sync

    def is_initialised(self) -> bool:
        if not self._known_initialised:
            self._known_initialised = bool(self.initialised)
        return self._known_initialised

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._known_initialised = False  # the loaded flag is read again when needed

    def _random_vectors(self, x: Tensor) -> Tensor:
        """``size`` rows drawn from x (tiled with small noise when x has fewer rows)."""
        if x.shape[0] < self.size:
            reps = (self.size + x.shape[0] - 1) // x.shape[0]
            std = 0.01 / (self.dim ** 0.5)
            x = x.repeat(reps, 1) + torch.randn(reps * x.shape[0], self.dim, device=x.device) * std
        return x[torch.randperm(x.shape[0], device=x.device)[: self.size]]

    @torch.no_grad()
    def initialise(self, x: Tensor) -> None:
        """Codes drawn from the batch (every process's rows under DDP, so all agree)."""
        self.codebook.copy_(self._random_vectors(distributed.gather_rows(x)))
        self.code_sum.copy_(self.codebook)
        self.code_count.fill_(1.0)
        self.initialised.fill_(True)
        self._known_initialised = True

    def distances(self, x: Tensor) -> Tensor:
        return (x.square().sum(-1, keepdim=True) - 2 * x @ self.codebook.T
                + self.codebook.square().sum(-1)[None])

    def choose(self, x: Tensor, temperature: float) -> Tensor:
        logits = -self.distances(x)
        if self.training and temperature > 0:
            # Gumbel-max: a sample from softmax(logits / temperature)
            u = distributed.rand_rows(*logits.shape, dtype=logits.dtype,
                                      device=logits.device).clamp(1e-20, 1.0)
            logits = logits / temperature - torch.log(-torch.log(u))
        return logits.argmax(-1)

    @torch.no_grad()
    def update(self, x: Tensor, codes: Tensor) -> Tensor:
        """EMA of code sums and counts; codes with count < threshold become batch vectors.

        Under DDP the statistics are of the global batch, so every process keeps the
        same codebook (the one a single process would have).
        """
        x, codes = distributed.gather_rows(x), distributed.gather_rows(codes)
        # per-code sums and counts of the batch (what MoMask gets from one_hot(codes).T @ x,
        # without the (N, K) one-hot matmul)
        code_sum = x.new_zeros(self.size, self.dim).index_add_(0, codes, x)
        code_count = torch.bincount(codes, minlength=self.size).to(x.dtype)
        random_vectors = self._random_vectors(x)
        self.code_sum.mul_(self.decay).add_(code_sum, alpha=1 - self.decay)
        self.code_count.mul_(self.decay).add_(code_count, alpha=1 - self.decay)
        used = (self.code_count >= self.dead_code_threshold).to(x.dtype)[:, None]
        updated = self.code_sum / self.code_count.clamp_min(1e-12)[:, None]
        self.codebook.copy_(used * updated + (1 - used) * random_vectors)
        prob = code_count / code_count.sum()
        return torch.exp(-(prob * torch.log(prob + 1e-7)).sum())


class ResidualQuantizer(nn.Module):
    def __init__(self, *, dim: int, num_layers: int = 6, codebook_size: int = 512,
                 decay: float = 0.99, dead_code_threshold: float = 1.0,
                 dropout_prob: float = 0.2, sample_temperature: float = 0.5) -> None:
        super().__init__()
        self.dim, self.num_layers, self.codebook_size = dim, num_layers, codebook_size
        self.dropout_prob, self.sample_temperature = dropout_prob, sample_temperature
        self.layers = nn.ModuleList(
            EMACodebook(size=codebook_size, dim=dim, decay=decay,
                        dead_code_threshold=dead_code_threshold) for _ in range(num_layers))

    def codebook(self, layer: int) -> Tensor:
        return self.layers[layer].codebook

    def forward(self, z: Tensor) -> QuantizerOutput:
        # nearest codes and EMA statistics in fp32 even under bf16 autocast: bf16
        # distances would pick other codes
        with torch.autocast(z.device.type, enabled=False):
            return self._quantize(z.float())

    def _quantize(self, z: Tensor) -> QuantizerOutput:
        shape = z.shape
        x = z.reshape(-1, self.dim)
        keep = self.num_layers
        if self.training and self.dropout_prob > 0 and torch.rand(()) < self.dropout_prob:
            keep = int(torch.randint(1, self.num_layers + 1, ()))  # layers 0..keep-1
        residual = x
        quantized = torch.zeros_like(x)
        codes = torch.full((x.shape[0], self.num_layers), -1, dtype=torch.long, device=z.device)
        perplexity = torch.zeros(self.num_layers, device=z.device)
        losses = []
        for i, layer in enumerate(self.layers[:keep]):
            if self.training and not layer.is_initialised():
                layer.initialise(residual.detach())
            idx = layer.choose(residual.detach(), self.sample_temperature)
            q = layer.codebook[idx]
            if self.training:
                perplexity[i] = layer.update(residual.detach(), idx)
            losses.append(F.mse_loss(residual, q.detach()))
            codes[:, i] = idx
            quantized = quantized + q
            residual = residual - q.detach()
        out = x + (quantized - x).detach()  # straight-through
        return QuantizerOutput(out.reshape(shape), codes.reshape(*shape[:-1], self.num_layers),
                               torch.stack(losses).mean(), perplexity)

    def codes_to_latent(self, codes: Tensor) -> Tensor:
        """(B, T, L') code ids of the first L' layers (-1: skip) -> (B, T, D)."""
        out = torch.zeros(*codes.shape[:-1], self.dim, device=codes.device,
                          dtype=self.layers[0].codebook.dtype)
        for i in range(codes.shape[-1]):
            c = codes[..., i]
            valid = (c >= 0).unsqueeze(-1)
            out = out + torch.where(valid, self.layers[i].codebook[c.clamp_min(0)], 0.0)
        return out
