import pytest
import torch

from free3d.representation import rotate, rotation_y, to_free3d
from free3d.rigid_depth import clip_limb_lengths, rigid_depth, rigid_lift
from free3d.skeleton import get_skeleton

S = get_skeleton("bandai21")


def turning_body(frames: int = 10) -> torch.Tensor:
    """(T, K, 3) limbs of the rest pose turning from facing the camera to side-on: every
    limb lies in the image plane in the first frame (the feet in the last)."""
    rest = torch.from_numpy(S.rest_pose()).double().expand(frames, -1, -1)
    turned = rotate(rest, rotation_y(torch.linspace(0.0, torch.pi / 2, frames, dtype=torch.float64)))
    return to_free3d(turned, S).limbs


def test_a_lift_with_the_right_lengths_and_signs_comes_back_exactly():
    truth = turning_body()
    torch.testing.assert_close(rigid_lift(truth[..., :2], truth, S), truth)


def test_a_flattened_lift_gets_its_depth_back_from_the_2d_lengths():
    truth = turning_body()
    flat = truth * torch.tensor([1.0, 1.0, 0.2], dtype=torch.float64)  # right signs, a fifth of the size
    torch.testing.assert_close(rigid_lift(truth[..., :2], flat, S), truth)


def test_signs_come_from_the_lift_and_lengths_are_shared_by_left_and_right():
    truth = turning_body()
    mirrored = truth * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64)
    torch.testing.assert_close(rigid_lift(truth[..., :2], mirrored, S), mirrored)
    seen = truth[..., :2].clone()
    seen[..., S.limb("left_wrist"), :] *= 0.5  # the left forearm always points at the camera
    lengths = clip_limb_lengths(seen, S)
    assert lengths[S.limb("left_wrist")] == pytest.approx(truth[0, S.limb("right_wrist")].norm().item())
    # one outlying 2D frame sets the length: that frame gets zero depth, never NaN
    long2d = truth[..., :2].clone()
    long2d[3, S.limb("left_wrist")] *= 3.0
    out = rigid_lift(long2d, truth, S)
    assert torch.isfinite(out).all() and out[3, S.limb("left_wrist"), 2] == 0


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
    torch.testing.assert_close(out[..., 2].abs(), truth[..., 2].abs())
