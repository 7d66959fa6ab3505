"""Text-to-motion metrics with the HumanML3D protocol (DESIGN.md section 6).

All take evaluator embeddings: motion features (N, D) and text features (N, D) in the
evaluator's joint space. Distances are Euclidean, as in the T2M evaluator.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import linalg


def fid(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature sets a (N, D) and b (M, D)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return frechet_distance(mu_a, cov_a, mu_b, cov_b)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(C1 + C2 - 2 sqrt(C1 C2)) (closed form for Gaussians)."""
    diff = mu1 - mu2
    covmean = linalg.sqrtm(cov1 @ cov2)
    if not np.isfinite(covmean).all():  # near-singular product: regularise, as the T2M code does
        offset = np.eye(cov1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    covmean = covmean.real
    value = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean))
    return max(value, 0.0)  # a distance: tiny negatives are rounding


def _distances(text: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """(N, N) Euclidean distances, row i: text i to every motion."""
    sq = (text ** 2).sum(1)[:, None] + (motion ** 2).sum(1)[None] - 2 * text @ motion.T
    return np.sqrt(np.maximum(sq, 0.0))


def r_precision(text: np.ndarray, motion: np.ndarray, *, pool: int = 32, top_k: int = 3,
                rng: np.random.Generator | None = None) -> tuple[np.ndarray, float]:
    """R-precision top-1..top_k and MM-Dist over pools of ``pool`` matched pairs.

    Pairs are shuffled (by ``rng``) and cut into pools; in each, every text ranks the
    pool's motions by distance, and a hit at rank <= k counts for top-k. Leftover pairs
    that do not fill a pool are dropped, as in the T2M evaluation. MM-Dist is the mean
    distance of each text to its own motion.
    """
    n = len(text)
    if n < pool:
        raise ValueError(f"R-precision needs at least {pool} pairs, got {n}")
    order = (rng or np.random.default_rng(0)).permutation(n)
    hits = np.zeros(top_k)
    pools = n // pool
    for p in range(pools):
        idx = order[p * pool:(p + 1) * pool]
        d = _distances(text[idx], motion[idx])
        rank = (d < np.diag(d)[:, None]).sum(1)  # how many motions beat the true one
        hits += np.array([(rank < k).mean() for k in range(1, top_k + 1)])
    matched = np.linalg.norm(text - motion, axis=1).mean()
    return hits / pools, float(matched)


def diversity(motion: np.ndarray, *, pairs: int = 300, rng: np.random.Generator | None = None) -> float:
    """Mean distance between motions i_k and j_k, k < ``pairs``, where i and j are two
    independent draws of ``pairs`` distinct indices (the T2M evaluation's recipe)."""
    if len(motion) < pairs:
        raise ValueError(f"diversity over {pairs} pairs needs at least {pairs} motions, got {len(motion)}")
    rng = rng or np.random.default_rng(0)
    a = rng.choice(len(motion), pairs, replace=False)
    b = rng.choice(len(motion), pairs, replace=False)
    return float(np.linalg.norm(motion[a] - motion[b], axis=1).mean())


def multimodality(motion: np.ndarray, *, pairs: int = 10, rng: np.random.Generator | None = None) -> float:
    """motion (texts, generations, D): for each text, the mean distance between generations
    i_k and j_k (two draws of ``pairs`` distinct indices, shared by all texts), averaged."""
    t, g, _ = motion.shape
    if g < pairs:
        raise ValueError(f"multimodality over {pairs} pairs needs at least {pairs} generations per text")
    rng = rng or np.random.default_rng(0)
    a = rng.choice(g, pairs, replace=False)
    b = rng.choice(g, pairs, replace=False)
    return float(np.linalg.norm(motion[:, a] - motion[:, b], axis=-1).mean())


def quality_multimodality(multimodality_value: float, fid_value: float) -> float:
    """QM = sqrt(MultiModality / FID) (paper eq. 16): higher is better."""
    return math.sqrt(multimodality_value / max(fid_value, 1e-12))


def mean_interval(values) -> tuple[float, float]:
    """Mean and 95% half-interval 1.96 std / sqrt(n) of repeated measurements."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(1.96 * v.std() / math.sqrt(len(v)))
