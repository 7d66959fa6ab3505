"""2D keypoints that pose estimators write, read and mapped onto the model's skeleton.

Readers return image coordinates (pixels, y down) in the file's own layout with a
per-joint confidence; :func:`to_skeleton` maps them onto bandai21, deriving the joints a
layout lacks (pelvis, spine, chest, neck, head, clavicles, toes) from what it has, with
the smallest confidence of their sources; :func:`normalise_2d` puts them in the
convention of the training 2D (``free3d.data.single_view``): y up, median
pelvis-to-neck length = the skeleton's rest torso length, first-frame root at the origin.

Missing joints (no value, NaN, or confidence below ``MIN_CONFIDENCE``) keep confidence 0
and get a filled position (interpolated over time, or placed from their parent when never
seen), so nothing made up ever carries weight.

A video goes through MediaPipe Pose first (:mod:`free3d.video`, the optional ``video``
extra) and comes out as ``mediapipe33`` keypoints.

Layouts: ``coco17`` (MMPose, Detectron2, ViTPose, YOLO-pose), ``body25`` (OpenPose),
``mediapipe33`` (MediaPipe Pose landmarks) and ``bandai21`` (the model's own skeleton).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .skeleton import Skeleton, get_skeleton

MIN_CONFIDENCE = 0.3  # below this a detection counts as missing
DEFAULT_FPS = 30.0  # most video, and what keypoint files rarely record
TARGET_FPS = 20.0  # the model's rate (free3d.data.canonical.FPS)
MIN_FRAMES = 4  # one ML-RQ token
# read by MediaPipe Pose (free3d.video, the video extra; kept here so that reading a
# keypoint file never imports it)
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv")

COCO17 = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
          "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
          "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
BODY25 = ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
          "left_elbow", "left_wrist", "mid_hip", "right_hip", "right_knee", "right_ankle",
          "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear",
          "left_ear", "left_toe", "left_small_toe", "left_heel", "right_toe",
          "right_small_toe", "right_heel")
MEDIAPIPE33 = ("nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner",
               "right_eye", "right_eye_outer", "left_ear", "right_ear", "mouth_left",
               "mouth_right", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
               "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index",
               "right_index", "left_thumb", "right_thumb", "left_hip", "right_hip",
               "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
               "right_heel", "left_toe", "right_toe")
LAYOUTS: dict[str, tuple[str, ...]] = {
    "coco17": COCO17, "body25": BODY25, "mediapipe33": MEDIAPIPE33,
    "bandai21": get_skeleton("bandai21").joint_names,
}


class KeypointError(ValueError):
    """A keypoint file that cannot be read as a person's 2D motion (names the file)."""


@dataclass
class Keypoints:
    """A person's 2D motion in a layout: pixels, y down unless ``y_up``."""

    xy: np.ndarray  # (T, J, 2), NaN where missing
    confidence: np.ndarray  # (T, J) in [0, 1]
    layout: str
    fps: float
    source: str
    y_up: bool = False
    notes: list[str] = field(default_factory=list)  # what was skipped or chosen, for the user


# ----------------------------------------------------------------------------- reading


