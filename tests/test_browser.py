"""The web app and the HTML export in a real browser (issue 17): headless Chromium (the
Debian package, /usr/bin/chromium) driven by Playwright, never Playwright's own download.

Skipped where Chromium or Playwright is absent; .ci/run installs both. Screenshots go to
$FREE3D_SHOTS when set (e.g. FREE3D_SHOTS=shots python -m pytest tests/test_browser.py)."""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser
CHROMIUM = os.environ.get("FREE3D_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM:
    pytest.skip("no Chromium (apt install chromium); browser tests skipped", allow_module_level=True)
pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")
from PIL import Image  # noqa: E402
from test_serve import live_server  # noqa: E402

from free3d.bvh import read_bvh  # noqa: E402
from free3d.serve import create_app  # noqa: E402

VIEWPORT = {"width": 1280, "height": 900}


def shot_path(name: str, tmp_path: Path) -> Path:
    folder = Path(os.environ.get("FREE3D_SHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app with the bundled model (what a user sees), on a live loopback port."""
    from free3d.api import Free3D

    model = Free3D.from_pretrained(device="cpu", precision="fp32")
    app = create_app(model, out=tmp_path_factory.mktemp("browser-out"), model_name="bandai21-cpu")
    with live_server(app) as base:
        yield base


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.problems = []  # script errors and console errors: a page that works has none
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    # (a 400 is the API refusing a bad request on purpose; the page shows its message)
    page.on("console", lambda m: m.type == "error" and "status of 400" not in m.text
            and page.problems.append(m.text))
    yield page
    context.close()


def canvas_image(page, selector: str = "canvas.f3d-canvas") -> np.ndarray:
    png = page.locator(selector).first.screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def skeleton_pixels(img: np.ndarray) -> tuple[int, int]:
    """(left-blue, right-red) pixel counts: the two sides of a drawn skeleton."""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    blue = (b > 150) & (r < 90) & (g < 150)
    red = (r > 150) & (g < 90) & (b < 90)
    return int(blue.sum()), int(red.sum())


def frame(page) -> int:
    return int(page.locator("canvas.f3d-canvas").get_attribute("data-frame"))


def wait_until(condition, timeout: float = 30.0) -> None:
    """Poll from Python: page.wait_for_function evaluates strings, which the export's CSP forbids."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def check_animates(page) -> np.ndarray:
    """Two screenshots of the canvas some frames apart differ, and both sides are drawn."""
    first = canvas_image(page)
    start = frame(page)
    wait_until(lambda: frame(page) != start)
    time.sleep(0.4)
    second = canvas_image(page)
    assert first.shape == second.shape
    changed = (np.abs(first - second).sum(-1) > 30).mean()
    assert changed > 0.002, f"only {changed:.4%} of the canvas changed"
    background = np.array([0xF4, 0xF5, 0xF7])
    assert (np.abs(second - background).sum(-1) > 30).mean() > 0.05  # floor, grid and body drawn
    blue, red = skeleton_pixels(second)
    assert blue > 150 and red > 150, (blue, red)
    return second


def generate(page, prompts: str, seconds: str) -> None:
    page.fill("#prompts", prompts)
    page.fill("#seconds", seconds)
    page.click("#generate-button")


def test_the_page_loads_offline_from_the_package(page, server):
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(server + "/")
    assert page.title() == "free3d"
    wait_until(lambda: "bandai21" in page.locator("#model").text_content())
    assert page.locator("canvas.f3d-canvas").is_visible()
    assert all(u.startswith(server) or u.startswith("data:") for u in requests), requests
    assert page.problems == []


def test_a_prompt_becomes_an_animation_with_downloads(page, server, tmp_path):
    page.goto(server + "/")
    generate(page, "a person walks forward\na person jumps", "3")
    page.wait_for_selector("#results .result >> nth=1", timeout=180_000)
    assert page.locator("#error").is_hidden()
    check_animates(page)
    page.screenshot(path=str(shot_path("app.png", tmp_path)), full_page=True)
    # the selector holds both motions; the second one plays too
    assert page.locator(".f3d-select option").count() == 2
    page.select_option(".f3d-select", "1")
    check_animates(page)
    # downloads: files that their readers accept
    first = page.locator("#results .result").first
    saved = {}
    for fmt in ("npy", "bvh", "gif", "html"):
        with page.expect_download(timeout=120_000) as d:
            first.locator(f"a.download-{fmt}").click()
        saved[fmt] = tmp_path / d.value.suggested_filename
        d.value.save_as(saved[fmt])
        assert saved[fmt].suffix == f".{fmt}"
    joints = np.load(saved["npy"])
    assert joints.shape == (60, 21, 3) and np.isfinite(joints).all()
    bvh = read_bvh(saved["bvh"])
    assert bvh.num_frames == 60 and bvh.fps == 20
    with Image.open(saved["gif"]) as im:
        assert im.format == "GIF" and im.n_frames > 1
    assert "Free3DViewer.create" in saved["html"].read_text(encoding="utf-8")
    assert page.problems == []


@pytest.mark.parametrize("prompts, seconds, message", [
    ("a person walks", "20", "length 20.0 s is outside 2 to 9.8 s"),
    ("   ", "4", "no prompt: write one per line"),
    ("a person walks", "soon", "seconds: "),
])
def test_a_bad_request_shows_the_apis_message(page, server, prompts, seconds, message):
    page.goto(server + "/")
    page.fill("#prompts", prompts)
    page.locator("#seconds").evaluate("(el, v) => { el.type = 'text'; el.value = v; }", seconds)
    page.click("#generate-button")
    page.wait_for_selector("#error:not([hidden])", timeout=60_000)
    assert message in page.locator("#error").inner_text()
    assert page.locator("#results .result").count() == 0


def test_edit_a_span_and_lift_an_upload(page, server, tmp_path):
    from test_serve import _coco_file

    page.goto(server + "/")
    generate(page, "a person walks forward", "4")
    page.wait_for_selector("#results .result", timeout=180_000)
    item = page.locator("#results .result").first
    item.locator("input.start").fill("1")
    item.locator("input.end").fill("2.5")
    item.locator("input.prompt").fill("a person jumps")
    item.locator(".edit button").click()
    page.wait_for_selector("#results .result >> nth=1", timeout=180_000)
    assert "redone as 'a person jumps'" in page.locator("#results .result").nth(1).inner_text()
    item.locator("input.end").fill("30")  # outside the motion: the API's message
    item.locator(".edit button").click()
    page.wait_for_selector("#error:not([hidden])", timeout=60_000)
    assert "is not inside the motion" in page.locator("#error").inner_text()
    upload = tmp_path / "dance.json"
    upload.write_bytes(_coco_file())
    page.set_input_files("#keypoints", str(upload))
    page.fill("#fps", "20")
    page.click("#lift-button")
    page.wait_for_selector("#results .result >> nth=2", timeout=180_000)
    assert page.locator("#error").is_hidden()
    assert "dance.json: lifted (coco17)" in page.locator("#results .result").nth(2).inner_text()
    check_animates(page)
    assert page.problems == []


def test_the_html_export_plays_from_disk_with_the_network_blocked(browser, tmp_path):
    from free3d.cli import main

    out = tmp_path / "export"
    assert main(["generate", "a person walks forward", "a person waves", "--seconds", "3", "--format",
                 "html", "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    path = out / "generations.html"
    context = browser.new_context(viewport={"width": 1100, "height": 800}, offline=True)
    blocked = []

    def only_files(route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_files)
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.goto(path.as_uri())
    page.wait_for_selector("canvas.f3d-canvas[data-frame]")
    check_animates(page)
    assert page.locator(".f3d-select option").count() == 2
    data = json.loads(page.locator("#free3d-data").text_content())
    assert [m["label"] for m in data["motions"]] == ["[0] a person walks forward (seed 0)",
                                                      "[1] a person waves (seed 0)"]
    # the controls work: pause holds the frame, the slider moves it
    page.click(".f3d-play")
    held = frame(page)
    time.sleep(0.3)
    assert frame(page) == held
    page.locator(".f3d-scrub").evaluate("el => { el.value = '50'; el.dispatchEvent(new Event('input')); }")
    wait_until(lambda: frame(page) == 50)
    page.click(".f3d-play")
    check_animates(page)
    page.screenshot(path=str(shot_path("export.png", tmp_path)))
    assert blocked == [] and problems == []
    context.close()
