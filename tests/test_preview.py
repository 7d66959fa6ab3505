"""Previews: GIF/PNG output, atomic writes, side colouring, the 3D view's orientation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from free3d.export import preview
from free3d.export.preview import joint_sides, preview_prepared_clip, render_preview
from free3d.skeleton import SKELETONS, get_skeleton

FPS = 20.0


def walking_clip(frames: int = 30, name: str = "bandai21") -> np.ndarray:
    """(T, J, 3): the rest pose standing on y = 0, walking along +Z at 1.2 m/s, the arms
    hanging down and swinging forward and back (left and right in opposition)."""
    sk = get_skeleton(name)
    rest = sk.rest_pose()
    rest = rest - np.array([0.0, rest[:, 1].min(), 0.0])
    joints = np.repeat(rest[None], frames, axis=0)
    t = np.arange(frames) / FPS
    joints[:, :, 2] += 1.2 * t[:, None]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        shoulder = sk.index(f"{side}_shoulder")
        swing = sign * 0.6 * np.sin(2 * np.pi * t)
        for role in (f"{side}_elbow", f"{side}_wrist"):
            k = sk.index(role)
            r = np.linalg.norm(rest[k] - rest[shoulder])
            joints[:, k, 0] = joints[:, shoulder, 0] + sign * 0.15 * r
            joints[:, k, 1] = joints[:, shoulder, 1] - r * np.cos(swing)
            joints[:, k, 2] = joints[:, shoulder, 2] + r * np.sin(swing)
    return joints


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return walking_clip()


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_gif_is_an_animation_in_real_time(tmp_path, clip):
    sk = get_skeleton("bandai21")
    out = render_preview(clip, clip[..., :2], sk, tmp_path / "walk.gif", title="a walk", fps=FPS)
    assert out == tmp_path / "walk.gif"
    assert _files(tmp_path) == ["walk.gif"]  # no temporary file left behind
    with Image.open(out) as im:
        assert im.format == "GIF"
        assert im.n_frames == 15  # 30 frames at 20 fps, subsampled to 10 fps
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
        assert im.size[0] > 400 and im.size[1] > 200
    assert sum(durations) == pytest.approx(1000 * 30 / FPS, abs=10)


def test_gif_max_frames_and_single_panel(tmp_path, clip):
    sk = get_skeleton("bandai21")
    out = render_preview(clip, None, sk, tmp_path / "a.gif", fps=FPS, max_frames=10)
    with Image.open(out) as im:
        assert im.n_frames == 5
    out = render_preview(None, clip[..., :2], sk, tmp_path / "b.gif", fps=FPS, max_frames=4)
    with Image.open(out) as im:
        assert im.n_frames == 2


@pytest.mark.parametrize("fps", [10.0, 20.0, 24.0, 25.0, 30.0, 60.0])
def test_gif_durations_follow_the_clock(fps):
    step = max(1, int(np.ceil(fps / preview.MAX_GIF_FPS - 1e-9)))
    assert fps / step <= preview.MAX_GIF_FPS
    frames = 37
    durations = preview._gif_durations(frames, step / fps)
    assert all(d % 10 == 0 and d >= 20 for d in durations)
    assert sum(durations) == pytest.approx(1000 * frames * step / fps, abs=10)


def test_png_keyframe_sheet(tmp_path, clip):
    sk = get_skeleton("bandai21")
    out = render_preview(clip, clip[..., :2], sk, tmp_path / "walk.png", title="a walk", fps=FPS)
    assert _files(tmp_path) == ["walk.png"]
    with Image.open(out) as im:
        im.verify()
    with Image.open(out) as im:
        assert im.format == "PNG"
        w, h = im.size
        assert 900 <= w <= 3000 and 400 <= h <= 2000
        assert np.asarray(im.convert("L")).std() > 5  # something was drawn


@pytest.mark.parametrize("name", sorted(SKELETONS))
def test_png_for_each_skeleton_3d_only(tmp_path, name):
    sk = get_skeleton(name)
    out = render_preview(walking_clip(12, name), None, sk, tmp_path / f"{name}.png", fps=FPS)
    with Image.open(out) as im:
        assert im.size[0] > 300


@pytest.mark.parametrize("name", [".jpg", ".GIFF", ""])
def test_bad_extension_raises_and_writes_nothing(tmp_path, clip, name):
    sk = get_skeleton("bandai21")
    target = tmp_path / f"out{name}"
    with pytest.raises(ValueError, match="use one of") as err:
        render_preview(clip, None, sk, target)
    assert (name or "no extension") in str(err.value)
    assert _files(tmp_path) == []


def test_bad_inputs(tmp_path, clip):
    sk = get_skeleton("bandai21")
    with pytest.raises(ValueError, match="needs joints3d, joints2d or both"):
        render_preview(None, None, sk, tmp_path / "x.gif")
    with pytest.raises(ValueError, match=r"\(T, 21, 3\)"):
        render_preview(clip[:, :20], None, sk, tmp_path / "x.gif")
    with pytest.raises(ValueError, match="differ in length"):
        render_preview(clip, clip[:10, :, :2], sk, tmp_path / "x.gif")
    with pytest.raises(ValueError, match="fps"):
        render_preview(clip, None, sk, tmp_path / "x.gif", fps=0)
    assert _files(tmp_path) == []


def test_mp4_needs_imageio_ffmpeg(tmp_path, clip):
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install imageio-ffmpeg"):
            render_preview(clip, None, get_skeleton("bandai21"), tmp_path / "x.mp4")
        assert _files(tmp_path) == []
    else:
        out = render_preview(clip[:6], None, get_skeleton("bandai21"), tmp_path / "x.mp4")
        assert out.stat().st_size > 1000
        assert _files(tmp_path) == ["x.mp4"]


def test_crash_leaves_no_partial_file(tmp_path, clip, monkeypatch):
    (tmp_path / "walk.gif").write_bytes(b"old preview")

    def broken(path, *args):
        path.write_bytes(b"GIF89a half a file")
        raise RuntimeError("renderer died")

    monkeypatch.setattr(preview, "_write_gif", broken)
    with pytest.raises(RuntimeError, match="renderer died"):
        render_preview(clip, None, get_skeleton("bandai21"), tmp_path / "walk.gif")
    assert _files(tmp_path) == ["walk.gif"]
    assert (tmp_path / "walk.gif").read_bytes() == b"old preview"


@pytest.mark.parametrize("name", sorted(SKELETONS))
def test_joint_sides(name):
    sk = get_skeleton(name)
    sides = joint_sides(sk)
    for side in ("left", "right"):
        for role in ("hip", "knee", "ankle", "toe", "shoulder", "elbow", "wrist"):
            assert sides[sk.index(f"{side}_{role}")] == side, (name, side, role)
    for role in ("pelvis", "neck", "head"):
        assert sides[sk.index(role)] == "centre"
    # left and right are mirror images: as many joints on each side
    assert sides.count("left") == sides.count("right") > 0


def test_bandai_clavicles_take_the_arms_side():
    sides = joint_sides(get_skeleton("bandai21"))
    names = get_skeleton("bandai21").joint_names
    assert sides[names.index("Shoulder_L")] == "left"
    assert sides[names.index("Shoulder_R")] == "right"
    assert sides[names.index("Chest")] == "centre"


def test_3d_view_is_upright_unmirrored_and_sees_the_front(clip):
    """With the body facing +Z, the camera must be on the front side, the head above the
    feet and the body's left (+X) on the right of the picture, as in a photograph of its
    front; and it is a perspective view: nearer things look larger."""
    sk = get_skeleton("bandai21")
    fig = Figure(figsize=(5, 4), dpi=80)
    panel = preview._Panel3D(fig, fig.add_gridspec(1, 1)[0, 0], clip, sk, ["k"] * sk.num_limbs,
                             fps=FPS)
    cam = panel.cam

    def screen(p):
        return cam.project(np.asarray(p, dtype=np.float64), 0)[0]

    pose = clip[0]
    head, toe = screen(pose[sk.index("head")]), screen(pose[sk.index("left_toe")])
    assert head[1] > toe[1]
    left, right = screen(pose[sk.index("left_wrist")]), screen(pose[sk.index("right_wrist")])
    assert left[0] > right[0]
    # the camera is in front (+Z) and to the body's left (+X): the nose side is nearer
    _, d_front = cam.project(pose[0] + np.array([0.0, 0.0, 0.3]), 0)
    _, d_back = cam.project(pose[0] - np.array([0.0, 0.0, 0.3]), 0)
    _, d_left = cam.project(pose[0] + np.array([0.3, 0.0, 0.0]), 0)
    _, d_right = cam.project(pose[0] - np.array([0.3, 0.0, 0.0]), 0)
    assert d_front < d_back and d_left < d_right
    # perspective: a metre across looks longer nearer the camera
    cx, cz = cam.centre[0]
    near, far = np.array([cx + 1.0, 0.0, cz + 1.0]), np.array([cx - 1.0, 0.0, cz - 1.0])
    across = np.array([0.5, 0.0, -0.5])
    assert (np.linalg.norm(screen(near + across) - screen(near - across))
            > 1.2 * np.linalg.norm(screen(far + across) - screen(far - across)))
    fig.clear()


# ---------------------------------------------------------------------------------------
# framing: the camera follows the body, which fills a good part of the picture


def _panel_pixels(frame: np.ndarray) -> np.ndarray:
    """The 3D panel of an animation frame (no title, no clock, no legend)."""
    return frame[preview._TITLE_PX + 2: frame.shape[0] - preview._FOOT_PX - 2, 6:-6]


def _body_box(panel: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) pixel rows/columns of the skeleton: its left and right
    bones' colours and the dark head, joints and centre bones."""
    px = panel.astype(np.int32)
    mask = np.zeros(px.shape[:2], dtype=bool)
    for c in (preview.SIDE_COLORS["left"], preview.SIDE_COLORS["right"]):
        rgb = np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)])
        mask |= np.abs(px - rgb).sum(axis=-1) < 40
    mask |= (px < 80).all(axis=-1)
    rows, cols = np.nonzero(mask)
    assert len(rows) > 100, "no skeleton drawn"
    return rows.min(), rows.max(), cols.min(), cols.max()


