"""Check an unpacked dataset against the folder that was packed, through free3d's readers.

    free3d data pack DATA FILE && free3d data unpack FILE COPY
    python benchmarks/pack_check.py DATA COPY

Prints, over every clip of every split: how many 3D values differ in their bits and the
largest 3D and 2D (trajectory, limbs, confidence as Motion2DDataset serves them)
differences; whether cameras, captions, splits, clips.jsonl and meta agree; and how many
files are byte-identical. Exits 1 if anything differs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from free3d.data.ground_truth import load_camera, load_motion3d
from free3d.data.motion2d import Motion2DDataset
from free3d.data.prepared import SPLITS, read_captions, read_meta, read_records, read_split


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("original", type=Path, help="the prepared dataset that was packed")
    p.add_argument("copy", type=Path, help="the folder free3d data unpack wrote")
    args = p.parse_args()
    a, b = args.original, args.copy
    records = read_records(a)
    same_text = (read_meta(a) == read_meta(b) and records == read_records(b)
                 and all(read_split(a, s) == read_split(b, s) for s in SPLITS)
                 and all(read_captions(a, r.id) == read_captions(b, r.id) for r in records)
                 and all(load_camera(a, r.id) == load_camera(b, r.id) for r in records))
    bits3d = err3d = 0
    for r in records:
        x, y = load_motion3d(a, r.id), load_motion3d(b, r.id)
        bits3d += int((x.view(np.uint32) != y.view(np.uint32)).sum())
        err3d = max(err3d, float(np.abs(x - y).max()))
    err2d = dict.fromkeys(("trajectory", "limbs", "confidence"), 0.0)
    for split in SPLITS:
        for ia, ib in zip(Motion2DDataset(a, split), Motion2DDataset(b, split), strict=True):
            for key in err2d:
                err2d[key] = max(err2d[key], float((ia[key] - ib[key]).abs().max()))
    files = sorted(f.relative_to(a) for f in a.rglob("*") if f.is_file())
    identical = sum((b / f).is_file() and (a / f).read_bytes() == (b / f).read_bytes() for f in files)
    print(f"{len(records)} clips; 3D: {bits3d} values differ in their bits, max |diff| {err3d:g} m")
    print("2D max |diff|: " + ", ".join(f"{k} {v:g}" for k, v in err2d.items()))
    print(f"meta, clips.jsonl, splits, captions, cameras: {'same' if same_text else 'DIFFERENT'}")
    print(f"files byte-identical: {identical} of {len(files)}")
    ok = same_text and bits3d == 0 and not any(err2d.values()) and identical == len(files)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
