"""Quick-look previews of motions: an animated GIF (or MP4) or a PNG sheet of keyframes.

A 3D motion is drawn in a matplotlib 3D panel with the world's Y axis vertical, a floor
grid at y = 0 and the root's path on the floor; a 2D motion (image-plane coordinates, y
up) in a flat panel with equal aspect. Given both, the panels stand side by side. Bones
are coloured by side: left blue, right red, centre grey.

Everything renders off-screen through ``matplotlib.figure.Figure`` and the Agg canvas:
no pyplot, no global figure registry, no GUI backend. Files are written to a temporary
name beside the target and moved into place at the end, so a crash never leaves half a
file behind.
"""

from __future__ import annotations

import itertools
import math
import os
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from mpl_toolkits.mplot3d import Axes3D  # noqa: F401  (registers the "3d" projection)
from mpl_toolkits.mplot3d.art3d import Line3DCollection, Poly3DCollection
from PIL import Image

from ..skeleton import Skeleton, get_skeleton

FORMATS = (".gif", ".png", ".mp4")
MAX_GIF_FPS = 10.0  # GIF frames are subsampled to at most this many per second of motion
KEYFRAMES = 6  # keyframes on a PNG sheet

SIDE_COLORS = {"left": "#1f77b4", "right": "#d62728", "centre": "#444444"}
TRAIL_COLOR = "#2ca02c"

# Pixel sizes are multiples of 16 so MP4 encoders take the frames as they are.
_DPI = 80
_PANEL_PX_3D = 480
_PANEL_PX_2D = 320
_ANIM_HEIGHT_PX = 432

# Camera of the 3D panels: above, between the canonical body's front (+Z) and its left
# side (+X), so a walk along +Z crosses the picture and the face is still visible. The
# world -> matplotlib mapping is (x, y, z) -> (x, z, y), with matplotlib's y axis (the
# world's z) inverted so the picture is not mirrored (the swap alone is a reflection).
_ELEV = 18.0
_AZIM = -45.0


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


def _limits3d(joints: np.ndarray) -> tuple[tuple[float, float], ...]:
    """Fixed (x, z, y) limits for the whole clip: the floor and everyone on it."""
    lo, hi = np.nanmin(joints, axis=(0, 1)), np.nanmax(joints, axis=(0, 1))
    pad = 0.15
    lims = []
    for axis, min_range in ((0, 1.2), (2, 1.2)):
        a, b = lo[axis] - pad, hi[axis] + pad
        if b - a < min_range:
            c = (a + b) / 2
            a, b = c - min_range / 2, c + min_range / 2
        lims.append((float(a), float(b)))
    lims.append((float(min(lo[1], 0.0) - 0.02), float(max(hi[1], 0.5) + 0.1)))
    return tuple(lims)