def _frames(joints, step, title="a person walks forward"):
    sk = get_skeleton("bandai21")
    return list(preview._animation_frames([("3d", joints)], sk, title, FPS, step))


def test_walk_of_several_metres_stays_framed_and_large():
    clip = walking_clip(120)  # 6 s at 1.2 m/s: 7.1 m along +Z
    assert clip[-1, 0, 2] - clip[0, 0, 2] > 7.0
    frames = _frames(clip, step=119)
    assert len(frames) == 2
    for frame in frames:  # the first and the last frame
        panel = _panel_pixels(frame)
        h, w = panel.shape[:2]
        top, bottom, left, right = _body_box(panel)
        assert 0.5 <= (bottom - top + 1) / h <= 0.75, (top, bottom, h)
        assert top > 0.08 * h and bottom < 0.92 * h  # inside, with room above and below
        assert left > 0.2 * w and right < 0.8 * w  # near the middle: the camera follows


def test_floor_grid_moves_with_the_world_and_shows_contact():
    clip = walking_clip(40)
    standing = clip.copy()
    standing[..., 2] -= (1.2 * np.arange(40) / FPS)[:, None]  # the same pose, in place
    floating = clip + np.array([0.0, 0.3, 0.0])  # every frame 30 cm above the floor

    def floor_strip(frame):  # the panel's lowest rows: floor only, below the feet
        panel = _panel_pixels(frame)
        return panel[int(0.9 * len(panel)):]

    walk = _frames(clip, step=10)
    still = _frames(standing, step=10)
    assert not np.array_equal(floor_strip(walk[0]), floor_strip(walk[1]))  # travel shows
    assert np.array_equal(floor_strip(still[0]), floor_strip(still[1]))  # no false motion

    def contact_pixels(frame):
        rgb = np.array([int(preview.CONTACT_COLOR[i:i + 2], 16) for i in (1, 3, 5)])
        return int((np.abs(_panel_pixels(frame).astype(np.int32) - rgb).sum(-1) < 60).sum())

    assert contact_pixels(walk[0]) > 30  # feet on y = 0
    assert contact_pixels(_frames(floating, step=40)[0]) == 0


