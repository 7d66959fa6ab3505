"""Lcycle, Lfloor, Lskate, Lprop, grounding and the floor-levelling upright estimate, on hand-built cases."""

import math

import numpy as np
import pytest
import torch

from free3d.data.canonical import floor_tilt, upright_transform
from free3d.losses import cycle_loss, floor_loss, foot_skate_loss
from free3d.representation import rotate, rotation_x, rotation_y, to_free3d
from free3d.skeleton import get_skeleton

S = get_skeleton("bandai21")


def walk(frames: int = 40, batch: int = 3, speed: float = 0.07) -> torch.Tensor:
    """(B, T, J, 3) a rest pose walking along +Z with swinging legs, upright, on the floor."""
    rest = torch.from_numpy(S.rest_pose()).double()
    rest = rest - torch.tensor([0.0, float(rest[:, 1].min()), 0.0], dtype=torch.float64)
    t = torch.arange(frames, dtype=torch.float64)
    joints = rest.expand(frames, -1, -1).clone()
    joints[..., 2] += (t * speed)[:, None]
    for side, phase in (("left", 0.0), ("right", math.pi)):
        for j in ("knee", "ankle", "toe"):  # legs swing forwards and back
            joints[:, S.index(f"{side}_{j}"), 2] += 0.1 * torch.sin(t / 3 + phase)
    return joints.expand(batch, -1, -1, -1).clone()


def exact_lifter(truth_turned):
    """A 'lifter' that returns the true 3D of whatever view it is shown."""
    def lift(traj2, limbs2):
        return truth_turned["traj"], truth_turned["limbs"]
    return lift


