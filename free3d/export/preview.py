"""Quick-look previews of motions: an animated GIF (or MP4) or a PNG sheet of keyframes.

A 3D motion is drawn by a perspective camera that follows the body: it looks from the
front-left and above at a point that tracks the root (smoothed, so gait sway does not
shake the picture), keeping the standing body at ``FILL`` of the panel's height. The
floor is a grid fixed in the world that slides past as the body travels, with each
bone's shadow, the root's path and a mark under every foot that touches the floor. A
2D motion (image-plane coordinates, y up) gets a flat panel whose window follows the
body the same way. Given both, the panels stand side by side. Bones are coloured by
side: left blue, right red, centre grey.

Everything renders off-screen through ``matplotlib.figure.Figure`` and the Agg canvas
(the 3D projection is done here, on plain 2D axes): no pyplot, no global figure
registry, no GUI backend, and the same input gives the same pixels. Files are written
to a temporary name beside the target and moved into place at the end, so a crash never
leaves half a file behind.
"""

from __future__ import annotations

import itertools
import math
import os
import tempfile
import textwrap
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image

from ..files import usual_mode
from ..skeleton import Skeleton, get_skeleton

FORMATS = (".gif", ".png", ".mp4")
MAX_GIF_FPS = 10.0  # GIF frames are subsampled to at most this many per second of motion
KEYFRAMES = 6  # keyframes on a PNG sheet

SIDE_COLORS = {"left": "#1f77b4", "right": "#d62728", "centre": "#444444"}
TRAIL_COLOR = "#2ca02c"
CONTACT_COLOR = "#ff7f0e"
FLOOR_COLOR = "#b8b8b8"
GRID_COLOR = "#6e6e6e"

FILL = 0.6  # a standing body's height as a share of its panel's height
FOLLOW_SIGMA_S = 0.6  # the camera follows the root smoothed by a Gaussian of this many s
CONTACT_HEIGHT = 0.05  # m: a foot whose lowest joint is this low touches the floor

# Pixel sizes are multiples of 16 so MP4 encoders take the frames as they are.
_DPI = 80
_PANEL_PX_3D = 480
_PANEL_PX_2D = 320
_ANIM_HEIGHT_PX = 432

# Camera of the 3D panels: above, between the canonical body's front (+Z) and its left
# side (+X), so a walk along +Z crosses the picture and the face is still visible; its
# distance is _DIST standing heights from the point it looks at.
_ELEV = 16.0
_AZIM = 45.0
_DIST = 3.5


# ---------------------------------------------------------------------------------------
# public API


def render_preview(
    joints3d: np.ndarray | None,
    joints2d: np.ndarray | None,
    skeleton: Skeleton,
    out: str | os.PathLike,
    *,
    title: str = "",
    fps: float = 20.0,
    max_frames: int | None = None,
) -> Path:
    """Render a motion to ``out`` and return its path.

    joints3d: (T, J, 3) metres, Y up. joints2d: (T, J, 2) image-plane coordinates, y up.
    At least one must be given; with both, they must have the same number of frames.
    The extension of ``out`` picks the output: ``.gif`` an animation subsampled to at
    most 10 frames per second of motion (playing in real time), ``.png`` a still sheet
    of 6 keyframes spread over the clip, ``.mp4`` an animation at ``fps`` (needs the
    imageio-ffmpeg package). ``max_frames`` keeps only the clip's first frames.
    """
    out = Path(out)
    ext = out.suffix.lower()
    if ext not in FORMATS:
        raise ValueError(
            f"cannot write a preview as {out.suffix or '(no extension)'!r} ({out.name}); "
            f"use one of {', '.join(FORMATS)}")
    write_mp4 = _mp4_writer() if ext == ".mp4" else None
    if not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    motions = _check_motions(joints3d, joints2d, skeleton, max_frames)

    def render(tmp: Path) -> None:
        if ext == ".png":
            _write_keyframes(tmp, motions, skeleton, title, fps)
        elif ext == ".gif":
            _write_gif(tmp, motions, skeleton, title, fps)
        else:
            assert write_mp4 is not None
            write_mp4(tmp, _animation_frames(motions, skeleton, title, fps, 1), fps)

    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(out, render)
    return out


