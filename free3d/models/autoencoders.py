"""The convolutional autoencoders of Free3D.

- :class:`MotionLifter`: encoder -> residual VQ -> decoder to 3D trajectory + limbs.
  Fed 2D it is the ML-RQ (paper eq. 8); fed 3D (or 2D, supervised with 3D) it is the
  3D-supervised MoMask-style RVQ-VAE baseline.
- :class:`Prior2D`: the 2D motion prior of paper eq. 11, a VQ-VAE with one codebook on
  2D motion (ablations: VAE, plain AE), trained first and then frozen.

3D outputs live in the camera frame of the 2D input (x right, y up, z towards the
camera) in the 2D data's normalised units, so the projection Phi of paper eq. 10 is
"drop z".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..skeleton import Skeleton
from .conv import Decoder, Encoder
from .features import Standardizer, decode_motion, encode_motion, feature_dim
from .quantizer import ResidualQuantizer


@dataclass
class ConvVQConfig:
    """Sizes of the convolutional VQ autoencoders (MoMask's RVQ-VAE shape)."""

    width: int = 512
    code_dim: int = 512
    num_layers: int = 6
    codebook_size: int = 512
    down: int = 2
    depth: int = 3
    dropout: float = 0.2
    quantize_dropout: float = 0.2
    sample_temperature: float = 0.5
    # a code whose EMA count (tokens it gets per training step) falls below this is reset
    # to a batch vector. MoMask's 1 is an eighth of a code's share at its 4,096 tokens a
    # step; at 640 a step (the cpu preset's batch) it resets four codes in five every step
    dead_code_threshold: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, ConvVQConfig] = {
    # the paper's sizes (MoMask): 6 layers x 512 codes x 512 dims, width 512; for a GPU
    "paper": ConvVQConfig(),
    # small enough that each stage trains on two CPU cores in well under an hour; its 640
    # tokens a step make MoMask's dead-code threshold (1/8 of a code's share at 4,096 a
    # step) 1/8 of 1.25 (docs/results.md: PA-MPJPE 66.0 -> 57.7 mm at 1 -> 0.15)
    "cpu": ConvVQConfig(width=128, code_dim=128, codebook_size=512, dead_code_threshold=0.15),
}


def get_preset(name: str) -> ConvVQConfig:
    try:
        return ConvVQConfig(**PRESETS[name].to_dict())
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None


class LiftOutput(NamedTuple):
    trajectory: Tensor  # (B, T, 3)
    limbs: Tensor  # (B, T, K, 3)
    codes: Tensor  # (B, T/4, L)
    commit_loss: Tensor
    latent: Tensor  # (B, T/4, D) encoder output before quantization
    perplexity: Tensor


def _tc(x: Tensor) -> Tensor:
    """(B, T, C) <-> (B, C, T)."""
    return x.transpose(1, 2)


