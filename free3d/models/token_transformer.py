"""The transformer body shared by the masked and residual transformers (MoMask's shape).

A text feature becomes one prefix token (the residual transformer adds a second one
that names the layer it predicts); tokens get sinusoidal positions; a post-norm GELU
``nn.TransformerEncoder`` mixes them (in eval mode PyTorch runs it on its fused
inference path); an output block (dense, GELU, LayerNorm) ends at ``code_dim``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from ..data.canonical import MAX_FRAMES


@dataclass
class TransformerConfig:
    num_tokens: int = 512  # codebook size of the ML-RQ
    num_quantizers: int = 6  # residual layers of the ML-RQ
    code_dim: int = 512  # token embedding width (MoMask: the VQ code width)
    latent_dim: int = 384
    num_layers: int = 8
    num_heads: int = 6
    ff_dim: int = 1024
    dropout: float = 0.2
    text_dim: int = 384  # all-MiniLM-L6-v2
    max_tokens: int = MAX_FRAMES // 4
    cond_drop_prob: float = 0.1  # MoMask: 0.1 masked, 0.2 residual

    def to_dict(self) -> dict:
        return asdict(self)


# DESIGN.md section 3: `paper` is MoMask's size; `cpu` trains on two cores in minutes.
PRESETS = {
    "paper": TransformerConfig(),
    "cpu": TransformerConfig(code_dim=128, latent_dim=256, num_layers=4, num_heads=4, ff_dim=768,
                             dropout=0.1),
}


def transformer_preset(name: str, **overrides) -> TransformerConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return TransformerConfig(**{**PRESETS[name].to_dict(), **overrides})


def sinusoidal_positions(n: int, dim: int) -> Tensor:
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(n, dim)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
    return pe


class OutputBlock(nn.Module):
    """MoMask's OutputProcess_Bert without its final projection: latent -> code_dim."""

    def __init__(self, latent_dim: int, out_dim: int) -> None:
        super().__init__()
        self.dense = nn.Linear(latent_dim, latent_dim)
        self.norm = nn.LayerNorm(latent_dim, eps=1e-12)
        self.proj = nn.Linear(latent_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.norm(nn.functional.gelu(self.dense(x))))


class TokenTransformer(nn.Module):
    """Prefix tokens + embedded motion tokens -> per-token features of width code_dim."""

    def __init__(self, config: TransformerConfig, *, num_prefix: int) -> None:
        super().__init__()
        c = config
        if c.latent_dim % c.num_heads:
            raise ValueError(f"latent_dim {c.latent_dim} is not divisible by num_heads {c.num_heads}")
        self.config, self.num_prefix = c, num_prefix
        self.cond_emb = nn.Linear(c.text_dim, c.latent_dim)
        self.input_proj = nn.Linear(c.code_dim, c.latent_dim)
        self.register_buffer("positions", sinusoidal_positions(c.max_tokens + num_prefix, c.latent_dim),
                             persistent=False)
        self.dropout = nn.Dropout(c.dropout)
        layer = nn.TransformerEncoderLayer(c.latent_dim, c.num_heads, c.ff_dim, c.dropout,
                                           activation="gelu", batch_first=True, norm_first=False)
        self.encoder = nn.TransformerEncoder(layer, c.num_layers, enable_nested_tensor=False)
        self.output = OutputBlock(c.latent_dim, c.code_dim)

    def condition(self, text: Tensor, drop: Tensor | None = None) -> Tensor:
        """(B, text_dim) -> (B, 1, latent) prefix token; ``drop`` rows get the empty condition."""
        text = text.to(self.cond_emb.weight.dtype)
        if drop is not None:
            text = text * (~drop).unsqueeze(-1).to(text.dtype)
        return self.cond_emb(text).unsqueeze(1)

    def forward(self, prefix: Tensor, x: Tensor, padding_mask: Tensor | None) -> Tensor:
        """prefix (B, P, latent), x (B, n, code_dim), padding_mask (B, n) True at padding."""
        n = x.shape[1]
        if n > self.config.max_tokens:
            raise ValueError(f"{n} tokens is more than the model's {self.config.max_tokens}")
        h = torch.cat([prefix, self.input_proj(x)], dim=1)
        h = self.dropout(h + self.positions[: n + self.num_prefix].to(h.dtype))
        if padding_mask is not None:
            padding_mask = torch.cat([padding_mask.new_zeros(x.shape[0], self.num_prefix), padding_mask], 1)
        h = self.encoder(h, src_key_padding_mask=padding_mask)
        return self.output(h[:, self.num_prefix:])
