"""The residual transformer (MoMask): tokens of layers 0..j-1 -> logits of layer j.

Input is the sum of the embeddings of the known layers; a second prefix token says
which layer j (1..L-1) to predict. As in MoMask, the embedding table of layer j doubles
as the output head that predicts layer j (shared for j = 1..L-2), which halves the
embedding parameters and ties what a token means on the way in and out.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .token_transformer import TokenTransformer, TransformerConfig


class ResidualTransformer(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        c = config
        if c.num_quantizers < 2:
            raise ValueError("a residual transformer needs at least 2 quantizer layers")
        self.config, self.pad_id = c, c.num_tokens
        init = lambda n: nn.Parameter(torch.randn(n, c.num_tokens + 1, c.code_dim) * 0.02)  # noqa: E731
        self.first_embed = init(1)  # layer 0: input only
        self.shared = init(c.num_quantizers - 2)  # layers 1..L-2: input and head
        self.last_head = init(1)  # layer L-1: head only
        self.layer_emb = nn.Linear(c.num_quantizers, c.latent_dim)
        self.body = TokenTransformer(c, num_prefix=2)

    def embed_table(self, layer: int) -> Tensor:
        """(V+1, code_dim) input embedding of tokens of ``layer`` (0..L-2); row V is padding."""
        return self.first_embed[0] if layer == 0 else self.shared[layer - 1]

    def head_table(self, layer: int) -> Tensor:
        """(V, code_dim) output head predicting ``layer`` (1..L-1)."""
        table = self.last_head[0] if layer == self.config.num_quantizers - 1 else self.shared[layer - 1]
        return table[: self.config.num_tokens]

    def history(self, codes: Tensor, upto: Tensor | int, *, max_layer: int | None = None) -> Tensor:
        """Sum of embeddings of codes (B, n, L) layers 0..upto-1 (-1 codes count as padding).

        ``max_layer``: a bound on ``upto`` known on the host (reading it from a GPU
        tensor would make the host wait).
        """
        b, n, _ = codes.shape
        upto = torch.as_tensor(upto, device=codes.device).expand(b)
        codes = torch.where(codes < 0, self.pad_id, codes)
        out = codes.new_zeros(b, n, self.config.code_dim, dtype=self.first_embed.dtype)
        for layer in range(int(upto.max()) if max_layer is None else max_layer):
            use = (layer < upto).to(out.dtype)[:, None, None]
            out = out + use * self.embed_table(layer)[codes[..., layer]]
        return out

    def forward(self, history: Tensor, layer: Tensor, cond: Tensor, padding_mask: Tensor | None) -> Tensor:
        """history (B, n, code_dim), layer (B,) in 1..L-1, cond (B, 1, latent) -> (B, n, V)."""
        onehot = nn.functional.one_hot(layer, self.config.num_quantizers).to(history.dtype)
        prefix = torch.cat([cond, self.layer_emb(onehot).unsqueeze(1)], dim=1)
        feats = self.body(prefix, history, padding_mask)
        # sampling: one layer for the whole batch. Not in training, where every head must
        # take part in each step (DDP expects the same parameters used on every process),
        # nor on a GPU, where the check would make the host wait.
        if not self.training and layer.device.type == "cpu" and bool((layer == layer[0]).all()):
            return feats @ self.head_table(int(layer[0])).T
        heads = torch.stack([self.head_table(j) for j in range(1, self.config.num_quantizers)])
        return torch.einsum("bnd,bvd->bnv", feats, heads[layer - 1])
