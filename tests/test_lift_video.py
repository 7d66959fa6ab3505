"""``free3d lift VIDEO``: MediaPipe Pose on a real photograph (scikit-image's astronaut) and
on short clips made from it here, lifted end to end with the bundled ML-RQ; the bad videos,
each one error and nothing written. Tests that need the ``video`` extra skip without it;
the missing-extra error and the options a video refuses are tested without it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from free3d.bvh import bvh_to_positions, read_bvh
from free3d.cli import main
from free3d.keypoints import MEDIAPIPE33
from free3d.skeleton import get_skeleton

SK = get_skeleton("bandai21")
MP = {name: i for i, name in enumerate(MEDIAPIPE33)}


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("free3d: error: "), err
    return err[0]


# ------------------------------------------------------------------ without the extra


def test_video_without_the_extra_is_one_error_saying_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe now fails
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"\x00" * 64)
    out = tmp_path / "out"
    assert main(["lift", str(src), "--out", str(out)]) == 2
    msg = _err(capsys)
    assert 'pip install "free3d[video]"' in msg and "MediaPipe" in msg
    assert not out.exists()


@pytest.mark.parametrize("extra", [["--person", "1"], ["--layout", "coco17"], ["--y-up"],
                                   ["--image-size", "640x480"]])
def test_options_for_keypoint_files_are_refused_for_a_video(tmp_path, capsys, extra):
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"\x00" * 64)
    out = tmp_path / "out"
    assert main(["lift", str(src), "--out", str(out), *extra]) == 2
    assert src.name in _err(capsys)
    assert not out.exists()


def test_core_modules_do_not_import_mediapipe():
    code = ("import sys, free3d, free3d.cli, free3d.keypoints, free3d.video, free3d.export.lifted; "
            "bad = [m for m in ('mediapipe', 'cv2') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]


# ------------------------------------------------------------------ with MediaPipe


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """A real photograph of a person, shipped inside scikit-image: (512, 512, 3) RGB."""
    pytest.importorskip("mediapipe")
    pytest.importorskip("cv2")
    return pytest.importorskip("skimage.data").astronaut()


def clip_frames(image: np.ndarray, n: int, size: tuple[int, int] = (640, 480), step: int = 3,
                blank: int = 0) -> list[np.ndarray]:
    """``n`` RGB frames of ``size`` with ``image`` (scaled to the height) moving right by
    ``step`` pixels a frame on grey; the first ``blank`` frames are empty."""
    import cv2

    w, h = size
    img = cv2.resize(image, (h, h), interpolation=cv2.INTER_AREA)
    frames = []
    for t in range(n):
        f = np.full((h, w, 3), 128, np.uint8)
        if t >= blank:
            x = min(step * t, w - h)
            f[:, x:x + h] = img
        frames.append(f)
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    import cv2

    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_detector_finds_the_astronaut(astronaut):
    from free3d.video import pose_detector

    with pose_detector(video=False) as detect:
        xy, conf = detect(astronaut)
    assert xy.shape == (33, 2) and conf.shape == (33,)
    h, w = astronaut.shape[:2]
    upper = [MP[n] for n in ("nose", "left_eye", "right_eye", "left_shoulder", "right_shoulder")]
    assert (conf[upper] > 0.9).all()
    assert ((xy[upper] >= 0) & (xy[upper] < [w, h])).all()  # inside the image
    nose, ls, rs = xy[MP["nose"]], xy[MP["left_shoulder"]], xy[MP["right_shoulder"]]
    lh, rh = xy[MP["left_hip"]], xy[MP["right_hip"]]
    # upright: the nose above the shoulders above the hips (image y points down)
    assert nose[1] < min(ls[1], rs[1]) < max(ls[1], rs[1]) < min(lh[1], rh[1])
    # she faces the camera: her left shoulder and hip on the image's right, shoulders apart
    assert ls[0] > rs[0] + 0.25 * w and lh[0] > rh[0]
    assert rs[0] < nose[0] < ls[0]


def test_clip_lifts_end_to_end(tmp_path, astronaut, capsys):
    src = write_video(tmp_path / "astronaut.mp4", clip_frames(astronaut, 20), fps=25)
    out = tmp_path / "out"
    assert main(["lift", str(src), "--out", str(out), "--format", "npy,bvh,gif"]) == 0
    assert "mediapipe33, 25 fps" in capsys.readouterr().out
    manifest = json.loads((out / "lifted.json").read_text())
    frames = 16  # 20 frames at 25 fps are 16 at 20 fps
    assert manifest["layout"] == "mediapipe33" and manifest["input_fps"] == 25
    assert manifest["frames"] == frames
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["astronaut.npy", "astronaut.bvh", "astronaut.gif", "astronaut_2d.npz", "lifted.json"])
    joints = np.load(out / "astronaut.npy")
    assert joints.shape == (frames, 21, 3) and np.isfinite(joints).all()
    assert abs(joints[..., 1].min()) < 1e-6  # on the floor
    head_up = joints[:, SK.index("head"), 1] - joints[:, SK.index("pelvis"), 1]
    assert (head_up > 0.3).all()  # upright
    torso = np.linalg.norm(joints[:, SK.index("neck")] - joints[:, SK.index("pelvis")], axis=-1)
    assert 0.7 * SK.torso_length < np.median(torso) < 1.3 * SK.torso_length  # metres
    back = bvh_to_positions(read_bvh(out / "astronaut.bvh"), joints=list(SK.joint_names)) * 0.01
    assert np.linalg.norm(back - joints, axis=-1).max() < 0.01
    with np.load(out / "astronaut_2d.npz") as z:
        conf = z["confidence"]
    seen = [SK.index(n) for n in ("head", "neck", "left_shoulder", "right_shoulder")]
    assert (conf[:, seen] > 0.9).all()  # the upper body is seen in every frame
    from PIL import Image

    with Image.open(out / "astronaut.gif") as gif:
        assert gif.n_frames > 1


def test_frames_before_the_person_appears_are_cut(tmp_path, astronaut):
    src = write_video(tmp_path / "late.mp4", clip_frames(astronaut, 20, blank=6), fps=20)
    out = tmp_path / "out"
    assert main(["lift", str(src), "--out", str(out), "--format", "npy"]) == 0
    manifest = json.loads((out / "lifted.json").read_text())
    assert manifest["frames"] == 14
    assert any("6 of 20 frame(s) without a person" in n for n in manifest["notes"])


@pytest.mark.parametrize("case", ["garbage", "empty", "blank"])
def test_bad_video_is_one_error_and_leaves_nothing(tmp_path, astronaut, capsys, case):
    src = tmp_path / f"{case}.mp4"
    if case == "garbage":
        src.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif case == "empty":
        src.write_bytes(b"")
    else:
        write_video(src, [np.zeros((240, 320, 3), np.uint8)] * 12, fps=25)
    out = tmp_path / "out"
    assert main(["lift", str(src), "--out", str(out)]) == 2
    msg = _err(capsys)
    assert src.name in msg
    assert ("no person" if case == "blank" else "cannot read it as a video") in msg
    assert not out.exists()
