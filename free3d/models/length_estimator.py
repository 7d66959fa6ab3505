"""Text feature -> distribution over motion lengths in tokens (MoMask's length estimator)."""

from __future__ import annotations

from torch import Tensor, nn


class LengthEstimator(nn.Module):
    def __init__(self, *, text_dim: int = 384, max_tokens: int = 49, dropout: float = 0.2) -> None:
        super().__init__()
        self.text_dim, self.max_tokens = text_dim, max_tokens

        def block(i: int, o: int, drop: float) -> list[nn.Module]:
            return [nn.Linear(i, o), nn.LayerNorm(o), nn.LeakyReLU(0.2), nn.Dropout(drop)]

        self.net = nn.Sequential(*block(text_dim, 512, dropout), *block(512, 256, dropout),
                                 *block(256, 128, 0.0), nn.Linear(128, max_tokens + 1))

    def forward(self, text: Tensor) -> Tensor:
        """(B, text_dim) -> (B, max_tokens + 1) logits; class k means k tokens (4k frames)."""
        return self.net(text)