def test_camera_follows_smoothly_without_lag():
    t = np.arange(100) / FPS
    path = np.stack([0.03 * np.sin(2 * np.pi * 2.0 * t), 1.5 * t], axis=1)  # sway + a walk
    centre = preview.follow_path(path, FPS, radius=0.5)
    assert np.abs(centre[:, 0]).max() < 0.005  # the 2 Hz sway is smoothed away
    assert np.abs(centre[:, 1] - path[:, 1]).max() < 0.01  # no lag, ends included
    jump = np.zeros((60, 2))
    jump[30:, 0] = 3.0  # a 3 m jump between two frames: the camera never loses the body
    centre = preview.follow_path(jump, FPS, radius=0.5)
    assert np.linalg.norm(centre - jump, axis=1).max() <= 0.5 + 1e-9
    assert np.isfinite(preview.follow_path(np.full((5, 2), np.nan), FPS, radius=0.5)).all()


def test_a_jump_stays_in_the_picture():
    clip = walking_clip(40)
    clip[15:25, :, 1] += 0.9  # a high jump
    for frame in _frames(clip, step=5):
        top, bottom, _, _ = _body_box(_panel_pixels(frame))
        assert top > 0 and bottom < _panel_pixels(frame).shape[0] - 1


def test_preview_is_deterministic(tmp_path, clip):
    sk = get_skeleton("bandai21")
    a = render_preview(clip, clip[..., :2], sk, tmp_path / "a.gif", title="a walk", fps=FPS)
    b = render_preview(clip, clip[..., :2], sk, tmp_path / "b.gif", title="a walk", fps=FPS)
    assert a.read_bytes() == b.read_bytes()