def _limits2d(joints: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    lo, hi = np.nanmin(joints, axis=(0, 1)), np.nanmax(joints, axis=(0, 1))
    size = float(max(hi[0] - lo[0], hi[1] - lo[1], 1e-3))
    pad = 0.08 * size
    return ((float(lo[0] - pad), float(hi[0] + pad)), (float(lo[1] - pad), float(hi[1] + pad)))


# ---------------------------------------------------------------------------------------
# panels: built once, updated per frame


class _Panel:
    def _bones(self, joints: np.ndarray, skeleton: Skeleton) -> None:
        """What both panels draw from: the clip and the skeleton's bones and head."""
        self.joints = joints
        self.parents = np.asarray(skeleton.limb_parents)
        self.children = np.asarray(skeleton.limb_children)
        self.head = skeleton.index("head")


class _Panel3D(_Panel):
    def __init__(self, fig: Figure, spec, joints: np.ndarray, skeleton: Skeleton,
                 colors: list[str], *, small: bool = False) -> None:
        self._bones(joints, skeleton)
        ax = fig.add_subplot(spec, projection="3d", computed_zorder=False)
        self.ax = ax
        (x0, x1), (z0, z1), (y0, y1) = _limits3d(joints)
        ax.set_xlim(x0, x1)
        ax.set_ylim(z1, z0)  # inverted: undoes the mirror of plotting (x, z, y)
        ax.set_zlim(y0, y1)
        ax.set_box_aspect((x1 - x0, z1 - z0, y1 - y0), zoom=1.1 if small else 1.25)
        ax.view_init(elev=_ELEV, azim=_AZIM)
        ax.grid(False)  # the floor grid below is the one that matters
        ax.patch.set_visible(False)  # do not hide the neighbouring panel's axis labels
        fs = 6
        ax.tick_params(labelsize=fs, pad=-3)
        for axis, label in ((ax.xaxis, "x"), (ax.yaxis, "z"), (ax.zaxis, "y")):
            axis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]))
            axis.set_pane_color((1.0, 1.0, 1.0, 0.0))
            if not (small and label == "y"):  # in a sheet it would sit by the next panel
                axis.set_label_text(label, fontsize=fs + 1)
            axis.labelpad = -10 if small else -7
            if small:
                axis.set_ticklabels([])

        # floor: a translucent plane with a metric grid at y = 0
        ax.add_collection3d(Poly3DCollection(
            [[(x0, z0, 0.0), (x1, z0, 0.0), (x1, z1, 0.0), (x0, z1, 0.0)]],
            facecolor="#d9d9d9", edgecolor="none", alpha=0.45, zorder=0), autolim=False)
        step = _nice_step(max(x1 - x0, z1 - z0))
        xs = np.arange(math.ceil(x0 / step) * step, x1, step)
        zs = np.arange(math.ceil(z0 / step) * step, z1, step)
        grid = [[(x, z0, 0.0), (x, z1, 0.0)] for x in xs]
        grid += [[(x0, z, 0.0), (x1, z, 0.0)] for z in zs]
        ax.add_collection3d(Line3DCollection(grid, colors="#a8a8a8", linewidths=0.5, zorder=1),
                            autolim=False)

        root = joints[:, 0]
        ax.plot(root[:, 0], root[:, 2], np.zeros(len(root)), color=TRAIL_COLOR, lw=0.8,
                ls=":", alpha=0.7, zorder=2)
        (self.trail,) = ax.plot([], [], [], color=TRAIL_COLOR, lw=1.6, zorder=3)
        self.shadow = Line3DCollection([], colors="#8c8c8c", linewidths=1.5 if small else 2.0,
                                       alpha=0.6, zorder=4)
        ax.add_collection3d(self.shadow, autolim=False)
        self.bones = Line3DCollection([], colors=colors, linewidths=1.8 if small else 2.6,
                                      zorder=5, capstyle="round")
        ax.add_collection3d(self.bones, autolim=False)
        (self.dots,) = ax.plot([], [], [], "o", color="#222222", ms=1.5 if small else 2.2,
                               zorder=6)
        (self.head_dot,) = ax.plot([], [], [], "o", color=SIDE_COLORS["centre"],
                                   ms=4.5 if small else 7, zorder=7)

    def update(self, t: int) -> None:
        p = self.joints[t][:, [0, 2, 1]]  # world (x, y, z) -> matplotlib (x, z, y)
        self.bones.set_segments(np.stack([p[self.parents], p[self.children]], axis=1))
        floor = p.copy()
        floor[:, 2] = 0.0
        self.shadow.set_segments(np.stack([floor[self.parents], floor[self.children]], axis=1))
        self.dots.set_data_3d(p[:, 0], p[:, 1], p[:, 2])
        self.head_dot.set_data_3d(p[[self.head], 0], p[[self.head], 1], p[[self.head], 2])
        root = self.joints[: t + 1, 0]
        self.trail.set_data_3d(root[:, 0], root[:, 2], np.zeros(len(root)))


class _Panel2D(_Panel):
    def __init__(self, fig: Figure, spec, joints: np.ndarray, skeleton: Skeleton,
                 colors: list[str], *, small: bool = False) -> None:
        self._bones(joints, skeleton)
        ax = fig.add_subplot(spec)
        self.ax = ax
        (x0, x1), (y0, y1) = _limits2d(joints)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_aspect("equal", adjustable="box")
        ax.grid(True, lw=0.4, alpha=0.5)
        ax.tick_params(labelsize=5 if small else 7)
        root = joints[:, 0]
        ax.plot(root[:, 0], root[:, 1], color=TRAIL_COLOR, lw=0.8, ls=":", alpha=0.7)
        (self.trail,) = ax.plot([], [], color=TRAIL_COLOR, lw=1.6)
        self.bones = LineCollection([], colors=colors, linewidths=1.8 if small else 2.6,
                                    capstyle="round", zorder=3)
        ax.add_collection(self.bones, autolim=False)
        (self.dots,) = ax.plot([], [], "o", color="#222222", ms=1.5 if small else 2.2, zorder=4)
        (self.head_dot,) = ax.plot([], [], "o", color=SIDE_COLORS["centre"],
                                   ms=4.5 if small else 7, zorder=5)

    def update(self, t: int) -> None:
        p = self.joints[t]
        self.bones.set_segments(np.stack([p[self.parents], p[self.children]], axis=1))
        self.dots.set_data(p[:, 0], p[:, 1])
        self.head_dot.set_data(p[[self.head], 0], p[[self.head], 1])
        root = self.joints[: t + 1, 0]
        self.trail.set_data(root[:, 0], root[:, 1])


_PANEL_NAMES = {"3d": "3D (world, Y up)", "2d": "2D (image plane)"}


def _bone_colors(skeleton: Skeleton) -> list[str]:
    sides = joint_sides(skeleton)
    return [SIDE_COLORS[sides[c]] for c in skeleton.limb_children]


