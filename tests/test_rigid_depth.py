import pytest
import torch

from free3d.representation import rotate, rotation_y, to_free3d
from free3d.rigid_depth import clip_limb_lengths, rigid_depth, rigid_lift
from free3d.skeleton import get_skeleton

S = get_skeleton("bandai21")


def turning_body(frames: int = 10) -> torch.Tensor:
    """(T, K, 3) limbs of the rest pose turning from facing the camera to side-on."""
    rest = torch.from_numpy(S.rest_pose()).double().expand(frames, -1, -1)
    turned = rotate(rest, rotation_y(torch.linspace(0.0, 1.5, frames, dtype=torch.float64)))
    return to_free3d(turned, S).limbs


def test_a_lift_with_the_right_lengths_and_signs_comes_back_exactly():
    truth = turning_body()
    torch.testing.assert_close(rigid_lift(truth[..., :2], truth, S), truth)


def test_a_flattened_lift_gets_its_depth_back_from_the_2d_lengths():
    truth = turning_body()
    flat = truth * torch.tensor([1.0, 1.0, 0.2], dtype=torch.float64)  # right signs, a fifth of the size
    out = rigid_lift(truth[..., :2], flat, S)
    torch.testing.assert_close(out[..., :2], truth[..., :2])  # the view is kept
    # frame 0 faces the camera: every limb but the feet shows its full length in 2D
    full = [k for k in range(S.num_limbs) if k not in (S.limb("left_toe"), S.limb("right_toe"))]
    torch.testing.assert_close(out[:, full], truth[:, full])
    assert (out[..., 2] - truth[..., 2]).abs().mean() < 0.3 * (flat[..., 2] - truth[..., 2]).abs().mean()


def test_signs_come_from_the_lift_and_lengths_are_shared_by_left_and_right():
    truth = turning_body()
    mirrored = truth * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    torch.testing.assert_close(rigid_lift(truth[..., :2], mirrored, S), mirrored)
    short = truth.clone()
    short[..., S.limb("left_wrist"), :] *= 0.5  # the lift's left forearm is too short
    twin = S.limb("right_wrist")
    assert clip_limb_lengths(truth[..., :2], S, short)[S.limb("left_wrist")] == \
        pytest.approx(truth[0, twin].norm().item())
    # a 2D limb longer than any estimate gets zero depth, never NaN
    long2d = truth[..., :2].clone()
    long2d[3, S.limb("left_wrist")] *= 3.0
    assert torch.isfinite(rigid_lift(long2d, truth, S)).all()


def test_bad_shapes_are_refused():
    truth = turning_body()
    with pytest.raises(ValueError, match=r"\(T, K, 2\)"):
        rigid_lift(truth, truth, S)
    with pytest.raises(ValueError, match="does not match"):
        rigid_lift(truth[..., :2], truth[:3], S)


def test_random_signs_alone_leave_the_size_right():
    truth = turning_body()
    signs = torch.where(torch.arange(S.num_limbs) % 2 == 0, 1.0, -1.0).expand(truth.shape[:2])
    out = rigid_depth(truth[..., :2], signs, clip_limb_lengths(truth[..., :2], S))
    full = [k for k in range(S.num_limbs) if k not in (S.limb("left_toe"), S.limb("right_toe"))]
    torch.testing.assert_close(out[:, full, 2].abs(), truth[:, full, 2].abs())