def read_keypoints(path: str | os.PathLike, *, layout: str | None = None, person: int | None = None,
                   fps: float | None = None, y_up: bool = False,
                   image_size: tuple[float, float] | None = None) -> Keypoints:
    """A person's keypoints from a file, folder or video (see the module doc for the formats;
    a video needs the ``video`` extra).

    ``layout`` is detected when the data says (a JSON format; the joint count of an
    array). ``person``: the K-th track by total confidence (default 0, the most
    confident). ``fps``: the input rate (default: what the file records, else 30).
    ``image_size`` (width, height) scales MediaPipe's normalised coordinates to pixels
    (default: as given, a square image). Errors are :class:`KeypointError` naming the file.
    """
    p = Path(path)
    if layout is not None and layout not in LAYOUTS:
        raise KeypointError(f"unknown --layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise KeypointError(f"--fps must be a positive number, got {fps}")
    if person is not None and person < 0:
        raise KeypointError(f"--person must be 0 or more, got {person}")
    if not p.exists():
        raise KeypointError(f"{p}: no such file or folder")
    if p.suffix.lower() in VIDEO_SUFFIXES and not p.is_dir():
        kp = _read_video(p, layout, person, y_up, image_size)
    elif p.is_dir():
        kp = _read_openpose_folder(p, layout, person)
    elif p.suffix.lower() in (".npy", ".npz"):
        kp = _read_array(p, layout, y_up)
    elif p.suffix.lower() == ".json":
        kp = _read_json(p, layout, person, image_size)
    else:
        raise KeypointError(f"{p}: not a keypoint file (.json, .npy, .npz, an OpenPose folder, "
                            "or a video: .mp4, .mov, .avi, .mkv, .webm, ...)")
    if fps is not None:
        kp.fps = float(fps)
    return _drop_missing(kp)


def _read_video(path: Path, layout: str | None, person: int | None, y_up: bool,
                image_size: tuple[float, float] | None) -> Keypoints:
    """MediaPipe Pose on each frame (``free3d.video``, the ``video`` extra, imported only here)."""
    from .video import detect_video

    if layout not in (None, "mediapipe33"):
        raise KeypointError(f"{path}: a video is read by MediaPipe Pose (mediapipe33), not --layout {layout}")
    if person:
        raise KeypointError(f"{path}: --person {person}, but MediaPipe Pose follows one person in a "
                            "video; detect the others with a multi-person detector and lift its file")
    if y_up or image_size is not None:
        raise KeypointError(f"{path}: --y-up and --image-size are for keypoint files, not a video")
    return detect_video(path, progress=True)


def _load_json(path: Path):
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise KeypointError(f"{path}: cannot read it ({getattr(e, 'strerror', None) or e})") from None
    if not text.strip():
        raise KeypointError(f"{path}: the file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise KeypointError(f"{path}: not valid JSON ({e})") from None


def _points(values, n_joints: int, path: Path, scores=None) -> tuple[np.ndarray, np.ndarray]:
    """(J, 2) coordinates and (J,) scores from a flat [x, y, s]*J list or a list of points."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise KeypointError(f"{path}: keypoints are not numbers") from None
    if arr.ndim == 1 and arr.size == 3 * n_joints:
        arr = arr.reshape(n_joints, 3)
    elif arr.ndim == 1 and arr.size == 2 * n_joints:
        arr = arr.reshape(n_joints, 2)
    if arr.ndim != 2 or arr.shape[0] != n_joints or arr.shape[1] not in (2, 3, 4):
        raise KeypointError(f"{path}: a person has keypoints of shape {arr.shape}; expected "
                            f"{n_joints} x [x, y, score]")
    conf = arr[:, -1] if arr.shape[1] >= 3 else np.ones(n_joints)
    if scores is not None:
        conf = np.asarray(scores, dtype=np.float64).reshape(-1)
        if conf.size != n_joints:
            raise KeypointError(f"{path}: {conf.size} keypoint scores for {n_joints} keypoints")
    return arr[:, :2], conf


def _frames_of(data, path: Path) -> list:
    if isinstance(data, dict):
        for key in ("frames", "predictions", "annotations", "results"):
            if isinstance(data.get(key), list):
                return data[key]
        if any(k in data for k in ("people", "instances", "persons", "keypoints")):
            return [data]
        raise KeypointError(f"{path}: no list of frames in it (expected a list, or "
                            "{\"frames\": [...]})")
    if not isinstance(data, list):
        raise KeypointError(f"{path}: not a list of frames")
    return data


def _persons_of(frame, path: Path) -> list[dict]:
    if frame is None:
        return []
    if isinstance(frame, dict):
        for key in ("instances", "persons", "people", "predictions"):
            if key in frame:
                return _persons_of(frame[key], path)
        if "keypoints" in frame or "pose_keypoints_2d" in frame:
            return [frame]
        return []
    if isinstance(frame, list):
        if frame and isinstance(frame[0], list) and frame[0] and isinstance(frame[0][0], dict):
            return [p for f in frame for p in f]  # MMPose: a list per frame of lists per image
        return [p for p in frame if isinstance(p, dict)]
    raise KeypointError(f"{path}: a frame is neither a list of persons nor an object")


def _read_json(path: Path, layout: str | None, person: int | None,
               image_size: tuple[float, float] | None) -> Keypoints:
    data = _load_json(path)
    if (isinstance(data, list) and not data) or (isinstance(data, dict) and not data):
        raise KeypointError(f"{path}: the file holds no frames")
    if _is_mediapipe(data) or layout == "mediapipe33":
        return _read_mediapipe(data, path, image_size)
    frames = _frames_of(data, path)
    if not frames:
        raise KeypointError(f"{path}: the file holds no frames")
    fps = data.get("fps") if isinstance(data, dict) else None
    persons = [_persons_of(f, path) for f in frames]
    key = "pose_keypoints_2d" if any("pose_keypoints_2d" in q for ps in persons for q in ps) else "keypoints"
    found = {len(np.asarray(q.get(key, []), dtype=object).reshape(-1)) for ps in persons for q in ps}
    n = layout and len(LAYOUTS[layout])
    if n is None:
        counts = {c // 3 for c in found if c % 3 == 0} | {c // 2 for c in found if c % 2 == 0}
        guess = [name for name, names in LAYOUTS.items() if len(names) in counts]
        if key == "pose_keypoints_2d" and "body25" in guess:
            guess = ["body25"]
        if not guess:
            sizes = ", ".join(str(c) for c in sorted(found)) or "none"
            raise KeypointError(f"{path}: cannot tell the layout from keypoint lists of {sizes} "
                                f"numbers; give --layout ({', '.join(LAYOUTS)})")
        layout, n = guess[0], len(LAYOUTS[guess[0]])
    per_frame = []
    for ps in persons:
        per_frame.append([_points(q[key], n, path, q.get("keypoint_scores")) for q in ps if key in q])
    return _pick_track(per_frame, path, layout, person, float(fps) if fps else DEFAULT_FPS)


def _read_openpose_folder(path: Path, layout: str | None, person: int | None) -> Keypoints:
    files = sorted(path.glob("*.json"))
    if not files:
        raise KeypointError(f"{path}: the folder holds no OpenPose .json files")
    if layout not in (None, "body25"):
        raise KeypointError(f"{path}: an OpenPose folder is body25, not --layout {layout}")
    per_frame = []
    for f in files:
        data = _load_json(f)
        people = data.get("people") if isinstance(data, dict) else None
        if people is None:
            raise KeypointError(f"{f}: not an OpenPose frame (no \"people\" list)")
        per_frame.append([_points(q["pose_keypoints_2d"], 25, f) for q in people
                          if isinstance(q, dict) and q.get("pose_keypoints_2d")])
    return _pick_track(per_frame, path, "body25", person, DEFAULT_FPS)


def _is_mediapipe(data) -> bool:
    if isinstance(data, dict) and ("landmarks" in data or "pose_landmarks" in data):
        return True
    frames = data if isinstance(data, list) else None
    first = next((f for f in frames or [] if f), None)
    return (isinstance(first, list) and len(first) == 33
            and (isinstance(first[0], dict) and "visibility" in first[0]
                 or isinstance(first[0], list) and len(first[0]) == 4))


def _read_mediapipe(data, path: Path, image_size: tuple[float, float] | None) -> Keypoints:
    frames = data.get("landmarks", data.get("pose_landmarks")) if isinstance(data, dict) else data
    fps = data.get("fps") if isinstance(data, dict) else None
    size = image_size or (data.get("image_size") if isinstance(data, dict) else None) or (1.0, 1.0)
    if not isinstance(frames, list) or not frames:
        raise KeypointError(f"{path}: the file holds no frames of landmarks")
    xy = np.full((len(frames), 33, 2), np.nan)
    conf = np.zeros((len(frames), 33))
    for t, f in enumerate(frames):
        if not f:  # MediaPipe found nobody in this frame
            continue
        if isinstance(f[0], dict):
            f = [[q.get("x", np.nan), q.get("y", np.nan), q.get("visibility", 1.0)] for q in f]
        arr = np.asarray(f, dtype=np.float64)
        if arr.shape not in ((33, 3), (33, 4)):
            raise KeypointError(f"{path}: frame {t} has landmarks of shape {arr.shape}; "
                                "expected 33 x [x, y, (z,) visibility]")
        xy[t], conf[t] = arr[:, :2] * np.asarray(size, dtype=np.float64), arr[:, -1]
    return Keypoints(xy, conf, "mediapipe33", float(fps) if fps else DEFAULT_FPS, str(path))


def _read_array(path: Path, layout: str | None, y_up: bool) -> Keypoints:
    fps = None
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                names = list(z.files)
                key = next((k for k in ("keypoints", "joints2d", "joints", "landmarks") if k in names),
                           names[0] if names else None)
                if key is None:
                    raise KeypointError(f"{path}: the archive holds no arrays")
                arr = np.asarray(z[key], dtype=np.float64)
                conf = np.asarray(z["confidence"], dtype=np.float64) if "confidence" in names else None
                fps = float(z["fps"]) if "fps" in names else None
                if "layout" in names and layout is None:
                    layout = str(z["layout"])
        else:
            arr, conf = np.asarray(np.load(path, allow_pickle=False), dtype=np.float64), None
    except KeypointError:
        raise
    except (OSError, ValueError, TypeError) as e:
        raise KeypointError(f"{path}: cannot read it as a NumPy array ({e})") from None
    if arr.ndim != 3 or arr.shape[-1] not in (2, 3, 4) or arr.shape[0] < 1:
        raise KeypointError(f"{path}: keypoints of shape {arr.shape}; expected (T, J, 2) or "
                            "(T, J, 3) with a confidence")
    j = arr.shape[1]
    detected = [name for name, names in LAYOUTS.items() if len(names) == j]
    if layout is None:
        if not detected:
            raise KeypointError(f"{path}: {j} joints match no layout ({_layout_sizes()}); "
                                "give --layout")
        layout = detected[0]
    if layout not in LAYOUTS:
        raise KeypointError(f"{path}: unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    if len(LAYOUTS[layout]) != j:
        raise KeypointError(f"{path}: {j} joints, but layout {layout} has {len(LAYOUTS[layout])}")
    if conf is None:
        conf = arr[..., -1] if arr.shape[-1] >= 3 else np.ones(arr.shape[:2])
    if conf.shape != arr.shape[:2]:
        raise KeypointError(f"{path}: confidence of shape {conf.shape} for keypoints {arr.shape}")
    return Keypoints(arr[..., :2].copy(), conf.copy(), layout, fps or DEFAULT_FPS, str(path), y_up=y_up)


def _layout_sizes() -> str:
    return ", ".join(f"{name} {len(names)}" for name, names in LAYOUTS.items())


def _pick_track(per_frame: list[list[tuple[np.ndarray, np.ndarray]]], path: Path, layout: str,
                person: int | None, fps: float) -> Keypoints:
    """One person across frames: detections linked to the nearest track, then the K-th track
    by total confidence (several persons in view; detectors order them arbitrarily)."""
    tracks: list[dict[int, tuple[np.ndarray, np.ndarray]]] = []
    for t, dets in enumerate(per_frame):
        free = list(range(len(tracks)))
        for xy, conf in sorted(dets, key=lambda d: -np.nansum(d[1])):
            centre = _centre(xy, conf)
            best, best_d = None, math.inf
            for k in free:
                last_t = max(tracks[k])
                lxy, lconf = tracks[k][last_t]
                d = np.linalg.norm(centre - _centre(lxy, lconf))
                if d < best_d and d < _size(lxy, lconf) * (t - last_t):
                    best, best_d = k, d
            if best is None:
                tracks.append({t: (xy, conf)})
            else:
                tracks[best][t] = (xy, conf)
                free.remove(best)
    if not tracks:
        raise KeypointError(f"{path}: no person in any of its {len(per_frame)} frame(s)")
    order = sorted(range(len(tracks)), key=lambda k: -sum(np.nansum(c) for _, c in tracks[k].values()))
    k = person or 0
    if k >= len(order):
        raise KeypointError(f"{path}: --person {k}, but only {len(order)} person track(s) found")
    chosen = tracks[order[k]]
    n = len(LAYOUTS[layout])
    xy = np.full((len(per_frame), n, 2), np.nan)
    conf = np.zeros((len(per_frame), n))
    for t, (pxy, pc) in chosen.items():
        xy[t], conf[t] = pxy, pc
    notes = []
    if len(order) > 1:
        notes.append(f"{len(order)} person tracks; lifting track {k} ({len(chosen)} frames; "
                     "--person K picks another, 0 = most confident)")
    empty = sum(1 for d in per_frame if not d)
    if empty:
        notes.append(f"{empty} frame(s) without a person")
    return Keypoints(xy, conf, layout, fps, str(path), notes=notes)


def _centre(xy: np.ndarray, conf: np.ndarray) -> np.ndarray:
    ok = np.isfinite(xy).all(-1) & (conf >= MIN_CONFIDENCE)
    return xy[ok].mean(0) if ok.any() else np.nanmean(xy, 0)


def _size(xy: np.ndarray, conf: np.ndarray) -> float:
    ok = np.isfinite(xy).all(-1) & (conf >= MIN_CONFIDENCE)
    pts = xy[ok] if ok.sum() >= 2 else xy[np.isfinite(xy).all(-1)]
    return float(max(np.ptp(pts, axis=0).max(), 1e-6)) if len(pts) >= 2 else 1.0


def _drop_missing(kp: Keypoints) -> Keypoints:
    """NaN and low-confidence points become missing (NaN, confidence 0); frames with no
    joint at all at either end are cut off (a person entering or leaving the view)."""
    bad = ~np.isfinite(kp.xy).all(-1) | ~np.isfinite(kp.confidence) | (kp.confidence < MIN_CONFIDENCE)
    kp.xy[bad] = np.nan
    kp.confidence = np.where(bad, 0.0, np.clip(kp.confidence, 0.0, 1.0))
    seen = ~bad.all(-1)
    if not seen.any():
        raise KeypointError(f"{kp.source}: no usable keypoint in any frame (all missing, NaN or "
                            f"confidence below {MIN_CONFIDENCE})")
    first, last = int(seen.argmax()), len(seen) - int(seen[::-1].argmax())
    if first or last < len(seen):
        kp.notes.append(f"{first + len(seen) - last} frame(s) without a person at the start/end cut")
    kp.xy, kp.confidence = kp.xy[first:last], kp.confidence[first:last]
    return kp


# ----------------------------------------------------------------------------- mapping

# bandai21 rest heights above the Hips (skeleton.py): where spine and chest sit between
# pelvis and neck, so derived joints land where the model's training data has them
_SPINE, _CHEST = 0.157 / 0.411, 0.247 / 0.411
_TORSO = 0.022 + 0.377  # hip joints to shoulder joints
_HIPS_UP, _NECK_UP = 0.022 / _TORSO, (0.411 - 0.377) / _TORSO


def to_skeleton(kp: Keypoints, skeleton: str | Skeleton = "bandai21") -> tuple[np.ndarray, np.ndarray]:
    """(T, 21, 2) positions and (T, 21) confidences on bandai21, still in ``kp``'s image frame.

    Joints the layout lacks are derived from those it has (mid-hips, mid-shoulders, ...),
    each with the smallest confidence of its sources. Missing stays NaN here.
    """
    skel = get_skeleton(skeleton)
    if skel.name != "bandai21":
        raise KeypointError(f"keypoints map onto bandai21 only; the model is {skel.name}")
    if kp.layout == "bandai21":
        return kp.xy.copy(), kp.confidence.copy()
    idx = {name: i for i, name in enumerate(LAYOUTS[kp.layout])}

    def get(name: str) -> tuple[np.ndarray, np.ndarray]:
        return kp.xy[:, idx[name]], kp.confidence[:, idx[name]]

    def mix(a, b, w: float = 0.5):
        return (1 - w) * a[0] + w * b[0], np.minimum(a[1], b[1])

    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for side, s in (("left", "L"), ("right", "R")):
        for src, dst in (("shoulder", "UpperArm"), ("elbow", "LowerArm"), ("wrist", "Hand"),
                         ("hip", "UpperLeg"), ("knee", "LowerLeg"), ("ankle", "Foot")):
            out[f"{dst}_{s}"] = get(f"{side}_{src}")
    # Pelvis and neck from the mid-hips and mid-shoulders of every layout (OpenPose's MidHip and
    # Neck are those too), carried along the torso to where bandai21 has them: its Hips sit
    # 2.2 cm above the hip joints, its Neck 3.4 cm above the shoulders (rest pose heights)
    hips = mix(get("left_hip"), get("right_hip"))
    shoulders = mix(get("left_shoulder"), get("right_shoulder"))
    out["Hips"] = mix(hips, shoulders, _HIPS_UP)
    out["Neck"] = mix(hips, shoulders, 1 + _NECK_UP)
    out["Spine"] = mix(out["Hips"], out["Neck"], _SPINE)
    out["Chest"] = mix(out["Hips"], out["Neck"], _CHEST)
    ears = mix(get("left_ear"), get("right_ear"))
    # bandai21's Head is the skull's base, about half way from the neck to the ears
    out["Head"] = mix(out["Neck"], ears, 0.5)
    for s in ("L", "R"):
        out[f"Shoulder_{s}"] = mix(out["Neck"], out[f"UpperArm_{s}"], 0.5)
        side = "left" if s == "L" else "right"
        if f"{side}_toe" in idx:
            out[f"Toes_{s}"] = get(f"{side}_toe")
        else:  # no foot points (COCO-17): the feet point where the face does (see _toes)
            out[f"Toes_{s}"] = _toes(out[f"LowerLeg_{s}"], out[f"Foot_{s}"], get("nose"), ears)
    xy = np.stack([out[n][0] for n in skel.joint_names], axis=1)
    conf = np.stack([out[n][1] for n in skel.joint_names], axis=1)
    conf = np.where(np.isfinite(xy).all(-1), conf, 0.0)
    return xy, conf


def _toes(knee, ankle, nose, ears):
    """A toe from the ankle: its rest offset (4.5 cm down the shin, 10.9 cm forward), with
    "forward" read off the face, whose nose sits about 10 cm in front of the ears, so the
    foot's length shows as much as the face's does in this view. The earlier guess (the shin
    carried on) cost the lift 30 % more error on Bandai-Namco test clips (docs/lift.md).
    Frames without a face get NaN here, filled over time like any missing joint."""
    forward = (nose[0] - ears[0]) * (0.109 / 0.10)
    xy = ankle[0] + (ankle[0] - knee[0]) * (0.045 / 0.410) + forward
    return xy, np.minimum(np.minimum(knee[1], ankle[1]), np.minimum(nose[1], ears[1]))


def fill_missing(xy: np.ndarray, conf: np.ndarray, skeleton: Skeleton, *,
                 y_up: bool = False) -> np.ndarray:
    """Positions for the missing (NaN) joints: each joint interpolated over time between the
    frames that see it; a joint no frame sees, placed at its parent plus its rest offset
    (the skeleton's front view, scaled to the clip). Their confidence stays 0."""
    xy = xy.copy()
    t = np.arange(len(xy))
    never = []
    for j in range(xy.shape[1]):
        ok = np.isfinite(xy[:, j]).all(-1)
        if ok.all():
            continue
        if not ok.any():
            never.append(j)
            continue
        for d in range(2):
            xy[~ok, j, d] = np.interp(t[~ok], t[ok], xy[ok, j, d])
    pelvis, neck = skeleton.index("pelvis"), skeleton.index("neck")
    if pelvis in never or neck in never:
        raise KeypointError("no frame shows the hips and the shoulders; the body cannot be placed")
    scale = np.median(np.linalg.norm(xy[:, neck] - xy[:, pelvis], axis=-1)) / skeleton.torso_length
    offsets = np.asarray(skeleton.rest_offsets)[:, :2] * [1.0, 1.0 if y_up else -1.0] * scale
    for j in never:  # parents come first, so a parent is filled before its children
        xy[:, j] = xy[:, skeleton.parents[j]] + offsets[j]
    return xy


def resample(xy: np.ndarray, conf: np.ndarray, src_fps: float,
             dst_fps: float = TARGET_FPS) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation in time to ``dst_fps``; a new frame's confidence is the smaller
    of its two neighbours' (a point between a seen and a guessed one is a guess)."""
    if abs(src_fps - dst_fps) < 1e-9:
        return xy, conf
    n = len(xy)
    n_out = int(math.floor((n - 1) * dst_fps / src_fps + 1e-6)) + 1
    src = np.arange(n_out) * (src_fps / dst_fps)
    i0 = np.clip(np.floor(src).astype(np.int64), 0, n - 1)
    i1 = np.clip(i0 + 1, 0, n - 1)
    a = src - i0
    out = (1 - a)[:, None, None] * xy[i0] + a[:, None, None] * xy[i1]
    c = np.where((a > 1e-9)[:, None], np.minimum(conf[i0], conf[i1]), conf[i0])
    return out, c


def normalise_2d(xy: np.ndarray, skeleton: Skeleton, *, y_up: bool = False) -> np.ndarray:
    """Image coordinates -> the training 2D's: y up, median pelvis-to-neck length = the
    skeleton's rest torso length, first-frame root at the origin (``project_clip``)."""
    pts = np.asarray(xy, dtype=np.float64) * [1.0, 1.0 if y_up else -1.0]
    torso = np.linalg.norm(pts[:, skeleton.index("neck")] - pts[:, skeleton.index("pelvis")], axis=-1)
    median = float(np.median(torso))
    if not median > 1e-9:
        raise KeypointError("the torso has no length in the keypoints (hips on the shoulders)")
    pts = pts * (skeleton.torso_length / median)
    return pts - pts[0, 0]


def prepare_2d(kp: Keypoints, skeleton: str | Skeleton = "bandai21") -> tuple[np.ndarray, np.ndarray]:
    """Keypoints -> (T, J, 2) normalised 2D at 20 fps on the skeleton, and its (T, J) confidence."""
    skel = get_skeleton(skeleton)
    xy, conf = to_skeleton(kp, skel)
    try:
        xy = fill_missing(xy, conf, skel, y_up=kp.y_up)
        xy, conf = resample(xy, conf, kp.fps)
        xy = normalise_2d(xy, skel, y_up=kp.y_up)
    except KeypointError as e:
        raise KeypointError(f"{kp.source}: {e}") from None
    if len(xy) < MIN_FRAMES:
        raise KeypointError(f"{kp.source}: {len(xy)} frame(s) at {TARGET_FPS:g} fps; at least "
                            f"{MIN_FRAMES} are needed")
    return xy, conf
