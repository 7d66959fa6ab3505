"""Checks on the real Bandai-Namco data in ../shared (slow; run with -m slow)."""

from pathlib import Path

import numpy as np
import pytest

from free3d.data.ground_truth import load_motion3d
from free3d.data.prepare import prepare_dataset
from free3d.data.prepared import read_records
from free3d.data.sources.bandai_namco import load_bandai_namco
from free3d.skeleton import BANDAI21

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "bandai-namco"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/bandai-namco is not here"),
]


@pytest.fixture(scope="module")
def bandai(tmp_path_factory):
    out = tmp_path_factory.mktemp("bn") / "bandai-namco"
    summary = prepare_dataset(load_bandai_namco(SHARED, progress=False), out, skeleton=BANDAI21,
                              source="bandai-namco", progress=False)
    return out, summary


def test_full_preparation(bandai):
    out, summary = bandai
    assert summary["takes_kept"] + sum(summary["dropped"].values()) == 3076
    assert summary["clips"] > 2500 and summary["hours"] > 3
    assert summary["max_bone_length_drift_mm"] < 0.01
    assert set(summary["labels"]["dataset"]) == {"dataset-1", "dataset-2"}
    n = summary["clips"]
    assert summary["splits"]["train"] / n == pytest.approx(0.80, abs=0.02)
    assert summary["splits"]["test"] / n == pytest.approx(0.15, abs=0.02)


def test_every_clip_looks_like_a_standing_person(bandai):
    out, _ = bandai
    s = BANDAI21
    for r in read_records(out):
        j = load_motion3d(out, r.id)
        head, pelvis = j[:, s.index("head"), 1], j[:, s.index("pelvis"), 1]
        feet = j[:, [s.index("left_toe"), s.index("right_toe")], 1]
        assert np.median(head) > np.median(pelvis) > np.median(feet), r.id
        assert abs(j[..., 1].min()) < 1e-5 and np.allclose(j[0, 0, [0, 2]], 0, atol=1e-5)
        rest = j[0, s.index("left_hip")] - j[0, s.index("right_hip")]
        assert rest[0] > 0, r.id  # first frame: body's left at +X, so facing +Z
