import math

import numpy as np
import pytest
import torch

from free3d.evaluation.lifting import lifting_errors, mpjpe, pa_mpjpe, procrustes_align
from free3d.representation import random_view_rotations, rotate


def pose(seed=0, joints=6, frames=5, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(frames, joints, 3, generator=g, dtype=dtype) * 0.3


def test_identical_and_translated_poses_have_zero_error():
    p = pose()
    assert mpjpe(p, p) == 0 and pa_mpjpe(p, p) < 1e-9
    assert mpjpe(p + torch.tensor([1.0, -2.0, 3.0], dtype=p.dtype), p) < 1e-9


def test_one_joint_off_by_3_cm_of_4_is_7_5_mm():
    t = torch.zeros(1, 4, 3, dtype=torch.float64)
    t[0, 1:, 0] = torch.tensor([0.1, 0.2, 0.3])
    p = t.clone()
    p[0, 2, 1] += 0.03
    assert float(mpjpe(p, t)) == pytest.approx(7.5)


def test_pa_mpjpe_removes_rotation_scale_and_translation_but_not_reflection():
    t = pose(frames=8)
    r = random_view_rotations(8, max_tilt_deg=80, generator=torch.Generator().manual_seed(1),
                              dtype=torch.float64)
    p = 1.7 * rotate(t, r) + torch.tensor([0.5, 0.0, -1.0], dtype=t.dtype)
    assert pa_mpjpe(p, t) < 1e-6 and mpjpe(p, t) > 10
    mirrored = t * torch.tensor([-1.0, 1.0, 1.0], dtype=t.dtype)
    assert pa_mpjpe(mirrored, t) > 1.0  # a reflection is not a rotation


def test_pa_mpjpe_against_brute_force_and_never_above_centred_error():
    t, p = pose(0, joints=3, frames=1)[0], pose(1, joints=3, frames=1)[0]
    best = math.inf
    tn, pn = t.numpy(), p.numpy()
    for ang in np.linspace(-math.pi, math.pi, 721):  # brute force over rotations about z ...
        for axis in range(3):  # ... and the other two axes, with the optimal scale and shift
            c, s = math.cos(ang), math.sin(ang)
            rot = np.eye(3)
            i, j = [k for k in range(3) if k != axis]
            rot[i, i], rot[i, j], rot[j, i], rot[j, j] = c, -s, s, c
            q = (pn - pn.mean(0)) @ rot.T
            scale = (q * (tn - tn.mean(0))).sum() / (q * q).sum()
            err = np.linalg.norm(scale * q + tn.mean(0) - tn, axis=-1).mean() * 1000
            best = min(best, err)
    assert float(pa_mpjpe(p[None], t[None])) <= best + 1e-6
    centred = (p - p.mean(0)) - (t - t.mean(0))
    assert float(pa_mpjpe(p[None], t[None])) <= float(centred.norm(dim=-1).mean() * 1000) + 1e-9


def test_aligned_pose_is_a_similarity_of_the_prediction():
    t, p = pose(2), pose(3)
    a = procrustes_align(p, t)
    dp = torch.cdist(p, p)
    da = torch.cdist(a, a)
    ratio = da[..., 0, 1] / dp[..., 0, 1]
    assert torch.allclose(da, dp * ratio[:, None, None], atol=1e-9)


def test_mask_ignores_padded_frames_and_batches_work():
    t = pose(frames=6)[None].repeat(3, 1, 1, 1)
    p = t.clone()
    p[:, 4:] += 10.0  # garbage in padding
    mask = torch.ones(3, 6, dtype=torch.bool)
    mask[:, 4:] = False
    assert float(mpjpe(p, t, mask=mask)) == pytest.approx(0.0, abs=1e-9)
    assert float(pa_mpjpe(p, t, mask=mask)) == pytest.approx(0.0, abs=1e-6)
    assert mpjpe(p, t, reduction="none").shape == (3, 6)
    e32 = lifting_errors(p.float(), t.float(), mask=mask)
    assert e32["mpjpe_mm"] == pytest.approx(0.0, abs=1e-3)
