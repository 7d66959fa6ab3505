"""Quick behavioural checks of a generator (no evaluator needed); prints numbers.

    python benchmarks/generation_checks.py [--model DIR] [--samples 12]

- Handedness: for "a person waves the right/left hand", how often the named wrist is
  the higher one (mean over the clip) and the mean height difference.
- Travel direction: for walking and running prompts, the angle between the direction
  travelled (first to last root position) and the first-frame facing (+Z), and the
  distance covered in 4 s.
- Turning: for "a person walks and turns left/right", the change of facing from the
  first to the last half second (positive = towards the body's left, +X). With
  ``--data DIR`` (a prepared Bandai-Namco folder) the same is printed for the real
  walk-turn-left/right clips, which fixes the sign convention.
- Grounding (issue 13): for walking and running prompts worded unlike the training
  captions, 4 s each, the medians of :func:`free3d.evaluation.physics.clip_physics`
  (root drift, hover, planted-foot height, skating), as decoded (not grounded), as
  ``generate`` returns them (each frame on the floor, :mod:`free3d.grounding`) and with
  :mod:`free3d.foot_lock` too; and for "walks backwards" prompts, the
  distance travelled along the first-frame facing (negative = backwards).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from free3d import Free3D
from free3d.evaluation.physics import clip_physics, output_stage_rows
from free3d.representation import facing_direction, heading_angle

# worded unlike the training captions (free3d.data.captions builds those from labels)
GROUNDING_PROMPTS = (
    "someone strolls ahead at an easy pace",
    "a man walks straight across the room",
    "a woman jogs forward",
    "a person sprints ahead",
)
BACKWARDS_PROMPTS = (
    "a person walks backwards",
    "someone steps backwards slowly",
)


def turn_degrees(joints: np.ndarray, skeleton) -> float:
    """Facing change (degrees, + = to the left) between the first and last 10 frames."""
    yaw = heading_angle(facing_direction(torch.as_tensor(joints, dtype=torch.float32), skeleton)).numpy()
    yaw = np.unwrap(yaw)
    return float(np.degrees(yaw[-10:].mean() - yaw[:10].mean()))


def describe_turns(name: str, turns: list[float]) -> None:
    t = np.array(turns)
    print(f"{name}: facing change median {np.median(t):+.0f} deg, to the left in {(t > 0).sum()}/{len(t)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None)
    p.add_argument("--samples", type=int, default=12)
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    p.add_argument("--data", default=None, help="prepared Bandai-Namco folder: real turns for reference")
    args = p.parse_args()
    model = Free3D.from_pretrained(args.model, precision=args.precision)
    sk = model.skeleton
    left, right = sk.index("left_wrist"), sk.index("right_wrist")
    print(f"precision {model.precision}, {args.samples} samples per prompt, 4 s each")
    for side in ("right", "left"):
        motions = model.generate([f"a person waves the {side} hand"], seconds=4, seed=0,
                                 num_samples=args.samples)
        diff = np.array([(m.joints[:, right, 1] - m.joints[:, left, 1]).mean() for m in motions])
        named_higher = (diff > 0) if side == "right" else (diff < 0)
        print(f"waves the {side} hand: the {side} wrist is higher in {named_higher.sum()}/{len(diff)}; "
              f"mean right-minus-left wrist height {diff.mean():+.3f} m")
    for prompt in ("a person walks forward", "a person runs"):
        motions = model.generate([prompt], seconds=4, seed=0, num_samples=args.samples)
        travel = np.array([m.joints[-1, 0] - m.joints[0, 0] for m in motions])
        angle = np.degrees(np.arctan2(travel[:, 0], travel[:, 2]))
        dist = np.linalg.norm(travel[:, [0, 2]], axis=1)
        print(f"{prompt!r}: travel vs facing |angle| median {np.median(np.abs(angle)):.0f} deg, "
              f"within 45 deg in {(np.abs(angle) <= 45).sum()}/{len(angle)}; "
              f"distance median {np.median(dist):.1f} m")
    model.ground = False  # for the decoder's own vertical path; grounded below as generate does
    raw = [m.joints for m in model.generate(list(GROUNDING_PROMPTS), seconds=4, seed=0,
                                            num_samples=args.samples, foot_lock=False)]
    model.ground = True
    for label, clips in output_stage_rows("model's own", raw, sk):
        grounding = [clip_physics(j, sk) for j in clips]
        med = {k: np.nanmedian([g[k] for g in grounding]) for k in grounding[0]}
        drift = np.median([abs(g["root_drift_m"]) for g in grounding])
        print(f"walks and runs ({len(grounding)} motions, {label}): root drift median "
              f"{med['root_drift_m']:+.3f} m (|drift| {drift:.3f}), root height "
              f"{med['root_height_m']:.2f} m, hover {med['hover_m']:.3f} m, planted-foot height "
              f"{med['contact_height_m']:.3f} m, skating {med['skating_m_s']:.2f} m/s")
    back = model.generate(list(BACKWARDS_PROMPTS), seconds=4, seed=0, num_samples=args.samples)
    along = np.array([m.joints[-1, 0, 2] - m.joints[0, 0, 2] for m in back])  # +Z: first facing
    print(f"walks backwards ({len(along)} motions): travel along the facing median "
          f"{np.median(along):+.2f} m, "
          f"backwards in {(along < 0).sum()}/{len(along)}")
    for side in ("left", "right"):
        motions = model.generate([f"a person walks and turns {side}"], seconds=4, seed=0,
                                 num_samples=args.samples)
        describe_turns(f"'walks and turns {side}'", [turn_degrees(m.joints, sk) for m in motions])
        if args.data:
            from free3d.data.ground_truth import load_motion3d
            from free3d.data.prepared import read_records

            real = [r for r in read_records(args.data) if r.labels.get("content") == f"walk-turn-{side}"]
            describe_turns(f"  real walk-turn-{side} clips ({len(real)})",
                           [turn_degrees(load_motion3d(args.data, r.id), sk) for r in real])


if __name__ == "__main__":
    main()
