"""The masked transformer (MoMask): text + partly masked layer-0 tokens -> logits of all."""

from __future__ import annotations

from torch import Tensor, nn

from .token_transformer import TokenTransformer, TransformerConfig


class MaskedTransformer(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.mask_id, self.pad_id = config.num_tokens, config.num_tokens + 1
        self.token_emb = nn.Embedding(config.num_tokens + 2, config.code_dim)
        self.body = TokenTransformer(config, num_prefix=1)
        self.head = nn.Linear(config.code_dim, config.num_tokens)

    def forward(self, ids: Tensor, cond: Tensor, padding_mask: Tensor | None) -> Tensor:
        """ids (B, n) with mask/pad ids, cond (B, 1, latent) from ``body.condition`` -> (B, n, V)."""
        return self.head(self.body(cond, self.token_emb(ids), padding_mask))
