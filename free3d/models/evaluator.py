"""The text-motion evaluator (DESIGN.md section 6): our stand-in for the T2M evaluator,
whose weights cannot be obtained here.

Motion side: position features per frame (root height, root displacement from the
first frame, root-relative joints; the 2D-trained model has no rotations), standardised,
two strided convolutions, a bidirectional GRU over the valid frames, a linear map to
the embedding. Text side: the frozen sentence feature through an MLP. Both embeddings
are L2-normalised; metrics use Euclidean distances between them. Heads on the motion
embedding classify content and style labels where the data has them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from ..skeleton import Skeleton
from .features import Standardizer


def position_features(joints: Tensor) -> Tensor:
    """(B, T, J, 3) canonical joints -> (B, T, 3 + 3 (J - 1)) features."""
    root = joints[..., 0, :]
    traj = torch.cat([root[..., :1] - root[:, :1, :1], root[..., 1:2], root[..., 2:] - root[:, :1, 2:]], -1)
    local = (joints[..., 1:, :] - root.unsqueeze(-2)).flatten(-2)
    return torch.cat([traj, local], -1)


@dataclass
class EvaluatorConfig:
    num_joints: int = 21
    text_dim: int = 384
    hidden: int = 256
    embed_dim: int = 256
    contents: list[str] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)

    @property
    def feature_dim(self) -> int:
        return 3 * self.num_joints

    def to_dict(self) -> dict:
        return asdict(self)


class MotionEncoder(nn.Module):
    def __init__(self, c: EvaluatorConfig) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv1d(c.feature_dim, c.hidden, 4, 2, 1), nn.LeakyReLU(0.2), nn.Dropout(0.1),
            nn.Conv1d(c.hidden, c.hidden, 4, 2, 1), nn.LeakyReLU(0.2))
        self.gru = nn.GRU(c.hidden, c.hidden, batch_first=True, bidirectional=True)
        self.out = nn.Sequential(nn.Linear(2 * c.hidden, c.hidden), nn.LayerNorm(c.hidden),
                                 nn.LeakyReLU(0.2), nn.Linear(c.hidden, c.embed_dim))

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        h = self.convs(x.transpose(1, 2)).transpose(1, 2)
        steps = (lengths // 4).clamp(min=1, max=h.shape[1]).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(h, steps, batch_first=True, enforce_sorted=False)
        _, last = self.gru(packed)
        return self.out(torch.cat([last[0], last[1]], -1))


class Evaluator(nn.Module):
    def __init__(self, config: EvaluatorConfig) -> None:
        super().__init__()
        c = self.config = config
        self.normalizer = Standardizer(c.feature_dim)
        self.motion_encoder = MotionEncoder(c)
        self.text_head = nn.Sequential(nn.Linear(c.text_dim, c.hidden), nn.LayerNorm(c.hidden),
                                       nn.LeakyReLU(0.2), nn.Linear(c.hidden, c.embed_dim))
        self.content_head = nn.Linear(c.embed_dim, len(c.contents)) if c.contents else None
        self.style_head = nn.Linear(c.embed_dim, len(c.styles)) if c.styles else None

    def motion_raw(self, joints: Tensor, lengths: Tensor) -> Tensor:
        return self.motion_encoder(self.normalizer(position_features(joints)), lengths)

    def embed_motion(self, joints: Tensor, lengths: Tensor) -> Tensor:
        """(B, T, J, 3) padded canonical joints + lengths -> (B, E) unit vectors."""
        return nn.functional.normalize(self.motion_raw(joints, lengths), dim=-1)

    def embed_text(self, text_features: Tensor) -> Tensor:
        return nn.functional.normalize(self.text_head(text_features), dim=-1)

    def classify(self, motion_raw: Tensor) -> dict[str, Tensor]:
        out = {}
        if self.content_head is not None:
            out["content"] = self.content_head(motion_raw)
        if self.style_head is not None:
            out["style"] = self.style_head(motion_raw)
        return out


def check_skeleton(config: EvaluatorConfig, skeleton: Skeleton) -> None:
    if config.num_joints != skeleton.num_joints:
        raise ValueError(f"the evaluator expects {config.num_joints} joints, {skeleton.name} has "
                         f"{skeleton.num_joints}")


def pad_joints(clips: list[np.ndarray]) -> tuple[Tensor, Tensor]:
    """(B, T_max, J, 3) with each clip's last frame repeated, and lengths (B,)."""
    lengths = torch.tensor([len(c) for c in clips])
    t = int(lengths.max())
    out = np.stack([np.concatenate([c, np.repeat(c[-1:], t - len(c), 0)]) for c in clips])
    return torch.from_numpy(out).float(), lengths
