"""Shared fixtures: everything is synthetic, nothing reads ../shared."""

from __future__ import annotations

import pytest

from free3d.data.prepare import prepare_dataset
from free3d.data.sources.procedural import SOURCE, procedural_takes
from free3d.skeleton import get_skeleton


@pytest.fixture(scope="session")
def procedural_dataset(tmp_path_factory):
    """A small prepared dataset (bandai21) built from procedural motion."""
    out = tmp_path_factory.mktemp("prepared") / "procedural"
    skeleton = get_skeleton("bandai21")
    takes = procedural_takes(skeleton=skeleton, clips_per_kind=7, seed=3)
    prepare_dataset(takes, out, skeleton=skeleton, source=SOURCE, seed=3, progress=False)
    return out


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Caption-embedding caches go to a temporary folder, never the user's ~/.cache."""
    monkeypatch.setenv("FREE3D_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
