"""Lifting metrics: MPJPE, PA-MPJPE and the trivial references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from scipy.spatial import procrustes
from scipy.spatial.transform import Rotation

from free3d.evaluation.lifting import (
    lifting_errors,
    mean_pose_lift,
    mean_root_relative_pose,
    mpjpe,
    pa_mpjpe,
    procrustes_align,
    zero_depth_lift,
)
from free3d.skeleton import get_skeleton


def _poses(*shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).mul(0.3).to(dtype)


def _rotation(seed=0, dtype=torch.float64):
    return torch.from_numpy(Rotation.random(random_state=seed).as_matrix()).to(dtype)


def _centred_error(pred, target):
    """Mean joint distance after removing each frame's centroid (translation only)."""
    p = pred - pred.mean(dim=-2, keepdim=True)
    q = target - target.mean(dim=-2, keepdim=True)
    return (p - q).norm(dim=-1).mean() * 1000


def test_root_is_pelvis():
    assert get_skeleton("bandai21").index("pelvis") == 0


def test_identical_is_zero():
    x = _poses(2, 5, 17, 3)
    assert mpjpe(x, x).item() == 0
    assert pa_mpjpe(x, x).item() == pytest.approx(0, abs=1e-9)
    errs = lifting_errors(x, x)
    assert set(errs) == {"mpjpe_mm", "pa_mpjpe_mm"}
    assert all(isinstance(v, float) for v in errs.values())


def test_translation_is_root_aligned():
    x = _poses(6, 17, 3)
    shift = _poses(6, 1, 3, seed=1) * 10  # a different translation per frame
    assert mpjpe(x + shift, x).item() == pytest.approx(0, abs=1e-9)
    assert pa_mpjpe(x + shift, x).item() == pytest.approx(0, abs=1e-9)


def test_single_joint_offset():
    target = _poses(3, 4, 3)
    pred = target.clone()
    pred[..., 2, 1] += 0.03  # one of 4 joints off by 3 cm -> 30 / 4 mm
    assert mpjpe(pred, target).item() == pytest.approx(7.5, abs=1e-9)
    per_frame = mpjpe(pred, target, reduction="none")
    assert per_frame.shape == (3,)
    torch.testing.assert_close(per_frame, torch.full((3,), 7.5, dtype=torch.float64))


def test_root_offset_moves_every_other_joint():
    target = _poses(1, 4, 3)
    pred = target.clone()
    pred[..., 0, 0] += 0.04  # root off by 4 cm: after root alignment the 3 others are off
    assert mpjpe(pred, target).item() == pytest.approx(30.0, abs=1e-9)
    # With joint 1 as the root, only joint 0 is off.
    assert mpjpe(pred, target, root=1).item() == pytest.approx(10.0, abs=1e-9)


def test_pa_removes_similarity_but_mpjpe_does_not():
    target = _poses(8, 17, 3, seed=2)
    for seed in range(5):
        r = _rotation(seed)
        pred = 1.7 * target @ r.T + torch.tensor([0.5, -2.0, 3.0], dtype=torch.float64)
        assert pa_mpjpe(pred, target).item() == pytest.approx(0, abs=1e-8)
        assert mpjpe(pred, target).item() > 50
        aligned, scale, rotation, translation = procrustes_align(pred, target)
        torch.testing.assert_close(aligned, target)
        torch.testing.assert_close(scale, torch.full((8,), 1 / 1.7, dtype=torch.float64))
        torch.testing.assert_close(rotation, r.T.expand(8, 3, 3))
        assert translation.shape == (8, 3)


def test_pa_not_above_centred_error():
    target = _poses(4, 32, 17, 3, seed=3)
    noise = _poses(4, 32, 17, 3, seed=4) * 0.2
    r = _rotation(7)
    pred = 0.9 * (target + noise) @ r.T + 1.0
    # Guaranteed: Procrustes minimises the sum of squared errors over a superset of
    # the translations that centring chooses.
    aligned = procrustes_align(pred, target)[0]
    sq_pa = (aligned - target).square().sum(dim=(-1, -2))
    p = pred - pred.mean(dim=-2, keepdim=True)
    q = target - target.mean(dim=-2, keepdim=True)
    sq_centred = (p - q).square().sum(dim=(-1, -2))
    assert bool((sq_pa <= sq_centred + 1e-12).all())
    # And on the reported mean-distance metric, for this realistic data.
    per_frame = pa_mpjpe(pred, target, reduction="none")
    assert per_frame.shape == (4, 32)
    assert pa_mpjpe(pred, target) <= _centred_error(pred, target)
    assert pa_mpjpe(pred, target) <= mpjpe(pred, target)
    # Without the rotation and scale the noise is all that is left to explain.
    assert pa_mpjpe(pred, target) <= _centred_error(target + noise, target)