def test_cycle_loss_is_zero_for_an_exact_lifter_and_positive_for_a_flat_one():
    joints = walk()
    traj, limbs = to_free3d(joints, S)
    gen = torch.Generator().manual_seed(0)
    # an exact lifter: asked for the view the cycle draws, it answers that view's 3D
    from free3d.losses import _view_scale, upright_rotation
    from free3d.representation import random_view_rotations

    rot = random_view_rotations(3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    rot = rot @ upright_rotation(limbs, S)
    scale = _view_scale(limbs, rot, S)
    truth = {"traj": rotate(traj, rot) * scale[:, None, None],
             "limbs": rotate(limbs, rot.unsqueeze(1)) * scale[:, None, None, None]}
    exact = cycle_loss(exact_lifter(truth), traj, limbs, S, generator=torch.Generator().manual_seed(0))
    assert float(exact) < 1e-20

    # a lifter that flattens depth (returns its 2D input with z = 0) pays
    def flat(traj2, limbs2):
        return (torch.nn.functional.pad(traj2, (0, 1)), torch.nn.functional.pad(limbs2, (0, 1)))
    assert float(cycle_loss(flat, traj, limbs, S, generator=gen)) > 1e-3


def test_cycle_loss_with_a_fixed_root_moves_the_second_lift_only_on_the_root():
    joints = walk()
    traj, limbs = to_free3d(joints, S)
    traj.requires_grad_(True)
    limbs.requires_grad_(True)
    weight = torch.tensor(0.9, dtype=torch.float64, requires_grad=True)

    def lift(traj2, limbs2):  # a one-weight lifter: the cycle's second lift
        return (weight * torch.nn.functional.pad(traj2, (0, 1)),
                weight * torch.nn.functional.pad(limbs2, (0, 1)))

    for fixed, root_moves in ((False, True), (True, False)):
        for t in (traj, limbs, weight):
            t.grad = None
        cycle_loss(lift, traj, limbs, S, fixed_root=fixed,
                   generator=torch.Generator().manual_seed(0)).backward()
        assert (traj.grad is not None and float(traj.grad.abs().sum()) > 0) == root_moves
        assert float(limbs.grad.abs().sum()) > 0  # the limbs still answer to it
        assert float(weight.grad.abs()) > 0  # and the second lift learns from the root


def test_floor_loss_flags_a_climbing_walk_and_not_a_level_one():
    traj, limbs = to_free3d(walk(), S)
    assert float(floor_loss(traj, limbs, S)) < 1e-6
    climbing = traj.clone()
    climbing[..., 1] += torch.linspace(0, 0.6, traj.shape[1], dtype=torch.float64)
    assert float(floor_loss(climbing, limbs, S)) > 1e-3
    # an elevated camera's view of the level walk with its depth kept: still level
    tilt = rotation_x(torch.tensor(math.radians(15.0), dtype=torch.float64))
    seen = rotate(walk(), tilt)
    assert float(floor_loss(*to_free3d(seen, S), S)) < 1e-4


def stepping_walk(frames: int = 40, speed: float = 0.035, step: int = 10) -> torch.Tensor:
    """(1, T, J, 3) a walk along +Z whose feet take turns: the stance foot stays where it
    landed, on the floor; the swing foot moves at twice the body's speed, 10 cm up."""
    rest = torch.from_numpy(S.rest_pose()).double()
    rest = rest - torch.tensor([0.0, float(rest[:, 1].min()), 0.0], dtype=torch.float64)
    t = torch.arange(frames, dtype=torch.float64)
    joints = rest.expand(frames, -1, -1).clone()
    joints[..., 2] += (t * speed)[:, None]
    for k, side in enumerate(("left", "right")):
        stance = (t // step) % 2 == k
        world_z = torch.cumsum(torch.where(stance, 0.0, 2 * speed), 0)  # the foot's travel
        for j in ("ankle", "toe"):
            i = S.index(f"{side}_{j}")
            joints[:, i, 2] = rest[i, 2] + world_z
            joints[:, i, 1] = rest[i, 1] + torch.where(stance, 0.0, 0.1)
    return joints[None]


def test_skate_loss_tells_a_walk_from_the_same_steps_sliding_or_walked_backwards():
    joints = stepping_walk()
    traj, limbs = to_free3d(joints, S)
    planted = float(foot_skate_loss(traj, limbs, S))
    assert planted < 1e-2
    # the same limbs, the root's depth travel reversed: the planted foot now slides back
    back = traj.clone()
    back[..., 2] = traj[:, :1, 2] - (traj[..., 2] - traj[:, :1, 2])
    assert float(foot_skate_loss(back, limbs, S)) > 100 * planted + 1.0
    # standing still and sliding forward
    stand = torch.from_numpy(S.rest_pose()).double().expand(1, 40, -1, -1).clone()
    slide = stand.clone()
    slide[..., 2] += (torch.arange(40, dtype=torch.float64) * 0.035)[None, :, None]
    assert float(foot_skate_loss(*to_free3d(stand, S), S)) < 1e-8
    assert float(foot_skate_loss(*to_free3d(slide, S), S)) > 0.4  # 0.7 m/s, squared
    # seen by an elevated camera the planted walk is still planted (the clip is stood up)
    seen = rotate(joints, rotation_x(torch.tensor(math.radians(15.0), dtype=torch.float64)))
    assert float(foot_skate_loss(*to_free3d(seen, S), S)) < 1e-2
    # the gradient reaches the trajectory's depth
    back.requires_grad_(True)
    foot_skate_loss(back, limbs, S).backward()
    assert back.grad[..., 2].abs().sum() > 0


def test_floor_tilt_recovers_a_known_camera_elevation():
    level = walk(batch=1)[0].numpy()
    for deg in (5.0, 12.0, -4.0):
        # the walk seen by a camera pitched by deg, the body then stood upright again
        # (as upright_transform's first step does), leaving the path on a slope
        pitch = rotation_x(torch.tensor(math.radians(deg), dtype=torch.float64)).numpy()
        path_tilted = level.copy()
        root = level[:, :1]
        path_tilted = (root @ pitch.T) + (level - root)
        fix = floor_tilt(path_tilted, S)
        levelled = path_tilted @ fix.T
        # the path is level again (a 5 degree slope over this 2.8 m walk climbs 0.24 m)
        assert np.ptp(levelled[:, 0, 1]) < 0.03, (deg, np.ptp(levelled[:, 0, 1]))
        angle = math.degrees(math.acos(np.clip(fix[1, 1], -1, 1)))
        assert abs(angle - abs(deg)) < 1.5, (deg, angle)


def test_floor_tilt_leaves_a_clip_in_place_alone():
    rest = walk(batch=1, speed=0.0)[0].numpy()
    tilted = rest @ rotation_x(torch.tensor(0.2, dtype=torch.float64)).numpy().T
    assert np.allclose(floor_tilt(tilted, S), np.eye(3), atol=0.05)


def test_upright_transform_puts_a_climbing_camera_walk_on_a_level_floor():
    """The generated-walk failure: the camera's frame shows a walk away as a climb."""
    level = walk(batch=1, frames=80)[0]
    turned = rotate(level, rotation_y(torch.tensor(2.5, dtype=torch.float64)))
    seen = rotate(turned, rotation_x(torch.tensor(math.radians(15.0), dtype=torch.float64))).numpy()
    rot, t = upright_transform(seen, S)
    out = seen @ rot.T + t
    root_height = out[:, 0, 1]
    assert np.ptp(root_height) < 0.03
    assert abs(out[..., 1].min()) < 1e-9
    assert np.linalg.norm(out[-1, 0, [0, 2]]) > 5.0  # it still travels


def test_physics_flags_floating_and_sliding_clips_and_passes_a_grounded_walk():
    from free3d.evaluation.physics import clip_physics, summarize

    # a grounded walk: feet planted in turn, the body moving forwards at 1.2 m/s
    t = np.arange(80) / 20.0
    rest = S.rest_pose() - np.array([0.0, S.rest_pose()[:, 1].min(), 0.0])
    joints = np.repeat(rest[None], len(t), 0)
    joints[..., 2] += 1.2 * t[:, None]
    for side, phase in (("left", 0.0), ("right", 0.5)):
        # each foot alternates: planted (still) for half a 1 s cycle, then swings ahead
        cycle = (t + phase) % 1.0
        pos = np.where(cycle < 0.5, 0.0, (cycle - 0.5) * 2 * 1.2) + 1.2 * np.floor(t + phase)
        lift = np.where(cycle < 0.5, 0.0, 0.08 * np.sin((cycle - 0.5) * 2 * np.pi))
        for j in ("ankle", "toe"):
            k = S.index(f"{side}_{j}")
            joints[:, k, 2] = rest[k, 2] + pos
            joints[:, k, 1] = rest[k, 1] + lift
    good = clip_physics(joints, S)
    assert abs(good["root_drift_m"]) < 1e-9 and good["contact_height_m"] < 0.03
    assert good["penetration_m"] == 0

    rising = joints.copy()
    rising[..., 1] += np.linspace(0, 1.0, len(t))[:, None]  # floats up a metre over 4 s
    floating = clip_physics(rising, S)
    assert floating["root_drift_m"] > 0.8 and floating["contact_height_m"] > 0.3

    sliding = joints.copy()
    for side in ("left", "right"):  # feet glued to the body, dragged along the floor
        for j in ("ankle", "toe"):
            k = S.index(f"{side}_{j}")
            sliding[:, k, 2] = rest[k, 2] + 1.2 * t
            sliding[:, k, 1] = rest[k, 1]
    # the grounded walk's feet skim the floor only as they lift off and land
    assert clip_physics(sliding, S)["skating_m_s"] > 1.0 > 1.5 * good["skating_m_s"]

    sunk = joints.copy()
    sunk[..., 1] -= 0.1
    assert abs(clip_physics(sunk, S)["penetration_m"] - 0.1) < 1e-9

    summary = summarize([good, floating], ["walk", "walk"])
    assert summary["all"]["clips"] == 2 and summary["walk"]["abs_root_drift_m"] > 0.4


def test_lift_path_scores_depth_slope_mirroring_and_root_path():
    from free3d.data.single_view import Camera
    from free3d.evaluation.lift import PathScores

    truth = walk(batch=1)[0].numpy()
    camera = Camera(30.0, 10.0, 1.3, (0.0, 0.0))
    right = PathScores()
    right.add(truth, truth, camera)
    r = right.result()
    assert abs(r["depth_slope"] - 1) < 1e-9 and abs(r["depth_corr"] - 1) < 1e-9
    assert r["mirrored_clips"] == 0 and r["root_path_mm"] < 1e-6

    from free3d.data.ground_truth import camera_to_world, world_to_camera

    cam = world_to_camera(truth, camera)
    flat_half, mirrored = cam.copy(), cam.copy()
    flat_half[..., 2] *= 0.5
    mirrored[..., 2] *= -1
    scores = PathScores()
    scores.add(camera_to_world(flat_half, camera), truth, camera)
    assert abs(scores.result()["depth_slope"] - 0.5) < 1e-6
    assert scores.result()["root_path_mm"] > 100  # half the depth of the walk is lost
    scores = PathScores()
    scores.add(camera_to_world(mirrored, camera), truth, camera)
    assert scores.result()["mirrored_clips"] == 1
    risen = truth.copy()
    risen[..., 1] += np.linspace(0, 0.5, len(truth))[:, None]
    scores = PathScores()
    scores.add(risen, truth, camera)
    assert 200 < scores.result()["root_drift_mm"] < 300


def test_velocity_features_round_trip_and_look_the_same_at_any_time():
    from free3d.models.features import decode_motion, encode_motion

    traj, limbs = to_free3d(walk(frames=60), S)
    feats = encode_motion(traj, limbs, S, "limbs-velocity")
    back_traj, back_limbs = decode_motion(feats, S, "limbs-velocity", 3)
    assert torch.allclose(back_traj, traj - traj[:, :1], atol=1e-9)
    assert torch.equal(back_limbs, limbs)
    # a steady walk: the features of its frames 10 and 50 are equal in velocity form,
    # not in position form (where frame 50 is 2.8 m further)
    assert torch.allclose(feats[:, 10, :3], feats[:, 50, :3], atol=1e-9)
    pos = encode_motion(traj, limbs, S, "limbs")
    assert not torch.allclose(pos[:, 10, :3], pos[:, 50, :3])


def test_recipes_and_device_choice(procedural_dataset):
    import pytest

    from free3d.device import resolve_device
    from free3d.training.lifting import TrainConfig, make_config

    paper = make_config("mlrq", procedural_dataset, prior="p", recipe="paper")
    default = make_config("mlrq", procedural_dataset, prior="p")
    plain = TrainConfig(stage="mlrq", data=str(procedural_dataset))
    assert (paper.lambda_cycle, paper.upright_views, paper.representation) == (
        plain.lambda_cycle, plain.upright_views, plain.representation) == (0.0, False, "limbs")
    assert default.recipe == "free3d" and default.lambda_cycle == 1.0 and default.upright_views
    assert default.representation == "limbs-velocity"
    assert (default.skip_spikes, paper.skip_spikes) == (5.0, 0.0)
    assert (default.std_floor, paper.std_floor) == (0.25, 0.0)
    assert (default.cycle_fixed_root, paper.cycle_fixed_root) == (True, False)
    assert not make_config("mlrq", procedural_dataset, prior="p", cycle_fixed_root=False).cycle_fixed_root
    # the prior reads the ML-RQ's views, so it takes the default recipe's input units
    prior = make_config("prior", procedural_dataset)
    assert (prior.std_floor, prior.skip_spikes) == (0.25, 0.0)
    assert make_config("rvq3d", procedural_dataset).std_floor == 0.0
    # a single flag overrides the recipe
    assert make_config("mlrq", procedural_dataset, prior="p", lambda_cycle=0.0).lambda_cycle == 0.0
    with pytest.raises(ValueError, match="unknown recipe"):
        make_config("mlrq", procedural_dataset, prior="p", recipe="best")
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="--device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_relative_std_floor_keeps_a_near_constant_feature_from_dominating():
    """A spine-like coordinate that barely varies is not divided by its own tiny std."""
    from free3d.models.features import Standardizer, floored_std

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 5, generator=g) * torch.tensor([0.04, 0.05, 0.06, 0.1, 0.002])
    plain, floored = floored_std(x), floored_std(x, 0.25)
    assert plain[4] == pytest.approx(0.002, rel=0.1)  # the old floor (1e-3) does not bite
    assert floored[4] == pytest.approx(0.25 * 0.05, rel=0.1)  # a quarter of the median std
    assert torch.equal(floored[:4], plain[:4])  # ordinary features keep their own std
    norm = Standardizer(5)
    norm.fit(x, relative_floor=0.25)
    moved = x[:1] + torch.tensor([0.0, 0, 0, 0, 0.01])  # 1 cm on the flat coordinate
    assert (norm(moved) - norm(x[:1]))[0, 4] < 1.0  # under one unit, not five
    assert torch.allclose(norm.inverse(norm(x)), x, atol=1e-6)


def test_remove_floor_slope_levels_a_sinking_walk_and_keeps_the_body_upright():
    """What a lifter's depth error does to a walk: upright body, path sinking 0.5 m."""
    from free3d.data.canonical import remove_floor_slope

    level = walk(batch=1, frames=80)[0].numpy()
    sinking = level.copy()
    sinking[..., 1] -= np.linspace(0.0, 0.5, len(level))[:, None]
    out = remove_floor_slope(sinking, S)
    feet = [S.index(n) for n in ("left_ankle", "right_ankle", "left_toe", "right_toe")]
    assert np.ptp(out[:, 0, 1]) < np.ptp(level[:, 0, 1]) + 0.02  # the root no longer sinks
    assert abs(out[:, feet, 1].min()) < 1e-9  # on the floor
    # every frame only moved up or down: the body's shape and uprightness are untouched
    np.testing.assert_allclose(out - out[:, :1], sinking - sinking[:, :1], atol=1e-9)
    in_place = walk(batch=1, speed=0.0)[0].numpy()
    np.testing.assert_allclose(remove_floor_slope(in_place, S)[..., 1],
                               in_place[..., 1] - in_place[..., 1].min(), atol=1e-9)


def test_ground_stands_every_frame_of_a_hovering_walk_on_the_floor_and_keeps_a_jump():
    from free3d.evaluation.physics import clip_physics
    from free3d.grounding import floor_heights, ground

    level = walk(frames=80, batch=1)[0].numpy()
    np.testing.assert_allclose(ground(level), level, atol=1e-12)  # already on the floor: unchanged

    # a decoder's vertical path: the body bobs 12 cm up and down over the clip and dips
    # to the floor only in its last frames (so standing it on its lowest frame hovers)
    t = np.arange(80) / 20.0
    hovering = level.copy()
    hovering[..., 1] += (0.08 + 0.04 * np.sin(2 * np.pi * t / 4.0) - 0.08 * (t > 3.7))[:, None]
    assert clip_physics(hovering, S)["hover_m"] > 0.05
    grounded = ground(hovering)
    assert clip_physics(grounded, S)["hover_m"] < 0.02  # the floor follows the bob within a window
    assert grounded[..., 1].min(1).min() > -1e-12  # nothing under the floor
    # the pose in each frame is only moved vertically
    np.testing.assert_allclose(grounded - grounded[:, :1], hovering - hovering[:, :1], atol=1e-12)
    assert np.allclose(grounded[..., [0, 2]], hovering[..., [0, 2]])

    # a jump: 0.3 s off the floor, 30 cm up at its top; its height survives grounding
    jump = level.copy()
    flight = np.clip(1 - np.abs(t - 2.0) / 0.15, 0, None) * 0.3
    jump[..., 1] += flight[:, None]
    assert ground(jump)[40, 0, 1] - level[40, 0, 1] > 0.25
    assert floor_heights(jump).shape == (80,)


def test_a_generated_motion_is_its_decoded_path_grounded():
    from test_generation import tiny_model

    from free3d.grounding import ground

    grounded, raw = tiny_model(), tiny_model()
    raw.ground = False
    a = grounded.generate("a person walks", seconds=3, seed=2, foot_lock=False)[0].joints
    b = raw.generate("a person walks", seconds=3, seed=2, foot_lock=False)[0].joints
    np.testing.assert_allclose(a, ground(b), atol=1e-9)
    assert abs(a[..., 1].min()) < 1e-9 and np.median(a[..., 1].min(1)) < np.median(b[..., 1].min(1))


def test_proportion_loss_is_zero_for_the_skeleton_and_flags_a_short_forearm_or_a_grown_body():
    from free3d.losses import limb_proportion_loss

    rest = torch.from_numpy(S.rest_pose()).double().expand(2, 30, -1, -1)
    _, limbs = to_free3d(rest, S)
    assert limb_proportion_loss(limbs, S) < 1e-12
    assert abs(float(limb_proportion_loss(1.5 * limbs, S)) - 0.25) < 1e-9  # the 2D fixes the size
    short = limbs.clone()
    short[..., S.limb("left_wrist"), :] *= 0.6  # a forearm hedged between its depth signs
    assert abs(float(limb_proportion_loss(short, S)) - 0.4 ** 2 / S.num_limbs) < 1e-9
    short.requires_grad_(True)
    limb_proportion_loss(short, S).backward()
    grad = short.grad[..., S.limb("left_wrist"), :]
    assert (grad * short.detach()[..., S.limb("left_wrist"), :]).sum() < 0  # pushed to lengthen