def preview_prepared_clip(
    root: str | os.PathLike,
    clip_id: str,
    out: str | os.PathLike | None = None,
    *,
    fmt: str = "gif",
) -> Path:
    """Preview one clip of a prepared dataset: its 3D motion beside its 2D view.

    Reads ``meta.json`` (skeleton, fps), ``motion3d/<id>.npy`` and ``motion2d/<id>.npz``
    (whichever exist) and the first caption as the title. Writes ``./<id>.<fmt>`` in the
    current directory unless ``out`` is given; never writes into the dataset. This is an
    inspection tool, so unlike the 2D training path it does read the hidden 3D motion.
    """
    from ..data.prepared import MOTION2D_DIR, MOTION3D_DIR, TEXTS_DIR, check_clip_id, read_meta

    root = Path(root)
    meta = read_meta(root)
    skeleton = get_skeleton(meta["skeleton"])
    fps = float(meta.get("fps", 20.0))
    check_clip_id(clip_id)
    path3d = root / MOTION3D_DIR / f"{clip_id}.npy"
    path2d = root / MOTION2D_DIR / f"{clip_id}.npz"
    if not path3d.is_file() and not path2d.is_file():
        known = sorted({p.stem for d in (MOTION2D_DIR, MOTION3D_DIR)
                        for p in (root / d).glob("*.np[yz]")})
        examples = ", ".join(known[:5]) + (", ..." if len(known) > 5 else "")
        raise FileNotFoundError(
            f"no clip {clip_id!r} in {root}; e.g. {examples}" if known
            else f"no clip {clip_id!r} in {root}; it holds no clips")

    joints3d = np.load(path3d).astype(np.float64) if path3d.is_file() else None
    joints2d = None
    if path2d.is_file():
        import torch

        from ..representation import from_free3d

        with np.load(path2d) as z:
            traj, limbs = z["trajectory"], z["limbs"]
        joints2d = from_free3d(torch.from_numpy(traj), torch.from_numpy(limbs),
                               skeleton).numpy().astype(np.float64)

    title = clip_id
    text = root / TEXTS_DIR / f"{clip_id}.txt"
    if text.is_file():
        lines = [s.strip() for s in text.read_text(encoding="utf-8").splitlines() if s.strip()]
        if lines:
            title = f"{clip_id}: {lines[0]}"

    fmt = fmt.lower().lstrip(".")
    out = Path(out) if out is not None else Path.cwd() / f"{clip_id}.{fmt}"
    return render_preview(joints3d, joints2d, skeleton, out, title=title, fps=fps)


def joint_sides(skeleton: Skeleton) -> list[str]:
    """"left", "right" or "centre" for each joint.

    A limb's side is the subtree of its hip or shoulder role, extended up its own chain
    to just below the first joint it shares with the other side's chain (so a clavicle
    between the chest and the shoulder counts as the arm's side too).
    """
    n = skeleton.num_joints
    parents = skeleton.parents

    def chain(j: int) -> list[int]:
        out = []
        while j >= 0:
            out.append(j)
            j = parents[j]
        return out

    marks: list[set[str]] = [set() for _ in range(n)]
    for side, other in (("left", "right"), ("right", "left")):
        for part in ("hip", "shoulder"):
            j, o = skeleton.index(f"{side}_{part}"), skeleton.index(f"{other}_{part}")
            shared = set(chain(o))
            if j in shared:
                continue
            top = j
            while parents[top] >= 0 and parents[top] not in shared:
                top = parents[top]
            inside = [False] * n
            inside[top] = True
            for c in range(top + 1, n):
                inside[c] = inside[parents[c]]
            for c in range(n):
                if inside[c]:
                    marks[c].add(side)
    return [next(iter(m)) if len(m) == 1 else "centre" for m in marks]


# ---------------------------------------------------------------------------------------
# input checks and geometry


def _check_motions(joints3d, joints2d, skeleton: Skeleton,
                   max_frames: int | None) -> list[tuple[str, np.ndarray]]:
    if joints3d is None and joints2d is None:
        raise ValueError("render_preview needs joints3d, joints2d or both")
    motions = []
    for kind, arr, d in (("3d", joints3d, 3), ("2d", joints2d, 2)):
        if arr is None:
            continue
        arr = np.asarray(arr, dtype=np.float64)
        if arr.ndim != 3 or arr.shape[1:] != (skeleton.num_joints, d) or arr.shape[0] < 1:
            raise ValueError(
                f"joints{kind} must be (T, {skeleton.num_joints}, {d}) for skeleton "
                f"{skeleton.name!r}, got {arr.shape}")
        if max_frames is not None:
            arr = arr[:max_frames]
        if not np.isfinite(arr).any():
            raise ValueError(f"joints{kind} holds no finite value")
        motions.append((kind, arr))
    if len({m.shape[0] for _, m in motions}) > 1:
        raise ValueError(f"joints3d and joints2d differ in length: "
                         f"{motions[0][1].shape[0]} and {motions[1][1].shape[0]} frames")
    return motions


