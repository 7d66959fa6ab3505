"""Per-content view of a tokeniser's round trip of the real test clips; prints a table.

    python benchmarks/reconstruction_checks.py --data PREPARED_DIR [--model DIR]

For every content label of the test split: how many clips, how often the bundled
evaluator's classifier recognises the content in the reconstruction (and what it calls
it most often), and the median distance the root travels over the clip (first to last
frame, on the floor) in the real 3D and in the reconstruction. The reconstruction is
``free3d.evaluation.generation.tokeniser_reconstructions``: the ML-RQ reads each clip's
stored 2D view, MoMask's RVQ-VAE reads the 3D. It explains the reconstruction rows of
docs/results.md's table 1 (previous bundle) content by content.
"""

from __future__ import annotations

import argparse
import collections

import numpy as np

from free3d import Free3D
from free3d.data.ground_truth import load_motion3d
from free3d.data.prepared import read_records
from free3d.evaluation.generation import EvaluatorEmbedder, tokeniser_reconstructions


def floor_travel(joints: np.ndarray) -> float:
    """Distance (m) on the floor between the root's first and last positions."""
    return float(np.linalg.norm(joints[-1, 0, [0, 2]] - joints[0, 0, [0, 2]]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="prepared Bandai-Namco folder (free3d data prepare)")
    p.add_argument("--model", default=None, help="generator folder to check (default: bundled)")
    args = p.parse_args()
    records = [r for r in read_records(args.data) if r.split == "test"]
    if not records:
        raise SystemExit(f"no test clips in {args.data}")
    embedder = EvaluatorEmbedder()
    contents = embedder.config.contents
    model = Free3D.from_pretrained(args.model, precision="fp32")
    reconstructed = tokeniser_reconstructions(model, args.data, [r.id for r in records])
    _, predicted = embedder.motions([m.astype(np.float32) for m in reconstructed])

    by_content: dict[str, list[int]] = collections.defaultdict(list)
    for i, r in enumerate(records):
        by_content[r.labels["content"]].append(i)
    print(f"{len(records)} test clips; tokeniser of {args.model or 'the bundled model'}")
    print("| content | clips | recognised | called most often | travel real (m) | travel reconstructed (m) |")
    print("|---|---|---|---|---|---|")
    total = 0
    for content in sorted(by_content):
        idx = by_content[content]
        calls = collections.Counter(contents[predicted["content"][i]] for i in idx)
        hits = calls.get(content, 0)
        total += hits
        real = np.median([floor_travel(load_motion3d(args.data, records[i].id)) for i in idx])
        recon = np.median([floor_travel(reconstructed[i]) for i in idx])
        print(f"| {content} | {len(idx)} | {hits}/{len(idx)} | {calls.most_common(1)[0][0]} "
              f"| {real:.1f} | {recon:.1f} |")
    print(f"recognised overall: {total}/{len(records)} ({total / len(records):.3f})")


if __name__ == "__main__":
    main()
