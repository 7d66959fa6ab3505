"""MoMask's temporal convolutional encoder and decoder (DESIGN.md section 3).

Encoder: Conv1d(in, width, 3) + ReLU, then per 2x downsampling a Conv1d(k4, s2) and a
Resnet1D (3 residual blocks, dilations 9, 3, 1), then Conv1d(width, code_dim, 3).
The decoder mirrors it with nearest-neighbour 2x upsampling. Tensors are (B, C, T).
"""

from __future__ import annotations

from torch import Tensor, nn


class ResBlock1D(nn.Module):
    """act -> dilated conv k3 -> act -> conv k1 -> dropout -> residual add."""

    def __init__(self, width: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation),
            nn.ReLU(),
            nn.Conv1d(width, width, 1),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


class Resnet1D(nn.Sequential):
    def __init__(self, width: int, *, depth: int = 3, growth: int = 3, dropout: float = 0.2) -> None:
        # MoMask reverses the dilations: widest first (9, 3, 1 for depth 3)
        super().__init__(*[ResBlock1D(width, growth**d, dropout) for d in reversed(range(depth))])


class Encoder(nn.Sequential):
    def __init__(self, *, in_dim: int, width: int, code_dim: int, down: int = 2, depth: int = 3,
                 dropout: float = 0.2) -> None:
        layers: list[nn.Module] = [nn.Conv1d(in_dim, width, 3, padding=1), nn.ReLU()]
        for _ in range(down):
            layers += [nn.Conv1d(width, width, 4, stride=2, padding=1),
                       Resnet1D(width, depth=depth, dropout=dropout)]
        layers.append(nn.Conv1d(width, code_dim, 3, padding=1))
        super().__init__(*layers)


class Decoder(nn.Sequential):
    def __init__(self, *, code_dim: int, width: int, out_dim: int, down: int = 2, depth: int = 3,
                 dropout: float = 0.2) -> None:
        layers: list[nn.Module] = [nn.Conv1d(code_dim, width, 3, padding=1), nn.ReLU()]
        for _ in range(down):
            layers += [Resnet1D(width, depth=depth, dropout=dropout),
                       nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv1d(width, width, 3, padding=1)]
        layers += [nn.Conv1d(width, width, 3, padding=1), nn.ReLU(),
                   nn.Conv1d(width, out_dim, 3, padding=1)]
        super().__init__(*layers)