class MotionLifter(nn.Module):
    def __init__(self, *, skeleton: Skeleton, arch: ConvVQConfig, input_dim: int = 2,
                 representation: str = "limbs") -> None:
        super().__init__()
        if input_dim not in (2, 3):
            raise ValueError(f"input_dim must be 2 or 3, got {input_dim}")
        self.skeleton, self.arch = skeleton, arch
        self.input_dim, self.representation = input_dim, representation
        in_f = feature_dim(skeleton, representation, input_dim)
        out_f = feature_dim(skeleton, representation, 3)
        self.normalizer = Standardizer(in_f)
        self.encoder = Encoder(in_dim=in_f, width=arch.width, code_dim=arch.code_dim, down=arch.down,
                               depth=arch.depth, dropout=arch.dropout)
        self.quantizer = ResidualQuantizer(
            dim=arch.code_dim, num_layers=arch.num_layers, codebook_size=arch.codebook_size,
            dropout_prob=arch.quantize_dropout, sample_temperature=arch.sample_temperature,
            dead_code_threshold=arch.dead_code_threshold)
        self.decoder = Decoder(code_dim=arch.code_dim, width=arch.width, out_dim=out_f,
                               down=arch.down, depth=arch.depth, dropout=arch.dropout)

    @property
    def downsampling(self) -> int:
        return 2 ** self.arch.down

    def features(self, trajectory: Tensor, limbs: Tensor) -> Tensor:
        return encode_motion(trajectory, limbs, self.skeleton, self.representation)

    def encode(self, trajectory: Tensor, limbs: Tensor) -> Tensor:
        """Motion -> (B, T/4, D) latent before quantization (the E of Lfeat, eq. 14)."""
        x = self.normalizer(self.features(trajectory, limbs))
        return _tc(self.encoder(_tc(x)))

    def decode(self, quantized: Tensor) -> tuple[Tensor, Tensor]:
        y = _tc(self.decoder(_tc(quantized)))
        return decode_motion(y, self.skeleton, self.representation, 3)

    def forward(self, trajectory: Tensor, limbs: Tensor) -> LiftOutput:
        latent = self.encode(trajectory, limbs)
        q = self.quantizer(latent)
        traj3, limbs3 = self.decode(q.quantized)
        return LiftOutput(traj3, limbs3, q.codes, q.commit_loss, latent, q.perplexity)

    def tokenize(self, trajectory: Tensor, limbs: Tensor) -> Tensor:
        """(B, T, ...) motion of any length -> (B, ceil(T/4), L) token ids.

        The last frame is repeated up to a whole token; decoded motion is cut back to T.
        """
        trajectory, limbs = (pad_frames(x, self.downsampling) for x in (trajectory, limbs))
        return self.quantizer(self.encode(trajectory, limbs)).codes

    def decode_codes(self, codes: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T/4, L) token ids -> 3D trajectory and limbs (generation's last step)."""
        return self.decode(self.quantizer.codes_to_latent(codes))


def pad_frames(x: Tensor, multiple: int) -> Tensor:
    """Repeat the last frame of (B, T, ...) until T is a multiple of ``multiple``."""
    extra = (-x.shape[1]) % multiple
    return torch.cat([x, x[:, -1:].expand(x.shape[0], extra, *x.shape[2:])], dim=1) if extra else x


PRIOR_KINDS = ("vq", "vae", "ae")


class Prior2D(nn.Module):
    """A 2D motion autoencoder whose reconstruction error says how natural a 2D motion is."""

    def __init__(self, *, skeleton: Skeleton, arch: ConvVQConfig, kind: str = "vq",
                 representation: str = "limbs", kl_weight: float = 1e-4) -> None:
        super().__init__()
        if kind not in PRIOR_KINDS:
            raise ValueError(f"unknown prior kind {kind!r}; choose from {PRIOR_KINDS}")
        self.skeleton, self.arch, self.kind = skeleton, arch, kind
        self.representation, self.kl_weight = representation, kl_weight
        f = feature_dim(skeleton, representation, 2)
        self.normalizer = Standardizer(f)
        latent = arch.code_dim * (2 if kind == "vae" else 1)
        self.encoder = Encoder(in_dim=f, width=arch.width, code_dim=latent, down=arch.down,
                               depth=arch.depth, dropout=arch.dropout)
        self.quantizer = (ResidualQuantizer(dim=arch.code_dim, num_layers=1,
                                            codebook_size=arch.codebook_size, dropout_prob=0.0,
                                            sample_temperature=arch.sample_temperature,
                                            dead_code_threshold=arch.dead_code_threshold)
                          if kind == "vq" else None)
        self.decoder = Decoder(code_dim=arch.code_dim, width=arch.width, out_dim=f, down=arch.down,
                               depth=arch.depth, dropout=arch.dropout)

    def features(self, trajectory: Tensor, limbs: Tensor) -> Tensor:
        return self.normalizer(encode_motion(trajectory, limbs, self.skeleton, self.representation))

    def encode(self, trajectory: Tensor, limbs: Tensor) -> Tensor:
        """(B, T/4, D) latent before the bottleneck (the unshared E of the Lfeat ablation)."""
        z = _tc(self.encoder(_tc(self.features(trajectory, limbs))))
        return z.chunk(2, dim=-1)[0] if self.kind == "vae" else z

    def reconstruct(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised features (B, T, F) -> reconstruction and the bottleneck's own loss
        (commitment for VQ, weighted KL for VAE, zero for AE)."""
        z = _tc(self.encoder(_tc(x)))
        aux = x.new_zeros(())
        if self.kind == "vq":
            q = self.quantizer(z)
            z, aux = q.quantized, q.commit_loss
        elif self.kind == "vae":
            mu, logvar = z.chunk(2, dim=-1)
            logvar = logvar.clamp(-10, 10)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
            aux = self.kl_weight * 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(-1).mean()
        return _tc(self.decoder(_tc(z))), aux

    def reconstruction_error(self, trajectory: Tensor, limbs: Tensor) -> Tensor:
        """Mean squared reconstruction error of a 2D motion (Lrec's inner term, eq. 11)."""
        x = self.features(trajectory, limbs)
        recon, _ = self.reconstruct(x)
        return (recon - x).square().mean()