def _legend(fig: Figure, fontsize: float) -> None:
    handles = [Line2D([], [], color=c, lw=2.5, label=s) for s, c in SIDE_COLORS.items()]
    handles.append(Line2D([], [], color=TRAIL_COLOR, lw=1.6, label="root path"))
    ncol = len(handles) if fig.get_figwidth() >= 5 else 2
    fig.legend(handles=handles, loc="lower right", ncol=ncol, fontsize=fontsize,
               frameon=False, handlelength=1.5, columnspacing=1.0)


def _wrap_title(title: str, width_in: float, fontsize: float) -> str:
    chars = max(20, int(width_in * 72 / (0.55 * fontsize)))
    lines = textwrap.wrap(title, chars)
    if len(lines) > 2:
        lines = [lines[0], textwrap.shorten(" ".join(lines[1:]), chars, placeholder=" ...")]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# writers


def _animation_frames(motions, skeleton: Skeleton, title: str, fps: float,
                      step: int) -> Iterator[np.ndarray]:
    """(H, W, 3) uint8 frames of every ``step``-th motion frame, one figure reused."""
    widths = [_PANEL_PX_3D if kind == "3d" else _PANEL_PX_2D for kind, _ in motions]
    width_px = sum(widths)
    fig = Figure(figsize=(width_px / _DPI, _ANIM_HEIGHT_PX / _DPI), dpi=_DPI)
    canvas = FigureCanvasAgg(fig)
    try:
        grid = fig.add_gridspec(1, len(motions), width_ratios=widths, left=0.03, right=0.98,
                                bottom=0.1, top=0.86, wspace=0.1)
        colors = _bone_colors(skeleton)
        panels = []
        for i, (kind, joints) in enumerate(motions):
            cls = _Panel3D if kind == "3d" else _Panel2D
            panel = cls(fig, grid[0, i], joints, skeleton, colors)
            panel.ax.set_title(_PANEL_NAMES[kind], fontsize=8, pad=2)
            panels.append(panel)
        if title:
            fig.suptitle(_wrap_title(title, width_px / _DPI, 9), fontsize=9, y=0.985)
        _legend(fig, 7)
        total = motions[0][1].shape[0]
        clock = fig.text(0.01, 0.015, "", fontsize=7, family="monospace")
        for t in range(0, total, step):
            for panel in panels:
                panel.update(t)
            clock.set_text(f"frame {t + 1:>4d}/{total}  t = {t / fps:6.2f} s")
            canvas.draw()
            yield np.asarray(canvas.buffer_rgba())[..., :3].copy()
    finally:
        fig.clear()


def _gif_durations(count: int, frame_seconds: float) -> list[int]:
    """Per-frame GIF durations in ms, whole centiseconds (what GIF stores) whose running
    total stays on the true clock instead of drifting by the rounding."""
    cs = [round(i * frame_seconds * 100) for i in range(count + 1)]
    return [max(2, b - a) * 10 for a, b in itertools.pairwise(cs)]


def _write_gif(path: Path, motions, skeleton: Skeleton, title: str, fps: float) -> None:
    step = max(1, math.ceil(fps / MAX_GIF_FPS - 1e-9))
    # One palette for the whole clip (taken from the first frame, which already shows
    # every colour used): no flicker, and unchanged pixels stay identical between frames
    # so the GIF writer only stores what moved.
    frames: list[Image.Image] = []
    for f in _animation_frames(motions, skeleton, title, fps, step):
        im = Image.fromarray(f)
        if not frames:
            frames.append(im.quantize(colors=128, method=Image.Quantize.MEDIANCUT))
        else:
            frames.append(im.quantize(palette=frames[0], dither=Image.Dither.NONE))
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
    head = 0.7 if title else 0.35
    foot = 0.5
    height = rows * cell + head + foot
    fig = Figure(figsize=(cols * cell + 0.4, height), dpi=100)
    canvas = FigureCanvasAgg(fig)
    try:
        grid = fig.add_gridspec(rows, cols, left=0.4 / (cols * cell + 0.4), right=0.995,
                                bottom=foot / height, top=1 - head / height,
                                wspace=0.08, hspace=0.12)
        colors = _bone_colors(skeleton)
        for r, (kind, joints) in enumerate(motions):
            for c, t in enumerate(keys):
                cls = _Panel3D if kind == "3d" else _Panel2D
                panel = cls(fig, grid[r, c], joints, skeleton, colors, small=True)
                panel.update(int(t))
                if r == 0:
                    panel.ax.set_title(f"frame {t + 1}/{total}\nt = {t / fps:.2f} s",
                                       fontsize=7, pad=1)
            box = panel.ax.get_position()
            fig.text(0.01, (box.y0 + box.y1) / 2, _PANEL_NAMES[kind], rotation=90,
                     va="center", ha="left", fontsize=8)
        if title:
            fig.suptitle(_wrap_title(title, cols * cell + 0.4, 10), fontsize=10,
                         y=1 - 0.08 / height)
        _legend(fig, 7)
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
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


__all__ = ["FORMATS", "joint_sides", "preview_prepared_clip", "render_preview"]