def test_mirror_is_not_aligned():
    target = _poses(3, 17, 3, seed=5)
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))
    pred = target @ mirror
    assert pa_mpjpe(pred, target).item() > 10
    rotation = procrustes_align(pred, target)[2]
    torch.testing.assert_close(torch.linalg.det(rotation), torch.ones(3, dtype=torch.float64))
    # A mirrored pose that is also turned stays unaligned.
    turned = pred @ _rotation(3).T
    assert pa_mpjpe(turned, target).item() == pytest.approx(pa_mpjpe(pred, target).item(), rel=1e-9)


def test_mask_ignores_padding():
    target = _poses(2, 10, 17, 3, seed=6)
    pred = target + _poses(2, 10, 17, 3, seed=7) * 0.05
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[0, :7] = True
    mask[1, :4] = True
    garbage_pred, garbage_target = pred.clone(), target.clone()
    garbage_pred[~mask] = 1e6
    garbage_target[~mask] = float("nan")
    garbage_pred[1, 8] = float("inf")
    for metric in (mpjpe, pa_mpjpe):
        ref = torch.cat([metric(pred[0, :7], target[0, :7], reduction="none"),
                         metric(pred[1, :4], target[1, :4], reduction="none")]).mean()
        got = metric(garbage_pred, garbage_target, mask=mask)
        assert torch.isfinite(got)
        torch.testing.assert_close(got, ref)
        torch.testing.assert_close(metric(pred, target, mask=mask), ref)
        per_frame = metric(garbage_pred, garbage_target, mask=mask, reduction="none")
        assert per_frame.shape == (2, 10)
        assert bool(per_frame[~mask].isnan().all()) and bool(per_frame[mask].isfinite().all())
    errs = lifting_errors(garbage_pred, garbage_target, mask=mask)
    assert all(np.isfinite(v) for v in errs.values())


def test_mask_broadcasts_and_is_checked():
    target = _poses(2, 5, 17, 3, seed=8)
    pred = target + 0.01
    pred[:, 3] += 1.0
    mask = torch.tensor([True, True, True, False, True])  # (T,) shared by the batch
    assert mpjpe(pred, target, mask=mask).item() == pytest.approx(0, abs=1e-9)
    with pytest.raises(ValueError):
        mpjpe(pred, target, mask=torch.ones(3, dtype=torch.bool))
    with pytest.raises(TypeError):
        mpjpe(pred, target, mask=torch.ones(5))
    with pytest.raises(ValueError):
        mpjpe(pred, target, reduction="sum")
    with pytest.raises(ValueError):
        pa_mpjpe(pred[..., :2], target[..., :2])


def test_batched_matches_per_clip():
    target = _poses(3, 6, 17, 3, seed=9)
    pred = target @ _rotation(1).T * 1.1 + _poses(3, 6, 17, 3, seed=10) * 0.03
    for metric in (mpjpe, pa_mpjpe):
        batched = metric(pred, target, reduction="none")
        assert batched.shape == (3, 6)
        for b in range(3):
            torch.testing.assert_close(batched[b], metric(pred[b], target[b], reduction="none"))
        assert metric(pred, target).shape == ()
    # A single (T, J, 3) target broadcasts against a (B, T, J, 3) batch of predictions.
    assert mpjpe(pred, target[0], reduction="none").shape == (3, 6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes(dtype):
    target = _poses(4, 8, 17, 3, seed=11, dtype=dtype)
    pred = (1.3 * target @ _rotation(2, dtype).T + 0.4).to(dtype)
    out_pa, out_mp = pa_mpjpe(pred, target), mpjpe(pred, target)
    assert out_pa.dtype == dtype and out_mp.dtype == dtype
    assert out_pa.item() == pytest.approx(0, abs=1e-2 if dtype == torch.float32 else 1e-8)
    ref = mpjpe(pred.double(), target.double()).item()
    assert out_mp.item() == pytest.approx(ref, rel=1e-5)


def test_pa_hand_computed():
    # A planar cross; pred stretches the x arm to 2x. By symmetry R = I and t = 0, and
    # s = tr(pred^T target) / |pred|^2 = (4 + 2) / 10 = 0.6, so the aligned pred is
    # (+-1.2, 0), (0, +-0.6): errors 0.2, 0.2, 0.4, 0.4 m -> 300 mm.
    target = torch.tensor([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]], dtype=torch.float64)
    pred = torch.tensor([[2.0, 0, 0], [-2, 0, 0], [0, 1, 0], [0, -1, 0]], dtype=torch.float64)
    assert pa_mpjpe(pred, target).item() == pytest.approx(300.0, abs=1e-9)
    assert procrustes_align(pred, target)[1].item() == pytest.approx(0.6)
    # Root-aligned on joint 0: errors 0, 2, 1, 1 m -> 1000 mm.
    assert mpjpe(pred, target).item() == pytest.approx(1000.0, abs=1e-9)


