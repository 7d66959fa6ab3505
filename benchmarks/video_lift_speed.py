"""``free3d lift VIDEO`` speed (issue 16, item 2: at least 10 frames/s on two cores,
detector included), on a synthetic clip made from scikit-image's astronaut photograph.

    python benchmarks/video_lift_speed.py [--frames 100] [--size 640x480] [--repeats 3]

Needs the video extra (pip install "free3d[video]"). The clip: the photograph scaled to
the frame height, moving 3 pixels a frame on grey, written as mp4 (mp4v) at 30 fps.
Rows, in input frames per second:

- detection: ``free3d.video.detect_video`` (decoding, colour conversion, MediaPipe Pose
  with model_complexity 1, its start-up included), median of ``--repeats``;
- lift, warm: ``free3d lift CLIP --format npy`` in this process after one warm-up run
  (detection, reading the bundled ML-RQ, lifting, writing), median of ``--repeats``;
- lift, cold: the ``free3d lift`` command in a new process, once (Python start and
  imports included): what a user waits for.

The machine's load average is printed first: another job on the cores slows every row.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_clip(path: Path, frames: int, size: tuple[int, int], fps: float = 30.0) -> Path:
    import cv2
    from skimage.data import astronaut

    w, h = size
    img = cv2.cvtColor(cv2.resize(astronaut(), (h, h), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for t in range(frames):
        f = np.full((h, w, 3), 128, np.uint8)
        x = (3 * t) % max(w - h, 1)
        f[:, x:x + h] = img
        writer.write(f)
    writer.release()
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--size", default="640x480", help="WIDTHxHEIGHT (width >= height)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))

    from free3d.cli import main as free3d_main
    from free3d.video import MODEL_COMPLEXITY, detect_video

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"{cores} cores, load average {load} (1, 5, 15 min); MediaPipe Pose model_complexity "
          f"{MODEL_COMPLEXITY}; clip {args.frames} frames at {w}x{h}, 30 fps")
    tmp = Path(tempfile.mkdtemp(prefix="free3d-video-bench-"))
    try:
        clip = make_clip(tmp / "astronaut.mp4", args.frames, (w, h))
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            kp = detect_video(clip)
            times.append(time.perf_counter() - t0)
        assert len(kp.xy) == args.frames, len(kp.xy)
        found = int(np.isfinite(kp.xy).all(-1).any(-1).sum())
        det = statistics.median(times)
        print(f"detection:  {args.frames / det:6.1f} frames/s ({det:.2f} s; person found in "
              f"{found}/{args.frames} frames)")

        def lift(out: Path) -> float:
            t0 = time.perf_counter()
            code = free3d_main(["lift", str(clip), "--out", str(out), "--format", "npy", "--overwrite"])
            assert code == 0
            return time.perf_counter() - t0

        lift(tmp / "warm-up")
        whole = statistics.median(lift(tmp / f"out{r}") for r in range(args.repeats))
        print(f"lift, warm: {args.frames / whole:6.1f} frames/s ({whole:.2f} s; free3d lift --format npy "
              "in this process)")
        cli = shutil.which("free3d") or "free3d"
        t0 = time.perf_counter()
        subprocess.run([cli, "lift", str(clip), "--out", str(tmp / "cold"), "--format", "npy"],
                       check=True, capture_output=True)
        cold = time.perf_counter() - t0
        print(f"lift, cold: {args.frames / cold:6.1f} frames/s ({cold:.2f} s; the free3d lift command, "
              "new process)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
