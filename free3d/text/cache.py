"""An on-disk cache of caption embeddings: training encodes each caption once."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .encoders import TextEncoder


def default_cache_path(encoder_name: str) -> Path:
    """``$FREE3D_CACHE`` or ``~/.cache/free3d``, one file per text encoder."""
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    root = os.environ.get("FREE3D_CACHE") or home / "free3d"
    return Path(root) / f"text-embeddings-{encoder_name}.npz"


class EmbeddingCache:
    """Embeddings of texts under one encoder, stored as ``<path>`` (npz: texts, embeddings)."""

    def __init__(self, path: str | os.PathLike, encoder: TextEncoder) -> None:
        self.path, self.encoder = Path(path), encoder
        self.table: dict[str, np.ndarray] = {}
        if self.path.is_file():
            data = np.load(self.path, allow_pickle=False)
            if str(data["encoder"]) == encoder.name:
                # float32 whatever the file holds (a cache shipped in float16 to save space)
                self.table = dict(zip(data["texts"].tolist(), data["embeddings"].astype(np.float32)))

    @property
    def name(self) -> str:
        return self.encoder.name

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def encode(self, texts: list[str]) -> Tensor:
        """As ``TextEncoder.encode``, through the cache: a cache can stand in for its encoder."""
        return self(list(texts))

    def __call__(self, texts: list[str]) -> Tensor:
        missing = sorted({t for t in texts if t not in self.table})
        if missing:
            for t, e in zip(missing, self.encoder.encode(missing).numpy()):
                self.table[t] = e
            self.save()
        return torch.from_numpy(np.stack([self.table[t] for t in texts])) if texts else \
            torch.zeros(0, self.encoder.dim)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        texts = list(self.table)
        tmp = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez(tmp, encoder=np.array(self.encoder.name), texts=np.array(texts, dtype=str),
                 embeddings=np.stack([self.table[t] for t in texts]).astype(np.float32))
        os.replace(tmp, self.path)