def _brute_force_pa(pred: np.ndarray, target: np.ndarray) -> float:
    """Minimise sum sq over (log s, rotation vector, t), proper rotations only."""
    def aligned(x):
        return np.exp(x[0]) * Rotation.from_rotvec(x[1:4]).apply(pred) + x[4:]

    def cost(x):
        return np.square(aligned(x) - target).sum()

    best = min((minimize(cost, np.concatenate([[0.0], rv, [0, 0, 0]]), method="BFGS",
                         options={"gtol": 1e-12})
                for rv in Rotation.random(8, random_state=0).as_rotvec()), key=lambda r: r.fun)
    return float(np.linalg.norm(aligned(best.x) - target, axis=-1).mean() * 1000)


def test_pa_three_points_against_numpy():
    rng = np.random.default_rng(12)
    target = rng.normal(size=(3, 3))
    pred = 0.7 * Rotation.random(random_state=4).apply(target) + 0.2 + rng.normal(size=(3, 3)) * 0.1
    got = pa_mpjpe(torch.from_numpy(pred), torch.from_numpy(target)).item()
    assert got > 1
    assert got == pytest.approx(_brute_force_pa(pred, target), rel=1e-5)
    # scipy's procrustes (target standardised to unit norm, pred fitted onto it).
    mtx1, mtx2, _ = procrustes(target, pred)
    norm = np.linalg.norm(target - target.mean(0))
    expected = np.linalg.norm((mtx2 - mtx1) * norm, axis=-1).mean() * 1000
    assert got == pytest.approx(expected, rel=1e-9)


def test_pa_mirror_against_brute_force():
    # Where the unconstrained optimum is a reflection, the answer is the best proper rotation.
    rng = np.random.default_rng(13)
    target = rng.normal(size=(6, 3))
    pred = target * np.array([1.0, -1.0, 1.0]) + rng.normal(size=(6, 3)) * 0.05
    got = pa_mpjpe(torch.from_numpy(pred), torch.from_numpy(target)).item()
    assert got == pytest.approx(_brute_force_pa(pred, target), rel=1e-5)
    # scipy allows the reflection, so its fit is better than ours.
    mtx1, mtx2, _ = procrustes(target, pred)
    reflected = np.linalg.norm((mtx2 - mtx1) * np.linalg.norm(target - target.mean(0)), axis=-1).mean()
    assert reflected * 1000 < got / 5


def test_degenerate_frame_is_finite():
    target = _poses(2, 17, 3, seed=14)
    pred = torch.zeros(2, 17, 3, dtype=torch.float64)  # all joints collapsed
    out = pa_mpjpe(pred, target, reduction="none")
    assert bool(out.isfinite().all())
    # The best fit of a point is the target's centroid.
    expected = (target - target.mean(dim=-2, keepdim=True)).norm(dim=-1).mean(dim=-1) * 1000
    torch.testing.assert_close(out, expected)


def test_gradients_flow():
    target = _poses(3, 17, 3, seed=15)
    pred = (target + _poses(3, 17, 3, seed=16) * 0.05).requires_grad_()
    mask = torch.tensor([True, True, False])  # the padded frame's SVD sees zeros
    (mpjpe(pred, target, mask=mask) + pa_mpjpe(pred, target, mask=mask)).backward()
    assert pred.grad is not None and bool(pred.grad.isfinite().all())
    assert bool((pred.grad[2] == 0).all()) and bool((pred.grad[:2] != 0).any())


def test_zero_depth_lift():
    j2d = _poses(2, 5, 17, 2, seed=17)
    lifted = zero_depth_lift(j2d)
    assert lifted.shape == (2, 5, 17, 3)
    torch.testing.assert_close(lifted[..., :2], j2d)
    assert bool((lifted[..., 2] == 0).all())
    with pytest.raises(ValueError):
        zero_depth_lift(_poses(5, 17, 3))
    # A camera-frame view of a flat (z = 0) pose, turned into the world: PA-MPJPE
    # forgives the camera rotation, MPJPE does not.
    flat = _poses(4, 17, 3, seed=18)
    flat[..., 2] = 0
    world = flat @ _rotation(5).T
    assert pa_mpjpe(zero_depth_lift(flat[..., :2]), world).item() == pytest.approx(0, abs=1e-8)
    assert mpjpe(zero_depth_lift(flat[..., :2]), world).item() > 10


def test_mean_pose_lift():
    train = _poses(3, 20, 17, 3, seed=19)
    mean = mean_root_relative_pose(train)
    assert mean.shape == (17, 3)
    torch.testing.assert_close(mean[0], torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(mean, (train - train[..., :1, :]).mean(dim=(0, 1)))
    lifted = mean_pose_lift(mean, 12)
    assert lifted.shape == (12, 17, 3)
    torch.testing.assert_close(lifted, mean.expand(12, 17, 3))
    lifted[0, 0, 0] = 5.0  # an independent copy, not a view
    assert mean[0, 0].item() == 0
    assert mean_pose_lift(mean.expand(2, 17, 3), 4).shape == (2, 4, 17, 3)
    errs = lifting_errors(mean_pose_lift(mean, 20), train[0])
    assert errs["pa_mpjpe_mm"] <= errs["mpjpe_mm"] + 1e-6
