"""Data preparation under careless use (issue 15, weak items): damaged sources and
datasets name their file, and a killed run leaves neither scratch nor worker processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from test_bandai_namco import write_dataset

from free3d.cli import main
from free3d.data.ground_truth import load_camera, load_motion3d
from free3d.data.motion2d import load_clip2d
from free3d.data.prepare import prepare_dataset
from free3d.data.prepared import DatasetError, read_records
from free3d.data.sources.bandai_namco import load_bandai_namco
from free3d.data.sources.procedural import procedural_takes
from free3d.locks import locked
from free3d.skeleton import get_skeleton


@pytest.fixture
def source(tmp_path):
    src = tmp_path / "src"
    return write_dataset(src, 1, {"dataset-1_walk_normal_001": (90, 0, 0)}), src


def test_a_nan_in_a_bvh_names_the_file_and_frame(source):
    ds, src = source
    bvh = ds / "data" / "dataset-1_walk_normal_001.bvh"
    lines = bvh.read_text().splitlines()
    lines[-3] = "nan " + lines[-3].split(" ", 1)[1]
    bvh.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"dataset-1_walk_normal_001.bvh: NaN or infinite .* \(frame 88\)"):
        load_bandai_namco(src, workers=1, progress=False)


@pytest.mark.parametrize("text", ["{", "[1, 2]"])
def test_a_bad_label_json_names_the_file(source, text):
    ds, src = source
    (ds / "data" / "dataset-1_walk_normal_001.json").write_text(text)
    with pytest.raises(ValueError, match="dataset-1_walk_normal_001.json: not a label JSON"):
        load_bandai_namco(src, workers=1, progress=False)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_out_under_proc_names_out_not_the_scratch(capsys):
    assert main(["data", "prepare", "procedural", "--out", "/proc/free3d-newds", "--quiet",
                 "--clips-per-kind", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("free3d: error: --out /proc/free3d-newds cannot be made or written")
    assert err.count("\n") == 1 and "partial" not in err


def test_scratch_of_a_killed_run_is_removed_and_a_live_one_kept(tmp_path):
    s = get_skeleton("bandai21")
    dead, live = tmp_path / ".out.partial-dead", tmp_path / ".out.partial-live"
    for d in (dead, live):
        (d / "motion3d").mkdir(parents=True)
    with locked(live):  # another prepare still writing
        prepare_dataset(procedural_takes(skeleton=s, clips_per_kind=1, seed=0), tmp_path / "out",
                        skeleton=s, source="t", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.partial-live", "out"]
    assert len(read_records(tmp_path / "out")) == 3


def test_a_damaged_array_names_its_file(procedural_dataset, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(procedural_dataset, root)
    clip = read_records(root)[0].id
    (root / "motion3d" / f"{clip}.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DatasetError, match=f"motion3d/{clip}.npy is damaged"):
        load_motion3d(root, clip)
    (root / "motion2d" / f"{clip}.npz").write_bytes(b"PK garbage")
    with pytest.raises(DatasetError, match=f"motion2d/{clip}.npz is damaged"):
        load_clip2d(root, clip)
    with pytest.raises(DatasetError, match=f"motion2d/{clip}.npz is damaged"):
        load_camera(root, clip)
    np.savez(root / "motion2d" / f"{clip}.npz", trajectory=np.zeros((3, 2)))  # keys missing
    with pytest.raises(DatasetError, match="limbs"):
        load_clip2d(root, clip)


def test_workers_end_when_the_main_process_is_killed(tmp_path):
    script = textwrap.dedent("""
        import os, time
        from concurrent.futures import ProcessPoolExecutor
        from free3d.data.sources.bandai_namco import _die_with_parent
        if __name__ == "__main__":
            pool = ProcessPoolExecutor(2, initializer=_die_with_parent, initargs=(os.getpid(),))
            pids = {pool.submit(os.getpid).result() for _ in range(4)}
            print(" ".join(map(str, pids)), flush=True)
            time.sleep(60)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    workers = [int(p) for p in proc.stdout.readline().split()]
    assert workers
    proc.send_signal(signal.SIGKILL)  # kill -9: nothing in the main process runs any more
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert not any(_alive(p) for p in workers)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by init) counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