def _nice_step(extent: float, lines: int = 10) -> float:
    """A 1-2-5 grid spacing giving at most about ``lines`` lines over ``extent``."""
    raw = max(extent, 1e-6) / lines
    base = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * base >= raw:
            return m * base
    return 10.0 * base


def _fill_gaps(path: np.ndarray) -> np.ndarray:
    """(T, D) with NaN rows filled by linear interpolation over time (ends held)."""
    path = path.copy()
    ok = np.isfinite(path).all(axis=1)
    if ok.all():
        return path
    if not ok.any():
        return np.zeros_like(path)
    t = np.arange(len(path))
    for d in range(path.shape[1]):
        path[:, d] = np.interp(t, t[ok], path[ok, d])
    return path


def _root_path(joints: np.ndarray) -> np.ndarray:
    """(T, D) the root, or where it is missing the mean of the joints, gaps filled."""
    root = joints[:, 0].copy()
    missing = ~np.isfinite(root).all(axis=1)
    if missing.any():
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            root[missing] = np.nanmean(joints[missing], axis=1)
    return _fill_gaps(root)


def _extend(path: np.ndarray, n: int, fit: int) -> np.ndarray:
    """``n`` more rows past the end of ``path`` along a straight line fitted to its last
    ``fit`` rows: a steady walk keeps going, sway and bounce do not carry over."""
    tail = path[-min(len(path), fit):]
    t = np.arange(len(tail), dtype=np.float64)
    ahead = np.arange(len(tail), len(tail) + n, dtype=np.float64)
    if len(tail) < 2:
        return np.repeat(tail, n, axis=0)
    a = np.stack([np.ones_like(t), t], axis=1)
    coef, *_ = np.linalg.lstsq(a, tail, rcond=None)
    return np.stack([np.ones_like(ahead), ahead], axis=1) @ coef


