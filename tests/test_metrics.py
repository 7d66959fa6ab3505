"""Generation metrics against hand-computed values (issue 5, item 5)."""

import math

import numpy as np
import pytest

from free3d.evaluation.metrics import (
    diversity,
    fid,
    frechet_distance,
    mean_interval,
    multimodality,
    quality_multimodality,
    r_precision,
)


def test_fid_of_identical_sets_is_zero():
    x = np.random.default_rng(0).normal(size=(500, 8))
    assert abs(fid(x, x)) < 1e-6


def test_fid_of_two_known_gaussians_matches_the_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = np.zeros(3), np.array([1.0, -2.0, 0.5])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 1.0])
    # diagonal covariances: ||mu1 - mu2||^2 + sum (sqrt(v1) - sqrt(v2))^2
    exact = float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(var1) - np.sqrt(var2)) ** 2).sum())
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(exact, rel=1e-9)
    a = rng.normal(mu1, np.sqrt(var1), size=(200_000, 3))
    b = rng.normal(mu2, np.sqrt(var2), size=(200_000, 3))
    assert fid(a, b) == pytest.approx(exact, rel=0.02)


def test_r_precision_is_one_on_identical_embeddings_and_chance_on_random_ones():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(320, 16))
    top, mm = r_precision(x, x, rng=rng)
    np.testing.assert_allclose(top, [1.0, 1.0, 1.0])
    assert mm == pytest.approx(0.0, abs=1e-9)
    text, motion = rng.normal(size=(32 * 300, 16)), rng.normal(size=(32 * 300, 16))
    top, _ = r_precision(text, motion, rng=rng)
    np.testing.assert_allclose(top, [1 / 32, 2 / 32, 3 / 32], atol=0.006)
    with pytest.raises(ValueError, match="at least 32"):
        r_precision(x[:10], x[:10])


def test_diversity_on_a_known_set():
    # 300 points on a line at 0 and 400 others at distance 2: pairs drawn among all 700
    motion = np.zeros((300, 2))
    assert diversity(motion) == 0.0
    two = np.concatenate([np.zeros((300, 2)), np.full((300, 2), [3.0, 4.0])])
    value = diversity(two, pairs=300, rng=np.random.default_rng(0))
    assert 0 < value < 5  # distance is 0 or 5; about half the pairs straddle
    assert value == pytest.approx(2.5, abs=0.5)
    with pytest.raises(ValueError, match="at least 300"):
        diversity(np.zeros((10, 2)))


def test_multimodality_on_a_known_set():
    # generations of text t alternate between two points 2 * t apart
    texts, gens = 4, 30
    motion = np.zeros((texts, gens, 1))
    for t in range(texts):
        motion[t, 1::2, 0] = 2.0 * t
    rng = np.random.default_rng(0)
    a = rng.choice(gens, 10, replace=False)
    b = rng.choice(gens, 10, replace=False)
    straddle = float(((a % 2) != (b % 2)).mean())
    expected = np.mean([2.0 * t * straddle for t in range(texts)])
    assert multimodality(motion, rng=np.random.default_rng(0)) == pytest.approx(expected)
    assert multimodality(np.ones((3, 10, 5))) == 0.0


def test_qm_and_interval():
    assert quality_multimodality(4.0, 1.0) == 2.0
    mean, half = mean_interval([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and half == pytest.approx(1.96 * np.std([1, 2, 3, 4]) / math.sqrt(4))
