"""`--format html`: one self-contained file holding the motions and the 3D viewer (issue 17).

What the file does in a browser is checked in test_browser.py; here, what it holds."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from free3d.cli import main
from free3d.data.sources.procedural import procedural_motion
from free3d.export.html import html_text, motion_payload, write_html
from free3d.skeleton import get_skeleton
from free3d.viewer import FILES, read_asset

SK = get_skeleton("bandai21")


def embedded(html: str) -> dict:
    """The JSON data block of an exported file."""
    m = re.search(r'<script id="free3d-data" type="application/json">(.*?)</script>', html, re.S)
    assert m, "no data block"
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def walk() -> np.ndarray:
    return procedural_motion("walk", SK, seconds=3, speed="normal", rng=np.random.default_rng(0))


def test_payload_holds_joints_skeleton_and_sides(walk):
    p = motion_payload(walk, SK, label="a walk", fps=20)
    assert p["frames"] == len(walk) and p["fps"] == 20.0 and p["parents"] == list(SK.parents)
    joints = np.asarray(p["joints"]).reshape(walk.shape)
    assert np.abs(joints - walk).max() <= 5e-4  # millimetre steps
    assert SK.index("left_wrist") in p["left"] and SK.index("right_ankle") in p["right"]
    assert not set(p["left"]) & set(p["right"]) and SK.index("head") not in p["left"] + p["right"]
    assert p["head"] == SK.index("head")


@pytest.mark.parametrize("bad, message", [
    (np.zeros((10, 20, 3)), "shape"), (np.full((10, 21, 3), np.nan), "finite")])
def test_payload_refuses_bad_joints(bad, message):
    with pytest.raises(ValueError, match=message):
        motion_payload(bad, SK, label="x", fps=20)


def test_file_is_self_contained_and_prompts_cannot_break_out(tmp_path, walk):
    label = "</script><script>alert(1)</script> __JS__ & <b>"
    path = write_html(tmp_path / "m.html", [motion_payload(walk, SK, label=label, fps=20)], title=label)
    html = path.read_text(encoding="utf-8")
    assert html.count("</script>") == 3  # data, viewer, start-up: the label's was escaped
    assert embedded(html)["motions"][0]["label"] == label  # and reads back as written
    assert html.count("Free3DViewer = {") == 1  # the placeholder in the label was not filled
    assert "&lt;/script&gt;" in html  # the title, escaped
    # nothing to fetch: no URL, no external script or style, and a policy that forbids any
    assert not re.search(r"https?://|<script[^>]+src=|<link[^>]+stylesheet", html)
    assert "default-src 'none'" in html
    assert [p.name for p in tmp_path.iterdir()] == ["m.html"]  # written atomically


def test_viewer_files_are_package_data_without_urls():
    for name in FILES:
        text = read_asset(name)
        assert text.strip()
        assert not re.search(r"https?://", text), name  # offline: nothing refers to the network
    assert "</script" not in read_asset("viewer.js")  # it is inlined into a <script> element
    with pytest.raises(KeyError):
        read_asset("../serve.py")


def test_no_motion_is_refused():
    with pytest.raises(ValueError, match="at least one motion"):
        html_text([])


def test_generate_writes_one_file_with_every_motion(tmp_path):
    out = tmp_path / "out"
    assert main(["generate", "a person walks forward", "a person jumps", "--seconds", "2",
                 "--num-samples", "2", "--format", "npy,html", "--out", str(out), "--quiet",
                 "--device", "cpu"]) == 0
    entries = json.loads((out / "generations.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [e["files"]["npy"] for e in entries] + ["generations.html", "generations.json"])
    motions = embedded((out / "generations.html").read_text(encoding="utf-8"))["motions"]
    prompts = ((0, "a person walks forward"), (1, "a person jumps"))
    assert [m["label"] for m in motions] == [f"[{p}] {t} (seed {s})" for p, t in prompts for s in (0, 1)]
    for m, e in zip(motions, entries):
        np.testing.assert_allclose(np.reshape(m["joints"], (-1, 21, 3)), np.load(out / e["files"]["npy"]),
                                   atol=5e-4)
    # a second call without --overwrite is refused; with it, a call without html drops the old viewer
    assert main(["generate", "walk", "--seconds", "2", "--format", "html", "--out", str(out)]) == 2
    assert main(["generate", "walk", "--seconds", "2", "--format", "npy", "--out", str(out),
                 "--overwrite", "--quiet", "--device", "cpu"]) == 0
    assert not (out / "generations.html").exists()


def test_lift_writes_a_viewer_file(tmp_path, walk):
    from test_lift_command import COCO17, coco_json, pixels

    src = coco_json(tmp_path / "walk.json", [[p] for p in pixels(walk, COCO17)])
    out = tmp_path / "lifted"
    assert main(["lift", str(src), "--format", "npy,html", "--out", str(out), "--fps", "20"]) == 0
    motions = embedded((out / "walk.html").read_text(encoding="utf-8"))["motions"]
    assert len(motions) == 1 and motions[0]["label"] == "walk.json: lifted"
    np.testing.assert_allclose(np.reshape(motions[0]["joints"], (-1, 21, 3)), np.load(out / "walk.npy"),
                               atol=5e-4)