def follow_path(path: np.ndarray, fps: float, radius: float) -> np.ndarray:
    """Where a camera following ``path`` (T, D) looks in each frame.

    The path smoothed by a centred Gaussian of ``FOLLOW_SIGMA_S`` seconds, extended past
    its ends along a fitted line, so a steady walk is followed without lag and without
    jitter (gait sway and foot-fall bounce average out, at the ends too); then pulled
    back to within ``radius`` of the path wherever smoothing would leave it farther, so
    the body always stays in the picture.
    """
    path = _fill_gaps(np.asarray(path, dtype=np.float64))
    if len(path) < 2:
        return path.copy()
    sigma = max(FOLLOW_SIGMA_S * fps, 1e-6)
    half = max(1, int(math.ceil(3 * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    fit = max(2, round(2 * sigma))
    padded = np.concatenate([_extend(path[::-1], half, fit)[::-1], path, _extend(path, half, fit)])
    centre = np.stack([np.convolve(padded[:, d], kernel, mode="valid")
                       for d in range(path.shape[1])], axis=1)
    off = path - centre
    dist = np.linalg.norm(off, axis=1, keepdims=True)
    over = dist > radius
    if over.any():
        centre = np.where(over, path - off * (radius / np.maximum(dist, 1e-12)), centre)
    return centre


def _body_height(joints: np.ndarray, axis: int, floor: float | None) -> float:
    """A standing height for the clip: the 90th percentile over frames of the top joint's
    height above ``floor`` (or, without one, of the frame's extent along ``axis``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        top = np.nanmax(joints[..., axis], axis=1)
        low = np.full_like(top, floor) if floor is not None else np.nanmin(joints[..., axis], axis=1)
        ext = top - low
    ext = ext[np.isfinite(ext)]
    return float(max(np.percentile(ext, 90), 1e-3)) if len(ext) else 1.0


# ---------------------------------------------------------------------------------------
# cameras: every frame is drawn in fixed picture coordinates, the camera moving with the body


class _FollowCamera3D:
    """A perspective camera that follows the root along the floor.

    It looks from ``_AZIM`` degrees round from the body's front (+Z) towards its left
    (+X), ``_ELEV`` degrees down, at mid-body height above a point that follows the root
    (``follow_path``); its orientation and distance stay fixed, so the body keeps its
    size and the floor grid, fixed in the world, slides past as it travels. Picture
    coordinates: u to the right, v up, scaled so a body standing at the followed point
    is ``FILL`` of the panel's height.
    """

    def __init__(self, joints: np.ndarray, fps: float, aspect: float) -> None:
        self.height = h = _body_height(joints, axis=1, floor=0.0)
        self.centre = follow_path(_root_path(joints)[:, [0, 2]], fps, radius=0.45 * h)
        el, az = math.radians(_ELEV), math.radians(_AZIM)
        back = np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])
        forward = -back
        right = np.cross(forward, (0.0, 1.0, 0.0))
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        self.rot = np.stack([right, up, forward])
        self.eye = back * _DIST * h  # from the point looked at
        self.look_height = 0.5 * h
        self.near = 0.2 * h
        # a standing body fills FILL of the height, centred; a clip that reaches higher
        # (a jump, hands raised high) is framed smaller so its highest point still fits
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            top = float(np.nanmax(joints[..., 1]))
        fit = max(h, top / (0.5 * (1.0 + FILL) / FILL - 0.05))
        (_, v0), (_, v1) = self._project_rel(np.array([[0.0, 0.0, 0.0], [0.0, fit, 0.0]]))[0]
        span = (v1 - v0) / FILL
        bottom = v0 - 0.5 * (1.0 - FILL) * span
        self.ylim = (bottom, bottom + span)
        self.xlim = (-0.5 * span * aspect, 0.5 * span * aspect)
        self.floor_radius = 2.2 * h
        self.grid_step = _nice_step(self.floor_radius, 8)

    def _project_rel(self, rel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cam = (rel - np.array([0.0, self.look_height, 0.0]) - self.eye) @ self.rot.T
        depth = cam[..., 2]
        with np.errstate(all="ignore"):
            uv = cam[..., :2] / depth[..., None]
        uv[depth < self.near] = np.nan
        return uv, depth

    def project(self, points: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Picture coordinates (..., 2) and depth (...) of world points (..., 3) in frame t."""
        cx, cz = self.centre[t]
        return self._project_rel(points - np.array([cx, 0.0, cz]))


class _FollowCamera2D:
    """The 2D counterpart: a window of fixed size on the image plane, centred on the body
    (its root plus the clip's median root-to-body-centre offset), following it smoothly."""

    def __init__(self, joints: np.ndarray, fps: float, aspect: float) -> None:
        self.height = h = _body_height(joints, axis=1, floor=None)
        root = _root_path(joints)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mid = 0.5 * (np.nanmax(joints, axis=1) + np.nanmin(joints, axis=1)) - root
            offset = np.nan_to_num(np.nanmedian(mid, axis=0))
        self.centre = follow_path(root + offset, fps, radius=0.3 * h)
        span = h / FILL
        self.ylim = (-0.5 * span, 0.5 * span)
        self.xlim = (-0.5 * span * aspect, 0.5 * span * aspect)
        self.grid_step = _nice_step(span, 5)

    def project(self, points: np.ndarray, t: int) -> tuple[np.ndarray, None]:
        return points - self.centre[t], None


def _circle(radius: float, n: int = 24) -> np.ndarray:
    a = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    return np.stack([radius * np.cos(a), np.zeros(n), radius * np.sin(a)], axis=1)


def _floor_grid(cam: _FollowCamera3D, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Segments (N, 2, 2) and alphas (N,) of the floor grid around frame t's centre.

    Lines lie at fixed world multiples of the grid step and are cut into half-step pieces
    at fixed world positions, each fading with its distance from the centre: the grid
    moves with the world and enters and leaves the lit disk without popping."""
    cx, cz = cam.centre[t]
    step, r = cam.grid_step, cam.floor_radius
    piece = step / 2
    lines_x = np.arange(math.ceil((cx - r) / step), math.floor((cx + r) / step) + 1) * step
    lines_z = np.arange(math.ceil((cz - r) / step), math.floor((cz + r) / step) + 1) * step
    cuts_x = np.arange(math.floor((cx - r) / piece), math.ceil((cx + r) / piece)) * piece
    cuts_z = np.arange(math.floor((cz - r) / piece), math.ceil((cz + r) / piece)) * piece
    ends = []
    for fixed, cuts, along_x in ((lines_x, cuts_z, False), (lines_z, cuts_x, True)):
        f, c = np.meshgrid(fixed, cuts, indexing="ij")
        f, c = f.ravel(), c.ravel()
        zero = np.zeros_like(f)
        if along_x:
            a = np.stack([c, zero, f], axis=1)
            b = np.stack([c + piece, zero, f], axis=1)
        else:
            a = np.stack([f, zero, c], axis=1)
            b = np.stack([f, zero, c + piece], axis=1)
        ends.append(np.stack([a, b], axis=1))
    seg = np.concatenate(ends)
    mid = seg.mean(axis=1)
    d = np.hypot(mid[:, 0] - cx, mid[:, 2] - cz) / r
    keep = d < 1.0
    seg, d = seg[keep], d[keep]
    uv, _ = cam.project(seg, t)
    return uv, 0.85 * (1.0 - d**2) ** 1.5


# ---------------------------------------------------------------------------------------
# panels: built once, updated per frame


def _rgba(colors) -> np.ndarray:
    return np.array([to_rgba(c) for c in colors])


class _Panel:
    def _setup(self, fig: Figure, spec, joints: np.ndarray, skeleton: Skeleton,
               colors: list[str], fps: float, small: bool, camera_cls) -> None:
        self.joints = joints
        self.parents = np.asarray(skeleton.limb_parents)
        self.children = np.asarray(skeleton.limb_children)
        self.head = skeleton.index("head")
        self.colors = _rgba(colors)
        ax = fig.add_subplot(spec)
        self.ax = ax
        pos = ax.get_position()
        aspect = (pos.width * fig.get_figwidth()) / max(pos.height * fig.get_figheight(), 1e-9)
        self.cam = cam = camera_cls(joints, fps, aspect)
        ax.set_xlim(*cam.xlim)
        ax.set_ylim(*cam.ylim)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_color("#cccccc")
            spine.set_linewidth(0.6)
        lw = 2.0 if small else 3.0
        self.grid = LineCollection([], linewidths=0.5 if small else 0.7, zorder=1)
        ax.add_collection(self.grid, autolim=False)
        (self.path,) = ax.plot([], [], color=TRAIL_COLOR, lw=0.8, ls=":", alpha=0.8, zorder=2)
        (self.trail,) = ax.plot([], [], color=TRAIL_COLOR, lw=1.4 if small else 1.8, zorder=3)
        self.bones = LineCollection([], linewidths=lw, capstyle="round", zorder=6)
        ax.add_collection(self.bones, autolim=False)
        (self.dots,) = ax.plot([], [], "o", color="#222222", ms=1.5 if small else 2.4, zorder=7)
        (self.head_dot,) = ax.plot([], [], "o", color=SIDE_COLORS["centre"],
                                   ms=5 if small else 9, zorder=8)
        self.small = small

    def _draw_body(self, p: np.ndarray, depth: np.ndarray | None) -> None:
        seg = np.stack([p[self.parents], p[self.children]], axis=1)
        colors = self.colors
        if depth is not None:  # far bones first, so near ones are drawn over them
            order = np.argsort(-(depth[self.parents] + depth[self.children]), kind="stable")
            seg, colors = seg[order], colors[order]
        self.bones.set_segments(seg)
        self.bones.set_color(colors)
        self.dots.set_data(p[:, 0], p[:, 1])
        self.head_dot.set_data(p[[self.head], 0], p[[self.head], 1])


class _Panel3D(_Panel):
    def __init__(self, fig: Figure, spec, joints: np.ndarray, skeleton: Skeleton,
                 colors: list[str], *, fps: float = 20.0, small: bool = False) -> None:
        self._setup(fig, spec, joints, skeleton, colors, fps, small, _FollowCamera3D)
        cam, ax = self.cam, self.ax
        # the lit floor: concentric disks around the followed point, darker inwards
        # (fixed in the picture, since the camera moves with that point)
        disks = [cam._project_rel(_circle(f * cam.floor_radius, 72))[0] for f in (1.0, 0.7, 0.4)]
        ax.add_collection(PolyCollection(disks, facecolors=FLOOR_COLOR, edgecolors="none",
                                         alpha=0.22, zorder=0), autolim=False)
        self.shadow = LineCollection([], colors="#7a7a7a", linewidths=2.0 if small else 3.0,
                                     alpha=0.45, capstyle="round", zorder=4)
        ax.add_collection(self.shadow, autolim=False)
        self.contact = PolyCollection([], facecolors=CONTACT_COLOR, edgecolors="none",
                                      alpha=0.85, zorder=5)
        ax.add_collection(self.contact, autolim=False)
        self.feet = [[skeleton.index(f"{s}_ankle"), skeleton.index(f"{s}_toe")]
                     for s in ("left", "right")]
        self.contact_height = CONTACT_HEIGHT * cam.height / 1.7
        self.contact_disk = _circle(0.045 * cam.height)
        root = _root_path(joints)
        self.floor_path = np.stack([root[:, 0], np.zeros(len(root)), root[:, 2]], axis=1)

    def update(self, t: int) -> None:
        cam = self.cam
        pose = self.joints[t]
        grid, alpha = _floor_grid(cam, t)
        self.grid.set_segments(grid)
        rgba = np.tile(to_rgba(GRID_COLOR), (len(alpha), 1))
        rgba[:, 3] = alpha
        self.grid.set_color(rgba)
        # root path on the floor, within the lit disk
        uv, _ = cam.project(self.floor_path, t)
        cx, cz = cam.centre[t]
        far = np.hypot(self.floor_path[:, 0] - cx, self.floor_path[:, 2] - cz) > cam.floor_radius
        uv[far] = np.nan
        self.path.set_data(uv[:, 0], uv[:, 1])
        self.trail.set_data(uv[: t + 1, 0], uv[: t + 1, 1])
        # shadow, and a mark under each foot that touches the floor
        flat = pose.copy()
        flat[:, 1] = 0.0
        s, _ = cam.project(flat, t)
        self.shadow.set_segments(np.stack([s[self.parents], s[self.children]], axis=1))
        marks = []
        for foot in self.feet:
            heights = pose[foot, 1]
            if np.isfinite(heights).any() and np.nanmin(heights) < self.contact_height:
                x, z = np.nanmean(pose[foot][:, [0, 2]], axis=0)
                marks.append(cam.project(self.contact_disk + np.array([x, 0.0, z]), t)[0])
        self.contact.set_verts(marks)
        p, depth = cam.project(pose, t)
        self._draw_body(p, depth)


class _Panel2D(_Panel):
    def __init__(self, fig: Figure, spec, joints: np.ndarray, skeleton: Skeleton,
                 colors: list[str], *, fps: float = 20.0, small: bool = False) -> None:
        self._setup(fig, spec, joints, skeleton, colors, fps, small, _FollowCamera2D)
        self.grid.set_color(to_rgba(GRID_COLOR, 0.45))
        self.root = _root_path(joints)

    def update(self, t: int) -> None:
        cam = self.cam
        (x0, x1), (y0, y1) = cam.xlim, cam.ylim
        cx, cy = cam.centre[t]
        step = cam.grid_step
        xs = np.arange(math.ceil((cx + x0) / step), math.floor((cx + x1) / step) + 1) * step - cx
        ys = np.arange(math.ceil((cy + y0) / step), math.floor((cy + y1) / step) + 1) * step - cy
        grid = [[(x, y0), (x, y1)] for x in xs] + [[(x0, y), (x1, y)] for y in ys]
        self.grid.set_segments(grid)
        path = self.root - self.cam.centre[t]
        self.path.set_data(path[:, 0], path[:, 1])
        self.trail.set_data(path[: t + 1, 0], path[: t + 1, 1])
        p, _ = cam.project(self.joints[t], t)
        self._draw_body(p, None)


_PANEL_NAMES = {"3d": "3D", "2d": "2D (image plane)"}


def _bone_colors(skeleton: Skeleton) -> list[str]:
    sides = joint_sides(skeleton)
    return [SIDE_COLORS[sides[c]] for c in skeleton.limb_children]


def _legend(fig: Figure, fontsize: float, *, contact: bool, y: float = 0.0) -> None:
    handles = [Line2D([], [], color=c, lw=2.5, label=s) for s, c in SIDE_COLORS.items()]
    handles.append(Line2D([], [], color=TRAIL_COLOR, lw=1.6, label="root path"))
    if contact:
        handles.append(Line2D([], [], color=CONTACT_COLOR, marker="o", ls="", ms=5,
                              label="foot on floor"))
    ncol = len(handles) if fig.get_figwidth() >= 5.5 else 3
    fig.legend(handles=handles, loc="lower right", bbox_to_anchor=(0.995, y), ncol=ncol,
               fontsize=fontsize, frameon=False, handlelength=1.3, columnspacing=0.9,
               handletextpad=0.4, borderaxespad=0.2)


def _wrap_title(title: str, width_in: float, fontsize: float) -> str:
    chars = max(20, int(width_in * 72 / (0.55 * fontsize)))
    lines = textwrap.wrap(title, chars)
    if len(lines) > 2:
        lines = [lines[0], textwrap.shorten(" ".join(lines[1:]), chars, placeholder=" ...")]
    return "\n".join(lines)


def _panel_label(panel: _Panel, kind: str, fontsize: float) -> None:
    text = _PANEL_NAMES[kind]
    if kind == "3d":
        text += f", grid {panel.cam.grid_step:g} m"
    panel.ax.text(0.015, 0.985, text, transform=panel.ax.transAxes, ha="left", va="top",
                  fontsize=fontsize, color="#666666", zorder=10)


# ---------------------------------------------------------------------------------------
# writers

# animation layout, in pixels of the frame
_TITLE_PX = 44  # the prompt, up to two lines
_FOOT_PX = 30  # the clock and the legend


def _animation_frames(motions, skeleton: Skeleton, title: str, fps: float,
                      step: int) -> Iterator[np.ndarray]:
    """(H, W, 3) uint8 frames of every ``step``-th motion frame, one figure reused."""
    widths = [_PANEL_PX_3D if kind == "3d" else _PANEL_PX_2D for kind, _ in motions]
    width_px = sum(widths)
    fig = Figure(figsize=(width_px / _DPI, _ANIM_HEIGHT_PX / _DPI), dpi=_DPI)
    canvas = FigureCanvasAgg(fig)
    try:
        grid = fig.add_gridspec(1, len(motions), width_ratios=widths, left=4 / width_px,
                                right=1 - 4 / width_px, bottom=_FOOT_PX / _ANIM_HEIGHT_PX,
                                top=1 - _TITLE_PX / _ANIM_HEIGHT_PX, wspace=0.03)
        colors = _bone_colors(skeleton)
        panels = []
        for i, (kind, joints) in enumerate(motions):
            cls = _Panel3D if kind == "3d" else _Panel2D
            panel = cls(fig, grid[0, i], joints, skeleton, colors, fps=fps)
            _panel_label(panel, kind, 9)
            panels.append(panel)
        if title:
            fig.text(0.5, 1 - 4 / _ANIM_HEIGHT_PX, _wrap_title(title, width_px / _DPI, 12),
                     ha="center", va="top", fontsize=12, linespacing=1.1)
        _legend(fig, 8, contact=any(kind == "3d" for kind, _ in motions))
        total = motions[0][1].shape[0]
        clock = fig.text(6 / width_px, 8 / _ANIM_HEIGHT_PX, "", fontsize=11,
                         family="monospace", va="bottom")
        for t in range(0, total, step):
            for panel in panels:
                panel.update(t)
            clock.set_text(f"{t / fps:5.2f} s / {total / fps:.2f} s")
            canvas.draw()
            yield np.asarray(canvas.buffer_rgba())[..., :3].copy()
    finally:
        fig.clear()


def _gif_durations(count: int, frame_seconds: float) -> list[int]:
    """Per-frame GIF durations in ms, whole centiseconds (what GIF stores) whose running
    total stays on the true clock instead of drifting by the rounding."""
    cs = [round(i * frame_seconds * 100) for i in range(count + 1)]
    return [max(2, b - a) * 10 for a, b in itertools.pairwise(cs)]


def _palette_source(first: np.ndarray) -> Image.Image:
    """The first frame with a strip of the colours every frame draws (pure and half-way to
    white and to the floor), so the GIF palette holds them even where the first frame
    shows only a few pixels of one (a trail not yet walked, a foot not yet down)."""
    keys = [*SIDE_COLORS.values(), TRAIL_COLOR, CONTACT_COLOR, "#222222", "#7a7a7a"]
    base = np.array([to_rgba(c)[:3] for c in keys])
    shades = np.concatenate([base, (base + 1.0) / 2, (base + np.array(to_rgba(FLOOR_COLOR)[:3])) / 2])
    swatch = np.repeat((shades * 255).round().astype(np.uint8)[:, None], first.shape[1], axis=1)
    swatch = np.repeat(swatch, max(1, first.shape[0] // 100), axis=0)
    return Image.fromarray(np.concatenate([first, swatch]))


def _write_gif(path: Path, motions, skeleton: Skeleton, title: str, fps: float) -> None:
    step = max(1, math.ceil(fps / MAX_GIF_FPS - 1e-9))
    # One palette for the whole clip (from the first frame and the colours every frame
    # draws): no flicker, and unchanged pixels stay identical between frames so the GIF
    # writer only stores what moved.
    palette: Image.Image | None = None
    frames: list[Image.Image] = []
    for f in _animation_frames(motions, skeleton, title, fps, step):
        if palette is None:
            palette = _palette_source(f).quantize(colors=128, method=Image.Quantize.MEDIANCUT)
        frames.append(Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE))
    durations = _gif_durations(len(frames), step / fps)
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:],
                   duration=durations if len(frames) > 1 else durations[0], loop=0,
                   disposal=1, optimize=False)


def _mp4_writer() -> Callable[[Path, Iterator[np.ndarray], float], None]:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ImportError(
            "writing a .mp4 preview needs the imageio-ffmpeg package "
            "(pip install imageio-ffmpeg); or write a .gif or .png instead") from None

    def write(path: Path, frames: Iterator[np.ndarray], fps: float) -> None:
        writer = None
        try:
            for frame in frames:
                if writer is None:
                    h, w = frame.shape[:2]
                    writer = imageio_ffmpeg.write_frames(
                        str(path), (w, h), fps=fps, quality=7, macro_block_size=16,
                        output_params=["-f", "mp4"], ffmpeg_log_level="error")
                    writer.send(None)
                writer.send(np.ascontiguousarray(frame))
        finally:
            if writer is not None:
                writer.close()

    return write


def _write_keyframes(path: Path, motions, skeleton: Skeleton, title: str, fps: float) -> None:
    total = motions[0][1].shape[0]
    keys = np.unique(np.linspace(0, total - 1, min(KEYFRAMES, total)).round().astype(int))
    rows, cols = len(motions), len(keys)
    cell = 2.4
    head = 0.65 if title else 0.4
    foot = 0.35
    height = rows * cell + head + foot
    fig = Figure(figsize=(cols * cell + 0.4, height), dpi=100)
    canvas = FigureCanvasAgg(fig)
    try:
        grid = fig.add_gridspec(rows, cols, left=0.4 / (cols * cell + 0.4), right=0.995,
                                bottom=foot / height, top=1 - head / height,
                                wspace=0.04, hspace=0.06)
        colors = _bone_colors(skeleton)
        for r, (kind, joints) in enumerate(motions):
            for c, t in enumerate(keys):
                cls = _Panel3D if kind == "3d" else _Panel2D
                panel = cls(fig, grid[r, c], joints, skeleton, colors, fps=fps, small=True)
                panel.update(int(t))
                if r == 0:
                    panel.ax.set_title(f"{t / fps:.2f} s", fontsize=9, pad=2)
            box = panel.ax.get_position()
            label = _PANEL_NAMES[kind] + (f", grid {panel.cam.grid_step:g} m" if kind == "3d" else "")
            fig.text(0.01, (box.y0 + box.y1) / 2, label, rotation=90,
                     va="center", ha="left", fontsize=8)
        if title:
            fig.text(0.5, 1 - 0.06 / height, _wrap_title(title, cols * cell + 0.4, 12),
                     ha="center", va="top", fontsize=12, linespacing=1.1)
        _legend(fig, 8, contact=any(kind == "3d" for kind, _ in motions))
        canvas.draw()
        Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3]).save(path, format="PNG")
    finally:
        fig.clear()


def _atomic_write(out: Path, render: Callable[[Path], None]) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=f".partial{out.suffix}",
                                dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        render(tmp)
        usual_mode(tmp)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


__all__ = ["FORMATS", "joint_sides", "preview_prepared_clip", "render_preview"]
