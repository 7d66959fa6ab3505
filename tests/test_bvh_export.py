"""BVH export: the file reads back (free3d's reader and an independent one) to the joints."""

from __future__ import annotations

import json

import numpy as np
import pytest

from free3d.bvh import bvh_to_positions, read_bvh
from free3d.cli import main
from free3d.data.sources.procedural import procedural_motion
from free3d.export.bvh import JOINT_CHANNELS, ROOT_CHANNELS, bvh_text, rigidify, write_bvh
from free3d.skeleton import get_skeleton

CM = 0.01


def _read_back(path, skeleton) -> np.ndarray:
    """Joint positions (T, J, 3) in metres, the skeleton's joints in its order."""
    return bvh_to_positions(read_bvh(path), joints=list(skeleton.joint_names)) * CM


def _max_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b, axis=-1).max())


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """`free3d generate --format npy,bvh` with the bundled model: (out folder, manifest entry)."""
    out = tmp_path_factory.mktemp("bvh-generate")
    assert main(["generate", "a person walks forward", "--seconds", "3", "--seed", "0", "--out", str(out),
                 "--format", "npy,bvh", "--quiet"]) == 0
    entry = json.loads((out / "generations.json").read_text())[0]
    return out, entry


@pytest.mark.parametrize("skeleton", ["bandai21", "humanml3d22", "kit21"])
@pytest.mark.parametrize("kind", ["walk", "wave", "jump"])
def test_procedural_round_trip_within_1cm(tmp_path, skeleton, kind):
    sk = get_skeleton(skeleton)
    joints = procedural_motion(kind, sk, seconds=3, speed="normal", rng=np.random.default_rng(1))
    path = write_bvh(tmp_path / "m.bvh", joints, sk)
    back = _read_back(path, sk)
    assert back.shape == joints.shape
    assert _max_error(back, joints) < 1e-4  # rigid input: exact up to the file's 6 decimals
    assert read_bvh(path).fps == 20


def test_generated_round_trip_within_1cm(generated, tmp_path):
    out, entry = generated
    sk = get_skeleton(entry["skeleton"])
    raw = np.load(out / entry["files"]["npy"]).astype(np.float64)
    back = _read_back(out / entry["files"]["bvh"], sk)
    assert back.shape == raw.shape == (60, sk.num_joints, 3)
    assert _max_error(back, rigidify(raw, sk)) < 1e-4
    assert _max_error(back, raw) < CM
    # one rotation per branch joint (no *_base joints) cannot follow the shoulders: the reason they exist
    plain = write_bvh(tmp_path / "plain.bvh", raw, sk, branch_joints=False)
    assert sorted(read_bvh(plain).joint_names) == sorted(sk.joint_names)
    # (each branch, as a whole, is off by the chest's compromise rotation: centimetres)
    assert _max_error(back, raw) < _max_error(_read_back(plain, sk), raw) < 6 * CM


def test_non_rigid_input_keeps_one_length_per_bone(tmp_path):
    sk = get_skeleton("humanml3d22")
    joints = procedural_motion("walk", sk, seconds=2, speed="fast", rng=np.random.default_rng(2))
    noisy = joints + np.random.default_rng(0).normal(0, 0.005, joints.shape)
    back = _read_back(write_bvh(tmp_path / "m.bvh", noisy, sk), sk)
    par = np.array(sk.parents)
    lengths = np.linalg.norm(back[:, 1:] - back[:, par[1:]], axis=-1)
    assert np.ptp(lengths, axis=0).max() < 1e-5  # constant per bone
    np.testing.assert_allclose(lengths[0], np.median(np.linalg.norm(
        noisy[:, 1:] - noisy[:, par[1:]], axis=-1), axis=0), atol=1e-5)
    assert _max_error(back, rigidify(noisy, sk)) < 1e-4
    # 5 mm noise on every joint: rigidifying moves the tips by the accumulated length jitter (3.6 cm)
    assert _max_error(back, noisy) < 5 * CM


def test_hierarchy_names_and_channels(tmp_path):
    sk = get_skeleton("bandai21")
    joints = procedural_motion("wave", sk, seconds=2, speed="normal", rng=np.random.default_rng(0))
    motion = read_bvh(write_bvh(tmp_path / "m.bvh", joints, sk))
    names = motion.joint_names
    assert names[0] == "Hips" and set(sk.joint_names) <= set(names)
    assert set(names) - set(sk.joint_names) == {"Shoulder_L_base", "Shoulder_R_base",
                                                "UpperLeg_L_base", "UpperLeg_R_base"}
    for j in motion.joints:  # every joint's parent is its skeleton parent (or that one's _base joint)
        if j.name in sk.joint_names and j.parent >= 0:
            parent = names[j.parent]
            if parent.endswith("_base"):
                assert parent == f"{j.name}_base"
                parent = names[motion.joints[j.parent].parent]
            assert parent == sk.joint_names[sk.parents[sk.index(j.name)]]
    assert motion.joints[0].channels == ROOT_CHANNELS
    assert all(j.channels == JOINT_CHANNELS for j in motion.joints[1:])
    assert ROOT_CHANNELS == ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")
    assert motion.num_frames == joints.shape[0] and motion.frame_time == pytest.approx(0.05)
    # centimetres: the root channels are the pelvis position x 100
    np.testing.assert_allclose(motion.values[:, :3], joints[:, 0] * 100, atol=1e-5)


def test_nan_input_is_one_clear_error_and_writes_nothing(tmp_path):
    sk = get_skeleton("bandai21")
    joints = procedural_motion("walk", sk, seconds=2, speed="normal", rng=np.random.default_rng(0))
    joints[7, 3, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite.*frame 7, joint 'Neck'"):
        write_bvh(tmp_path / "m.bvh", joints, sk)
    with pytest.raises(ValueError, match=r"shape \(frames, 21, 3\)"):
        bvh_text(joints[:, :5], sk)
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_bvh_beside_npy(generated):
    out, entry = generated
    assert entry["files"]["bvh"] == entry["files"]["npy"][:-4] + ".bvh"
    motion = read_bvh(out / entry["files"]["bvh"])
    assert motion.num_frames == entry["frames"] and motion.fps == 20
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_independent_reader_agrees(generated):
    bvhio = pytest.importorskip("bvhio")  # in the test extra; skipped only where it is not installed
    out, entry = generated
    sk = get_skeleton(entry["skeleton"])
    path = str(out / entry["files"]["bvh"])
    raw = np.load(out / entry["files"]["npy"]).astype(np.float64)
    container = bvhio.readAsBvh(path)
    assert container.FrameCount == 60 and container.FrameTime == pytest.approx(0.05)
    assert list(container.Root.Channels) == list(ROOT_CHANNELS)
    root = bvhio.readAsHierarchy(path)
    assert set(sk.joint_names) <= {j.Name for j, _, _ in root.layout()}
    worst = 0.0
    for f in range(0, 60, 7):
        root.loadPose(f)
        pos = {j.Name: np.array(j.PositionWorld, dtype=np.float64) for j, _, _ in root.layout()}
        got = np.stack([pos[n] for n in sk.joint_names]) * CM
        worst = max(worst, _max_error(got, raw[f]))
    assert worst < 1e-3  # bvhio computes in float32
