"""``free3d lift``: keypoint files written here from a projected procedural clip, lifted
with the bundled ML-RQ, on each input format; and the bad inputs, each one error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from free3d.cli import main
from free3d.data.single_view import Camera, project_clip
from free3d.data.sources.procedural import procedural_motion
from free3d.evaluation.lift import lift_clip
from free3d.export.lifted import load_lifter
from free3d.keypoints import (
    BODY25,
    COCO17,
    MEDIAPIPE33,
    KeypointError,
    prepare_2d,
    read_keypoints,
    resample,
    to_skeleton,
)
from free3d.representation import from_free3d, to_free3d
from free3d.skeleton import get_skeleton

SK = get_skeleton("bandai21")
CAMERA = Camera(30.0, 8.0)
FEET = [SK.index(n) for n in ("left_ankle", "right_ankle", "left_toe", "right_toe")]
# bandai21 joints that every layout has directly (no derivation)
DIRECT = [SK.index(n) for n in ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
                                "left_wrist", "right_wrist", "left_hip", "right_hip",
                                "left_knee", "right_knee", "left_ankle", "right_ankle")]


@pytest.fixture(scope="module")
def clip3d() -> np.ndarray:
    return procedural_motion("walk", SK, seconds=4.0, speed="normal", rng=np.random.default_rng(0))


def _named_points(j3: np.ndarray) -> dict[str, np.ndarray]:
    """Every point any layout names, in 3D, from a bandai21 clip (face points from the head)."""
    g = {n: j3[:, SK.index(n)] for n in ("pelvis", "neck", "head")}
    for side in ("left", "right"):
        for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "toe"):
            g[f"{side}_{part}"] = j3[:, SK.index(f"{side}_{part}")]
    left = g["left_shoulder"] - g["right_shoulder"]
    left /= np.linalg.norm(left, axis=-1, keepdims=True)
    up = g["head"] - g["neck"]
    up /= np.linalg.norm(up, axis=-1, keepdims=True)
    fwd = np.cross(left, up)
    head = g["head"]
    g["nose"] = head + 0.08 * up + 0.10 * fwd
    g["mid_hip"] = (g["left_hip"] + g["right_hip"]) / 2
    for n in ("Spine", "Chest", "Shoulder_L", "Shoulder_R"):  # bandai21's joints without a role
        g[n] = j3[:, SK.index(n)]
    for side, s in (("left", 1.0), ("right", -1.0)):
        g[f"{side}_ear"] = head + 0.08 * up + s * 0.07 * left
        g[f"{side}_eye"] = head + 0.11 * up + 0.08 * fwd + s * 0.03 * left
        for extra in ("eye_inner", "eye_outer"):
            g[f"{side}_{extra}"] = g[f"{side}_eye"]
        g[f"mouth_{side}"] = head + 0.04 * up + 0.09 * fwd + s * 0.02 * left
        for extra in ("pinky", "index", "thumb"):
            g[f"{side}_{extra}"] = g[f"{side}_wrist"]
        g[f"{side}_heel"] = g[f"{side}_ankle"]
        g[f"{side}_small_toe"] = g[f"{side}_toe"]
    return g


def pixels(j3: np.ndarray, names, camera: Camera = CAMERA, shift=(640.0, 360.0)) -> np.ndarray:
    """(T, len(names), 2) image coordinates (y down) of the named points."""
    g = _named_points(j3)
    pts = np.stack([g[n] for n in names], axis=1) @ camera.rotation().T
    return np.stack([pts[..., 0] * 300 + shift[0], -pts[..., 1] * 300 + shift[1]], -1)


def coco_json(path: Path, frames: list[list[np.ndarray]], scores=None) -> Path:
    out = []
    for t, persons in enumerate(frames):
        people = []
        for k, xy in enumerate(persons):
            s = np.ones(len(xy)) * 0.9 if scores is None else scores[k][t]
            people.append({"keypoints": np.concatenate([xy, s[:, None]], 1).ravel().tolist(),
                           "score": 0.9})
        out.append(people)
    path.write_text(json.dumps(out))
    return path


def true_2d(j3: np.ndarray) -> np.ndarray:
    m = project_clip(j3, CAMERA, SK)
    return from_free3d(torch.from_numpy(m.trajectory), torch.from_numpy(m.limbs), SK).numpy()


def lift_cli(tmp_path: Path, src: Path, *extra: str, fmt: str = "npy") -> tuple[np.ndarray, dict]:
    out = tmp_path / "out"
    assert main(["lift", str(src), "--out", str(out), "--format", fmt, *extra]) == 0
    manifest = json.loads((out / "lifted.json").read_text())
    return np.load(out / manifest["files"]["npy"]), manifest


def check_standing(joints: np.ndarray, frames: int, feet: float = 0.08) -> None:
    """Upright, on the floor, metre-sized. ``feet``: the mean lowest-foot height allowed (the
    layouts without foot points lift less well grounded: their toes are derived)."""
    assert joints.shape == (frames, 21, 3)
    assert np.isfinite(joints).all()
    assert abs(joints[..., 1].min()) < 1e-6  # on the floor
    assert joints[:, FEET, 1].min(1).mean() < feet  # feet near it, not floating
    head_up = joints[:, SK.index("head"), 1] - joints[:, SK.index("pelvis"), 1]
    assert (head_up > 0.3).mean() > 0.95  # upright
    torso = np.linalg.norm(joints[:, SK.index("neck")] - joints[:, SK.index("pelvis")], axis=-1)
    assert 0.7 * SK.torso_length < np.median(torso) < 1.3 * SK.torso_length  # metres


def test_npy_bandai21_input_lifts_and_matches_its_view(tmp_path, clip3d):
    src = tmp_path / "walk.npy"
    np.save(src, pixels(clip3d, [_role(n) for n in SK.joint_names]))
    joints, manifest = lift_cli(tmp_path, src, "--fps", "20", fmt="npy,gif")
    check_standing(joints, len(clip3d))
    assert manifest["layout"] == "bandai21" and manifest["frames"] == len(clip3d)
    assert manifest["feet_locked"] is True  # the default output stage, said in the manifest
    assert (tmp_path / "out" / "walk.gif").stat().st_size > 0
    own, raw = lift_cli(tmp_path / "raw", src, "--fps", "20", "--no-foot-lock")
    assert raw["feet_locked"] is False and own.shape == joints.shape and not np.allclose(own, joints)
    # the normalised 2D is the training convention exactly; the ML-RQ's own front view
    # (camera frame, before standing up) reproduces it within a few centimetres
    xy, _ = prepare_2d(read_keypoints(src, fps=20))
    np.testing.assert_allclose(xy, true_2d(clip3d), atol=1e-5)
    lifter, _ = load_lifter()
    traj, limbs = to_free3d(torch.from_numpy(xy).float(), SK)
    cam = lift_clip(lifter, traj, limbs, SK).numpy()
    err = np.linalg.norm((cam[..., :2] - cam[:, :1, :2]) - (xy - xy[:, :1]), axis=-1)
    assert err.mean() < 0.06


def _role(joint_name: str) -> str:
    """The role name _named_points knows for a bandai21 joint (clavicles, spine: themselves)."""
    for role, name in SK.roles.items():
        if name == joint_name:
            return role
    return joint_name


def test_coco17_json_lifts_with_derived_joints(tmp_path, clip3d):
    px = pixels(clip3d, COCO17)
    src = coco_json(tmp_path / "coco.json", [[p] for p in px])
    joints, manifest = lift_cli(tmp_path, src, "--fps", "20")
    check_standing(joints, len(clip3d), feet=0.12)
    assert manifest["layout"] == "coco17"
    xy, conf = prepare_2d(read_keypoints(src, fps=20))
    ref = true_2d(clip3d)
    # the directly given joints agree with the truth up to the derived neck's scale
    ratio = np.median(np.linalg.norm(ref[:, DIRECT] - ref[:, :1], axis=-1)) / \
        np.median(np.linalg.norm(xy[:, DIRECT] - xy[:, :1], axis=-1))
    assert 0.85 < ratio < 1.15
    assert (conf > 0).all()  # derived joints carry their sources' confidence


def test_body25_folder_and_mediapipe(tmp_path, clip3d):
    folder = tmp_path / "openpose"
    folder.mkdir()
    px = pixels(clip3d, BODY25)
    for t, p in enumerate(px):
        flat = np.concatenate([p, np.full((25, 1), 0.8)], 1).ravel().tolist()
        (folder / f"clip_{t:012d}_keypoints.json").write_text(
            json.dumps({"version": 1.3, "people": [{"pose_keypoints_2d": flat}]}))
    joints, manifest = lift_cli(tmp_path, folder, "--fps", "20")
    check_standing(joints, len(clip3d))
    assert manifest["layout"] == "body25"

    mp = pixels(clip3d, MEDIAPIPE33) / [1280.0, 720.0]  # MediaPipe: normalised to the image
    frames = [[{"x": x, "y": y, "z": 0.0, "visibility": 0.99} for x, y in f] for f in mp]
    src = tmp_path / "mp.json"
    src.write_text(json.dumps({"fps": 20, "image_size": [1280, 720], "landmarks": frames}))
    kp = read_keypoints(src)
    assert kp.layout == "mediapipe33" and kp.fps == 20
    xy, _ = prepare_2d(kp)
    ref = true_2d(clip3d)
    assert np.abs(xy[:, DIRECT] - ref[:, DIRECT]).mean() < 0.05


def test_several_persons_pick_the_most_confident_track_or_person_k(tmp_path, clip3d):
    a = pixels(clip3d, COCO17)
    b = pixels(clip3d, COCO17, camera=Camera(200.0, 0.0), shift=(100.0, 360.0))
    low = [np.full((len(a), 17), 0.5), np.full((len(a), 17), 0.95)]
    # the second person is listed first in even frames: order in the file means nothing
    frames = [[b[t], a[t]] if t % 2 == 0 else [a[t], b[t]] for t in range(len(a))]
    scores = [[low[1][t] if t % 2 == 0 else low[0][t] for t in range(len(a))],
              [low[0][t] if t % 2 == 0 else low[1][t] for t in range(len(a))]]
    src = coco_json(tmp_path / "two.json", frames, scores)
    kp = read_keypoints(src, fps=20)
    assert np.allclose(kp.xy, b) and any("2 person tracks" in n for n in kp.notes)
    kp1 = read_keypoints(src, fps=20, person=1)
    assert np.allclose(kp1.xy, a)
    with pytest.raises(KeypointError, match="only 2 person track"):
        read_keypoints(src, person=2)


def test_fps_resampling_30_to_20(tmp_path, clip3d):
    px = pixels(clip3d, COCO17)  # 80 frames, read as 30 fps -> 2.63 s -> 53 frames at 20
    src = coco_json(tmp_path / "c.json", [[p] for p in px])
    joints, manifest = lift_cli(tmp_path, src)
    assert manifest["input_fps"] == 30 and len(joints) == 53
    xy = np.arange(4.0)[:, None, None] * np.ones((4, 2, 2))
    out, conf = resample(xy, np.array([[1, 1], [1, 0], [1, 1], [1, 1.0]]), 30.0)
    np.testing.assert_allclose(out[:, 0, 0], [0, 1.5, 3.0])
    assert conf[1, 1] == 0  # between a seen and a missing point: a guess


def test_missing_low_confidence_and_nan_joints_get_zero_confidence(tmp_path, clip3d):
    px = pixels(clip3d, COCO17)
    scores = np.full(px.shape[:2], 0.9)
    scores[10:20, COCO17.index("left_wrist")] = 0.1  # a low-confidence stretch
    px[30:35, COCO17.index("right_knee")] = np.nan  # NaN coordinates
    scores[:, COCO17.index("left_ear")] = 0.0  # never seen: the head falls back on the neck
    scores[:, COCO17.index("right_ear")] = 0.0
    src = tmp_path / "m.npy"
    np.save(src, np.concatenate([px, scores[..., None]], -1))
    kp = read_keypoints(src, fps=20)
    xy, conf = prepare_2d(kp)
    assert np.isfinite(xy).all()
    assert (conf[10:20, SK.index("left_wrist")] == 0).all()
    assert (conf[30:35, SK.index("right_knee")] == 0).all()
    assert (conf[30:35, SK.index("right_toe")] == 0).all()  # derived from the knee
    assert (conf[:, SK.index("head")] == 0).all()
    assert (conf[:10, SK.index("left_wrist")] > 0).all()
    # filled by interpolation: the wrist moves on smoothly through the gap
    w = xy[:, SK.index("left_wrist")]
    assert np.linalg.norm(np.diff(w[8:22], axis=0), axis=-1).max() < 0.2
    joints, _ = lift_cli(tmp_path, src, "--fps", "20")
    check_standing(joints, len(clip3d), feet=0.25)


def test_layout_mapping_keeps_direct_joints(clip3d):
    for names, layout in ((COCO17, "coco17"), (BODY25, "body25"), (MEDIAPIPE33, "mediapipe33")):
        from free3d.keypoints import Keypoints

        px = pixels(clip3d, names)
        kp = Keypoints(px, np.ones(px.shape[:2]), layout, 20.0, "x")
        xy, conf = to_skeleton(kp)
        want = pixels(clip3d, [_role(n) for n in SK.joint_names])
        np.testing.assert_allclose(xy[:, DIRECT], want[:, DIRECT], atol=1e-9)
        pelvis_err = np.linalg.norm(xy[:, 0] - want[:, 0], axis=-1).max()
        assert pelvis_err < 0.03 * 300  # mid-hips is a few cm below bandai21's Hips
        assert conf.shape == (len(px), 21) and (conf == 1).all()


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("free3d: error: "), err
    return err[0]


@pytest.mark.parametrize("case", ["empty", "empty_list", "no_persons", "all_nan", "layout",
                                  "unreadable", "bad_json", "short"])
def test_bad_input_is_one_error_and_leaves_nothing(tmp_path, clip3d, capsys, case):
    px = pixels(clip3d, COCO17)
    src = tmp_path / "in.json"
    extra: list[str] = []
    if case == "empty":
        src.write_text("")
    elif case == "empty_list":
        src.write_text("[]")
    elif case == "no_persons":
        src.write_text(json.dumps([[] for _ in range(10)]))
    elif case == "all_nan":
        src = tmp_path / "in.npy"
        np.save(src, np.full((20, 17, 2), np.nan))
    elif case == "layout":
        src = tmp_path / "in.npy"
        np.save(src, px)
        extra = ["--layout", "body25"]
    elif case == "unreadable":
        src = tmp_path / "in.npy"
        src.write_bytes(b"not numpy")
    elif case == "bad_json":
        src.write_text("{\"frames\": [")
    elif case == "short":
        coco_json(src, [[p] for p in px[:3]])
    out = tmp_path / "out"
    assert main(["lift", str(src), "--out", str(out), *extra]) == 2
    msg = _err(capsys)
    assert src.name in msg
    assert not out.exists()


def test_frames_without_persons_are_skipped_and_counted(tmp_path, clip3d, capsys):
    px = pixels(clip3d, COCO17)
    frames = [[] if 20 <= t < 25 or t < 3 else [p] for t, p in enumerate(px)]
    src = coco_json(tmp_path / "gaps.json", frames)
    joints, manifest = lift_cli(tmp_path, src, "--fps", "20")
    assert len(joints) == len(px) - 3  # leading empty frames cut, inner ones filled
    assert any("8 frame(s) without a person" in n for n in manifest["notes"])
    assert "without a person" in capsys.readouterr().out


def test_mmpose_instances_and_mediapipe_npz(tmp_path, clip3d):
    px = pixels(clip3d, COCO17)
    frames = [{"frame_id": t, "instances": [{"keypoints": p.tolist(),
                                             "keypoint_scores": [0.9] * 17}]}
              for t, p in enumerate(px)]
    src = tmp_path / "mmpose.json"
    src.write_text(json.dumps(frames))
    kp = read_keypoints(src)
    assert kp.layout == "coco17" and kp.fps == 30 and np.allclose(kp.xy, px)

    mp = pixels(clip3d, MEDIAPIPE33)
    arr = np.concatenate([mp, np.zeros(mp.shape[:2] + (1,)), np.full(mp.shape[:2] + (1,), 0.9)], -1)
    src = tmp_path / "mp.npz"
    np.savez(src, keypoints=arr[..., [0, 1, 3]], fps=20.0)  # x, y, visibility
    kp = read_keypoints(src)
    assert kp.layout == "mediapipe33" and kp.fps == 20 and np.allclose(kp.xy, mp)
    y_up = tmp_path / "up.npy"
    np.save(y_up, mp * [1, -1])
    a, _ = prepare_2d(read_keypoints(y_up, y_up=True, fps=20))
    b, _ = prepare_2d(kp)
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_lift_writes_a_bvh_that_reads_back_to_the_lifted_joints(tmp_path, clip3d):
    from free3d.bvh import bvh_to_positions, read_bvh

    src = tmp_path / "walk.npy"
    np.save(src, pixels(clip3d, [_role(n) for n in SK.joint_names]))
    joints, manifest = lift_cli(tmp_path, src, "--fps", "20", fmt="npy,bvh")
    motion = read_bvh(tmp_path / "out" / manifest["files"]["bvh"])
    assert motion.fps == pytest.approx(20)
    back = bvh_to_positions(motion, joints=list(SK.joint_names)) / 100.0  # the file is in cm
    assert back.shape == joints.shape
    assert np.abs(back - joints).max() < 0.01  # the 1 cm
