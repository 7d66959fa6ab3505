"""Fixed, seeded train/val/test splits, stratified by label and made per take."""

from __future__ import annotations

import math
import random
import zlib
from collections import defaultdict
from collections.abc import Mapping

DEFAULT_RATIOS = (0.80, 0.05, 0.15)


def stratified_split(
    takes: Mapping[str, str],
    *,
    seed: int = 0,
    ratios: tuple[float, float, float] = DEFAULT_RATIOS,
) -> dict[str, str]:
    """Assign each take ("take id" -> stratum label) to "train", "val" or "test".

    Whole takes are assigned, so pieces cut from one take never straddle splits. Within
    each stratum the takes are shuffled and dealt out by largest remainder, carrying the
    rounding error from stratum to stratum: every stratum gets its share to within one
    take and the global proportions come out as close as whole takes allow. Strata with a
    single take go where the carried error says, so rare labels still reach test.
    The result depends only on the seed and the set of takes, not on their order.
    """
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1) > 1e-6:
        raise ValueError(f"ratios must be three non-negative numbers summing to 1, got {ratios}")
    names = ("train", "val", "test")
    strata: dict[str, list[str]] = defaultdict(list)
    for take, label in takes.items():
        strata[label].append(take)
    carry = [0.0, 0.0, 0.0]
    out: dict[str, str] = {}
    for label in sorted(strata):
        members = sorted(strata[label])
        random.Random(zlib.crc32(f"{seed}:{label}".encode())).shuffle(members)
        want = [len(members) * r + c for r, c in zip(ratios, carry)]
        counts = [max(0, math.floor(w)) for w in want]
        # settle the rounding by remainder: largest remainders gain a take, smallest lose one
        while sum(counts) < len(members):
            counts[max(range(3), key=lambda i: want[i] - counts[i])] += 1
        while sum(counts) > len(members):
            counts[min((i for i in range(3) if counts[i]), key=lambda i: want[i] - counts[i])] -= 1
        carry = [w - c for w, c in zip(want, counts)]
        start = 0
        for name, count in zip(names, counts):
            for take in members[start:start + count]:
                out[take] = name
            start += count
    return out
