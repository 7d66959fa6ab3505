"""How often to draw each training clip: rare kinds of motion more than their share.

Motion datasets are lopsided (Bandai-Namco: 264 training runs, 14 walks backwards, 12
bows), and a model drawn uniformly over clips learns the rare kinds last or never. No
labels are needed: a clip is rare when few clips have captions like its own. Each
clip's captions are embedded and averaged; its *neighbours* are the clips whose mean
embedding is within cosine ``similarity`` of it (itself included); it is drawn with a
weight ``neighbours ** -power``: 0 keeps uniform drawing, 1 gives every neighbourhood
the same share, 0.5 (square-root balancing) sits between.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor


def caption_rarity_weights(captions: Sequence[Sequence[str]], embed: Callable[[list[str]], Tensor], *,
                           power: float = 0.5, similarity: float = 0.9) -> np.ndarray:
    """(N,) float64 drawing weights of N clips from their captions, with mean 1.

    ``embed`` maps a list of texts to (n, D) embeddings (a text encoder or an
    :class:`~free3d.text.EmbeddingCache`). A clip without captions counts as its own
    neighbourhood of one.
    """
    if power < 0:
        raise ValueError(f"balance power must be >= 0; got {power}")
    n = len(captions)
    if n == 0 or power == 0:
        return np.ones(n)
    texts = sorted({c for caps in captions for c in caps})
    index = {t: i for i, t in enumerate(texts)}
    table = torch.nn.functional.normalize(embed(texts).double(), dim=-1) if texts else None
    means = torch.zeros(n, table.shape[1] if table is not None else 1, dtype=torch.float64)
    for i, caps in enumerate(captions):
        if caps:
            means[i] = table[[index[c] for c in caps]].mean(0)
    means = torch.nn.functional.normalize(means, dim=-1)
    similar = (means @ means.T) > similarity
    similar |= torch.eye(n, dtype=torch.bool)  # captionless clips: themselves only
    neighbours = similar.sum(1).double()
    weights = neighbours.pow(-power).numpy()
    return weights / weights.mean()
