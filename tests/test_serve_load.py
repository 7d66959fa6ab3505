"""`free3d serve` under load (issue 17): a live uvicorn with a tiny random model answers 8
requests at once and then 200 in a row (each a 2 s motion and its npy download), every one
without error, and its memory stays flat. The numbers in docs/serve.md come from

    python -m pytest tests/test_serve_load.py -s

(``FREE3D_LOAD_MODEL=default`` runs it with the bundled model instead: minutes, not seconds.)
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402
from test_serve import live_server  # noqa: E402

from free3d.serve import JOB_RE, create_app  # noqa: E402

WARM_UP, AT_ONCE, IN_A_ROW = 20, 8, 200
MAX_GROWTH_MB = 50.0


def rss_mb() -> float:
    """This process's resident memory (server and client both live here), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


@pytest.fixture(scope="module")
def model():
    which = os.environ.get("FREE3D_LOAD_MODEL")
    if which:
        from free3d.api import Free3D

        return Free3D.from_pretrained(which, device="cpu", precision="fp32")
    from test_generation import tiny_model

    return tiny_model()


def test_8_at_once_and_200_in_a_row_all_answered_memory_flat(model, tmp_path):
    if not Path("/proc/self/status").is_file():
        pytest.skip("reads memory from /proc (Linux)")
    app = create_app(model, out=tmp_path, keep_jobs=50)

    def body(seed: int) -> dict:
        return {"prompts": "a person walks forward", "seconds": 2, "seed": seed}

    with live_server(app) as base, httpx.Client(base_url=base, timeout=600) as http:
        def one(seed: int, client: httpx.Client | None = None) -> float:
            """A generate request and the download of its first npy; its seconds."""
            c = client or http
            t0 = time.perf_counter()
            r = c.post("/api/generate", json=body(seed))
            assert r.status_code == 200, r.text
            results = r.json()["results"]
            assert len(results) == 1 and len(results[0]["joints"]) == 40 * 21 * 3
            d = c.get(results[0]["downloads"]["npy"])
            assert d.status_code == 200 and d.content.startswith(b"\x93NUMPY")
            return time.perf_counter() - t0

        for seed in range(WARM_UP):  # allocator pools, caches and lazy imports settle
            one(seed)
        gc.collect()
        before = rss_mb()

        def own_client(seed: int) -> float:  # each on its own connection, all at once
            with httpx.Client(base_url=base, timeout=600) as c:
                return one(seed, c)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(AT_ONCE) as pool:
            together = list(pool.map(own_client, range(100, 100 + AT_ONCE)))
        burst = time.perf_counter() - t0
        times, halfway = [], None
        for i in range(IN_A_ROW):
            times.append(one(1000 + i))
            if i == IN_A_ROW // 2 - 1:
                gc.collect()
                halfway = rss_mb()
        gc.collect()
        after = rss_mb()
    jobs = [p for p in tmp_path.iterdir() if JOB_RE.fullmatch(p.name)]
    times.sort()
    which = os.environ.get("FREE3D_LOAD_MODEL")
    print(f"\nload test ({f'model {which}' if which else 'tiny random model'}, "
          f"one 2 s motion per request, plus its npy download):\n"
          f"  {AT_ONCE} at once: all 200 in {burst:.2f} s (slowest {max(together):.2f} s)\n"
          f"  {IN_A_ROW} in a row: all 200, median {statistics.median(times) * 1000:.0f} ms, "
          f"p95 {times[int(0.95 * len(times)) - 1] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms\n"
          f"  RSS after warm-up {before:.1f} MiB, after the burst and {IN_A_ROW // 2} in a row "
          f"{halfway:.1f} MiB, after all {after:.1f} MiB (growth {after - before:+.1f} MiB)\n"
          f"  job folders kept: {len(jobs)} (keep_jobs=50)")
    assert len(jobs) <= 50
    assert after - before < MAX_GROWTH_MB
