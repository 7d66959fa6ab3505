"""The transformer body shared by the masked and residual transformers (MoMask's shape).

A text feature becomes one prefix token (the residual transformer adds a second one
that names the layer it predicts); tokens get sinusoidal positions; a post-norm GELU
``nn.TransformerEncoder`` mixes them; an output block (dense, GELU, LayerNorm) ends at
``code_dim``.

Inference on the CPU (eval mode, no autograd) takes :class:`_PackedEncoder`: the same
layers computed with oneDNN linear kernels on weights reordered once into oneDNN's
layout (about 1.3x the throughput of the MKL GEMMs in PyTorch's own fused inference path
at sampling's shapes; docs/speed.md) and scaled-dot-product attention. It differs from
the fused path by float rounding only; training and other devices use the modules as
they are.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
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
        packed = None if self.training or torch.is_grad_enabled() else _PackedEncoder.of(self.encoder, h)
        h = packed(h, padding_mask) if packed else self.encoder(h, src_key_padding_mask=padding_mask)
        return self.output(h[:, self.num_prefix:])


def _onednn_linear_available() -> bool:
    try:
        w = torch.ops.mkldnn._reorder_linear_weight(torch.ones(2, 2), None)
        return bool(torch.ops.mkldnn._linear_pointwise(torch.ones(1, 2), w, None, "none", [], "").sum() == 4)
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


class _PackedEncoder:
    """A post-norm GELU ``nn.TransformerEncoder`` for CPU inference on oneDNN-packed weights.

    Kept outside the module (packed oneDNN tensors cannot be copied or saved) in a
    weak-keyed table; repacked when a weight changes (training, loading, a dtype cast).
    """

    _table: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    _available: bool | None = None

    def __init__(self, encoder: nn.TransformerEncoder) -> None:
        self.key = self._key(encoder)
        with torch.inference_mode(False), torch.no_grad():
            self.layers = [self._pack(layer) for layer in encoder.layers]

    @staticmethod
    def _key(encoder: nn.TransformerEncoder) -> tuple:
        return tuple((p.data_ptr(), p._version, p.dtype) for p in encoder.parameters())

    @classmethod
    def of(cls, encoder: nn.TransformerEncoder, h: Tensor) -> _PackedEncoder | None:
        """The packed twin of ``encoder`` for input ``h``, or None where it does not apply."""
        if h.device.type != "cpu" or encoder.norm is not None:
            return None
        if cls._available is None:
            cls._available = _onednn_linear_available()
        if not cls._available or any(
                layer.norm_first or layer.activation_relu_or_gelu != 2 for layer in encoder.layers):
            return None
        packed = cls._table.get(encoder)
        if packed is None or packed.key != cls._key(encoder):
            packed = cls._table[encoder] = cls(encoder)
        return packed

    @staticmethod
    def _pack(layer: nn.TransformerEncoderLayer) -> dict:
        def lin(weight: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor | None]:
            return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), None), \
                None if bias is None else bias.detach()
        attn = layer.self_attn
        return {"heads": attn.num_heads, "qkv": lin(attn.in_proj_weight, attn.in_proj_bias),
                "out": lin(attn.out_proj.weight, attn.out_proj.bias),
                "ff1": lin(layer.linear1.weight, layer.linear1.bias),
                "ff2": lin(layer.linear2.weight, layer.linear2.bias),
                "norm1": layer.norm1, "norm2": layer.norm2}

    def __call__(self, h: Tensor, padding_mask: Tensor | None) -> Tensor:
        b, n, d = h.shape
        mask = None if padding_mask is None else ~padding_mask[:, None, None, :]  # True: attend
        x = h.reshape(b * n, d)
        linear = torch.ops.mkldnn._linear_pointwise
        for p in self.layers:
            heads = p["heads"]
            qkv = linear(x, *p["qkv"], "none", [], "").view(b, n, 3, heads, d // heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            a = linear(a.transpose(1, 2).reshape(b * n, d), *p["out"], "none", [], "")
            x = F.layer_norm(x + a, (d,), p["norm1"].weight, p["norm1"].bias, p["norm1"].eps)
            f = linear(linear(x, *p["ff1"], "gelu", [], "none"), *p["ff2"], "none", [], "")
            x = F.layer_norm(x + f, (d,), p["norm2"].weight, p["norm2"].bias, p["norm2"].eps)
        return x.view(b, n, d)
