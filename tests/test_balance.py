"""Drawing rare kinds of motion more often (free3d.data.balance) in both training loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from free3d.data.balance import caption_rarity_weights
from free3d.training.generation import TokenBatches, TokenData
from free3d.training.lifting import ClipArrays

WORDS = ("walks", "bows", "runs")


def embed(texts: list[str]) -> torch.Tensor:
    """A stand-in text encoder: one axis per verb, a little noise from the rest."""
    out = torch.zeros(len(texts), len(WORDS) + 1)
    for i, t in enumerate(texts):
        out[i, [w in t for w in WORDS].index(True)] = 1.0
        out[i, -1] = 0.05 * (len(t) % 3)
    return out


# nine walks, one bow, three runs
CAPTIONS = [[f"a person walks {k}", "someone walks"] for k in range(9)] + [["a man bows"]] + \
    [[f"he runs {k}"] for k in range(3)]


def test_rare_captions_weigh_more_and_power_sets_how_much():
    uniform = caption_rarity_weights(CAPTIONS, embed, power=0.0)
    assert np.array_equal(uniform, np.ones(len(CAPTIONS)))
    sqrt = caption_rarity_weights(CAPTIONS, embed, power=0.5)
    assert sqrt.mean() == pytest.approx(1.0)
    assert sqrt[9] / sqrt[0] == pytest.approx(3.0)  # sqrt(9 walks / 1 bow)
    assert sqrt[10] / sqrt[0] == pytest.approx(np.sqrt(3.0))
    full = caption_rarity_weights(CAPTIONS, embed, power=1.0)
    # power 1: each kind of caption gets the same share, whatever its count
    shares = [full[:9].sum(), full[9], full[10:].sum()]
    assert np.allclose(shares, shares[0])
    with pytest.raises(ValueError, match="balance power must be >= 0"):
        caption_rarity_weights(CAPTIONS, embed, power=-1)
    # a clip without captions is a kind of its own
    assert caption_rarity_weights([[], *CAPTIONS[:2]], embed, power=1.0)[0] == pytest.approx(
        2 * caption_rarity_weights([[], *CAPTIONS[:2]], embed, power=1.0)[1])


def test_weighted_windows_follow_the_weights():
    lengths = [50, 60, 45, 30]  # the last is shorter than the window: never drawn
    clips = [{"x": np.zeros((n, 1), dtype=np.float32)} for n in lengths]
    arrays = ClipArrays.stack(clips)
    arrays.weights = np.array([1.0, 3.0, 0.0, 100.0])
    _, pick = arrays.draw(4000, 40, torch.Generator().manual_seed(0))
    counts = np.bincount(pick, minlength=4)
    assert counts[2] == 0 and counts[3] == 0
    assert counts[1] / counts[0] == pytest.approx(3.0, rel=0.15)
    uniform = ClipArrays.stack(clips)  # no weights: as before, uniformly over the clips that fit
    counts = np.bincount(uniform.draw(3000, 40, torch.Generator().manual_seed(0))[1], minlength=4)
    assert counts[3] == 0 and min(counts[:3]) > 900


def test_token_batches_draw_the_rare_clip_more_often():
    codes = [[torch.full((5, 2), i)] for i in range(len(CAPTIONS))]
    tokens = TokenData(codes, CAPTIONS, [20] * len(CAPTIONS))

    def bow_share(balance: float) -> float:
        batches = TokenBatches(tokens, embed, balance=balance)
        drawn = batches.sample(4000, torch.Generator().manual_seed(0))["codes"][:, 0, 0]
        return float((drawn == 9).float().mean())

    assert bow_share(0.0) == pytest.approx(1 / 13, abs=0.015)
    assert bow_share(1.0) == pytest.approx(1 / 3, abs=0.03)


def test_ml_rq_training_clips_carry_caption_weights(procedural_dataset):
    from free3d.data.motion2d import Motion2DDataset
    from free3d.skeleton import get_skeleton
    from free3d.training.lifting import load_training_clips, make_config

    skeleton = get_skeleton("bandai21")
    n = len(Motion2DDataset(procedural_dataset, "train"))
    plain = load_training_clips(make_config("mlrq", procedural_dataset, prior="p", balance=0.0), skeleton)
    assert plain.weights is None
    cfg = make_config("mlrq", procedural_dataset, prior="p", balance=0.5, mirror_clips=True)
    arrays = load_training_clips(cfg, skeleton)
    assert arrays.weights.shape == (2 * n,) and np.array_equal(arrays.weights[:n], arrays.weights[n:])
    assert arrays.weights.min() > 0 and arrays.to("cpu").weights is arrays.weights