# ---------------------------------------------------------------------------------------
# prepared datasets


def _write_prepared(root, clip_id: str, joints3d: np.ndarray) -> None:
    sk = get_skeleton("bandai21")
    for d in ("motion2d", "motion3d", "texts"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "meta.json").write_text(json.dumps({"format_version": 1, "skeleton": "bandai21",
                                                "fps": FPS}))
    np.save(root / "motion3d" / f"{clip_id}.npy", joints3d.astype(np.float32))
    j2 = joints3d[..., :2].astype(np.float32)  # a camera on +Z: drop depth
    np.savez(root / "motion2d" / f"{clip_id}.npz", trajectory=j2[:, 0],
             limbs=j2[:, 1:] - j2[:, sk.limb_parents],
             confidence=np.ones(j2.shape[:2], np.float32),
             camera_azimuth_deg=np.float64(0.0), camera_elevation_deg=np.float64(0.0),
             camera_scale=np.float64(1.0), camera_translation=np.zeros(2))
    (root / "texts" / f"{clip_id}.txt").write_text("a person walks forward\nsomeone walks\n")


def test_preview_prepared_clip_writes_to_the_current_folder(tmp_path, clip, monkeypatch):
    root = tmp_path / "prepared"
    _write_prepared(root, "walk_000", clip)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    out = preview_prepared_clip(root, "walk_000")
    assert out.resolve() == (work / "walk_000.gif").resolve()
    with Image.open(out) as im:
        assert im.n_frames > 1
    out = preview_prepared_clip(root, "walk_000", tmp_path / "sheet.png", fmt="gif")
    assert out == tmp_path / "sheet.png" and out.is_file()
    out = preview_prepared_clip(root, "walk_000", fmt=".PNG")
    assert out.name == "walk_000.png" and out.is_file()
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_preview_prepared_clip_2d_only(tmp_path, clip):
    root = tmp_path / "prepared"
    _write_prepared(root, "walk_000", clip)
    (root / "motion3d" / "walk_000.npy").unlink()
    out = preview_prepared_clip(root, "walk_000", tmp_path / "walk.png")
    assert out.is_file()


def test_preview_prepared_clip_unknown_id(tmp_path, clip):
    root = tmp_path / "prepared"
    _write_prepared(root, "walk_000", clip)
    _write_prepared(root, "walk_001", clip[:5])
    with pytest.raises(FileNotFoundError, match="no clip 'nope'") as err:
        preview_prepared_clip(root, "nope", tmp_path / "x.gif")
    assert "walk_000" in str(err.value) and "walk_001" in str(err.value)
    assert not (tmp_path / "x.gif").exists()
