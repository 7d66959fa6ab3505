"""`free3d serve`'s API (issue 17): generate, edit, lift and downloads through FastAPI's
TestClient and a live uvicorn, with a tiny random model; and the safety limits: body size,
path traversal, a bounded queue, Host headers, errors as JSON."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import numpy as np
import pytest

pytest.importorskip("fastapi")  # the serve extra (in the test extra too)
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from free3d.bvh import bvh_to_positions, read_bvh  # noqa: E402
from free3d.cli import main  # noqa: E402
from free3d.serve import JOB_RE, Busy, Worker, create_app  # noqa: E402


@contextlib.contextmanager
def live_server(app) -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port in a thread; yields its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           limit_concurrency=64))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def raw_get(base: str, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    """GET ``path`` exactly as written: no client normalises its dots or its escapes."""
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def tiny():
    from test_generation import tiny_model

    return tiny_model()


@pytest.fixture(scope="module")
def app(tiny, tmp_path_factory):
    return create_app(tiny, out=tmp_path_factory.mktemp("serve-out"), model_name="tiny")


@pytest.fixture(scope="module")
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def generated(client) -> list[dict]:
    r = client.post("/api/generate", json={"prompts": "a person walks forward\n\na person jumps\n",
                                           "seconds": 2.5, "seed": 3, "num_samples": 2})
    assert r.status_code == 200, r.text
    return r.json()["results"]


def error(r, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()["error"]


def test_page_and_its_files_come_from_the_package(client):
    r = client.get("/")
    assert r.status_code == 200 and "/static/viewer.js" in r.text and "/static/app.js" in r.text
    assert "default-src 'self'" in r.headers["content-security-policy"]
    for name, kind in (("viewer.js", "javascript"), ("app.js", "javascript"), ("viewer.css", "css")):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
    assert "http://" not in client.get("/").text  # nothing from elsewhere
    error(client.get("/static/export.html"), 404)
    error(client.get("/static/__init__.py"), 404)
    info = client.get("/api/info").json()
    assert info["model"] == "tiny" and info["skeleton"] == "bandai21"
    assert info["limits"]["min_seconds"] == 2 and info["limits"]["max_seconds"] == 9.8
    assert "coco17" in info["layouts"]


def test_generate_returns_every_motion_with_its_viewer_data(generated):
    assert [(g["text"], g["seed"]) for g in generated] == [
        (t, s) for t in ("a person walks forward", "a person jumps") for s in (3, 4)]
    for g in generated:
        assert g["frames"] == 50 and g["fps"] == 20 and g["seconds"] == 2.5
        assert len(g["joints"]) == 50 * 21 * 3 and len(g["parents"]) == 21 and g["left"] and g["right"]
        assert JOB_RE.fullmatch(g["job"]) and g["id"] == f"{g['job']}/{g['stem']}"
        assert set(g["downloads"]) == {"npy", "bvh", "gif", "html"}
    assert len({g["job"] for g in generated}) == 1  # one request, one job folder


def test_downloads_are_the_exporters_files(client, generated):
    g = generated[1]
    joints = np.reshape(g["joints"], (-1, 21, 3))
    r = client.get(g["downloads"]["npy"])
    assert r.status_code == 200 and f'filename="{g["stem"]}.npy"' in r.headers["content-disposition"]
    npy = np.load(io.BytesIO(r.content))
    assert npy.shape == (50, 21, 3) and npy.dtype == np.float32
    np.testing.assert_allclose(npy, joints, atol=5e-4)
    for fmt in ("bvh", "gif", "html"):  # written on the first request, served as is after
        first = client.get(g["downloads"][fmt])
        assert first.status_code == 200, first.text
        assert client.get(g["downloads"][fmt]).content == first.content
        if fmt == "bvh":
            path = client.app.state.jobs.root / g["job"] / f"{g['stem']}.bvh"
            assert path.read_bytes() == first.content
            back = bvh_to_positions(read_bvh(path), joints=g["names"]) / 100  # centimetres
            assert np.linalg.norm(back - npy, axis=-1).max() < 0.01
        elif fmt == "gif":
            with Image.open(io.BytesIO(first.content)) as im:
                assert im.format == "GIF" and im.n_frames > 1
        else:
            assert first.headers["content-type"].startswith("text/html")
            assert b"Free3DViewer.create" in first.content and g["text"].encode() in first.content


def test_same_request_same_motions(client, generated):
    again = client.post("/api/generate", json={"prompts": ["a person jumps"], "seconds": 2.5, "seed": 4})
    assert again.status_code == 200
    # float rounding differs with the batch, IK near a straight knee turns it into up to 0.1 mm,
    # and joints travel rounded to the millimetre: one rounding step apart at most
    np.testing.assert_allclose(again.json()["results"][0]["joints"], generated[3]["joints"], atol=1.01e-3)


@pytest.mark.parametrize("body, message", [
    ({"prompts": ""}, "no prompt"),
    ({"prompts": "  \n \n"}, "no prompt"),
    ({"prompts": ["walk", "  "]}, "empty prompt"),
    ({"prompts": [f"walk {i}" for i in range(17)]}, "at most 16"),
    ({"prompts": "x" * 301}, "at most 300"),
    ({"prompts": "walk", "seconds": 20}, "outside 2 to 9.8 s"),
    ({"prompts": "walk", "seconds": 1.5}, "outside 2 to 9.8 s"),
    ({"prompts": "walk", "seconds": "long"}, "seconds: "),
    ({"prompts": "walk", "num_samples": 0}, "num_samples must be 1 to 8"),
    ({"prompts": "walk", "num_samples": 9}, "num_samples must be 1 to 8"),
    ({"prompts": "\n".join(["walk"] * 5), "num_samples": 8}, "at most 32 per request"),
    ({"prompts": "walk", "seed": -1}, "seed -1 is out of range"),
    ({"prompts": "walk", "seed": 1.5}, "seed: "),
    ({"prompts": "walk", "guidance": -2}, "guidance must be"),
    ({"prompts": "walk", "temperature": 2}, "temperature: Extra inputs"),
    ({"prompts": 5}, "prompts"),
    ({}, "prompts: Field required"),
])
def test_bad_requests_are_one_json_error(client, body, message):
    assert message in error(client.post("/api/generate", json=body), 400)


def test_non_finite_and_non_json_bodies(client):
    r = client.post("/api/generate", content=b'{"prompts": "walk", "seconds": NaN}',
                    headers={"content-type": "application/json"})
    assert "outside 2 to 9.8" in error(r, 400) or "seconds" in error(r, 400)
    r = client.post("/api/generate", content=b"{not json", headers={"content-type": "application/json"})
    assert error(r, 400)
    assert "Method Not Allowed" in error(client.get("/api/generate"), 405)


def test_edit_redoes_the_span_and_keeps_the_rest(client):
    src = client.post("/api/generate", json={"prompts": "a person walks", "seconds": 4}).json()["results"][0]
    r = client.post("/api/edit", json={"job": src["job"], "stem": src["stem"], "start": 1.0, "end": 2.5,
                                       "prompt": "a person jumps", "seed": 5})
    assert r.status_code == 200, r.text
    (e,) = r.json()["results"]
    before, after = np.reshape(src["joints"], (-1, 21, 3)), np.reshape(e["joints"], (-1, 21, 3))
    assert after.shape == before.shape and e["job"] != src["job"] and e["text"] == "a person jumps"
    np.testing.assert_allclose(after[:20], before[:20], atol=1e-3)  # float32 npy: mm steps in the JSON
    np.testing.assert_allclose(after[50:], before[50:], atol=1e-3)
    assert not np.allclose(after[20:50], before[20:50], atol=1e-2)
    assert "1-2.5 s redone as 'a person jumps'" in e["label"]
    # the edit is a result like any other: it can be edited and downloaded in turn
    assert client.get(e["downloads"]["npy"]).status_code == 200
    bad = {"job": src["job"], "stem": src["stem"], "start": 3.0, "end": 9.0, "prompt": "jump"}
    assert "not inside the motion" in error(client.post("/api/edit", json=bad), 400)
    assert "empty prompt" in error(client.post("/api/edit", json={**bad, "end": 4, "prompt": " "}), 400)
    gone = {**bad, "job": "0" * 16, "end": 4}
    assert "no result" in error(client.post("/api/edit", json=gone), 404)
    assert error(client.post("/api/edit", json={**gone, "job": "../../etc"}), 404) == "no such result"


def _coco_file() -> bytes:
    from test_lift_command import COCO17, SK, pixels

    from free3d.data.sources.procedural import procedural_motion

    walk = procedural_motion("walk", SK, seconds=2.5, speed="normal", rng=np.random.default_rng(0))
    frames = [[{"keypoints": np.concatenate([p, np.full((17, 1), 0.9)], 1).ravel().tolist(), "score": 0.9}]
              for p in pixels(walk, COCO17)]
    return json.dumps(frames).encode()


def test_lift_an_uploaded_keypoint_file_and_edit_it(client):
    r = client.post("/api/lift", files={"file": ("my clip.json", _coco_file(), "application/json")},
                    data={"fps": "20"})
    assert r.status_code == 200, r.text
    (lifted,) = r.json()["results"]
    assert lifted["frames"] == 50 and lifted["label"] == "my clip.json: lifted (coco17)"
    assert lifted["stem"] == "my-clip" and lifted["seed"] is None
    job = client.app.state.jobs.root / lifted["job"]
    assert sorted(p.name for p in job.iterdir()) == ["lifted.json", "my-clip.npy", "my-clip_2d.npz"]
    with Image.open(io.BytesIO(client.get(lifted["downloads"]["gif"]).content)) as im:
        assert im.n_frames > 1
    r = client.post("/api/edit", json={"job": lifted["job"], "stem": lifted["stem"], "start": 0, "end": 1,
                                       "prompt": "a person waves"})
    assert r.status_code == 200, r.text  # a lifted clip has no tokens: the model tokenises it first


@pytest.mark.parametrize("name, data, form, message", [
    ("clip.txt", b"[]", {}, "upload a keypoint file"),
    ("clip.json", b"", {}, "the file is empty"),
    ("clip.json", b"{not json", {}, "clip.json"),
    ("clip.npy", b"\x93NUMPY garbage", {}, "clip.npy"),
    ("clip.json", b"[]", {"layout": "smpl"}, "unknown layout"),
    ("clip.json", b"[]", {"fps": "fast"}, "fps: "),
])
def test_bad_uploads_are_one_json_error_naming_the_users_file(client, name, data, form, message):
    msg = error(client.post("/api/lift", files={"file": (name, data)}, data=form), 400)
    assert message in msg
    assert str(client.app.state.jobs.root) not in msg  # the server's folders stay private


def test_files_outside_the_downloads_are_not_served(client, generated):
    g = generated[0]
    for name in ("generations.json", f"{g['stem']}.codes.npz", f"{g['stem']}.txt", f"{g['stem']}",
                 "nothing_seed0.npy", ".npy"):
        assert error(client.get(f"/api/files/{g['job']}/{name}"), 404)
    assert error(client.get(f"/api/files/{'f' * 16}/{g['stem']}.npy"), 404)


TRAVERSALS = [
    "/api/files/../../etc/passwd",
    "/api/files/..%2F..%2F..%2Fetc%2Fpasswd",
    "/api/files/%2e%2e/%2e%2e/etc/passwd",
    "/api/files/{job}/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/api/files/{job}/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/api/files/{job}/..%252F..%252Fetc%252Fpasswd",
    "/api/files/{job}/..%5C..%5Cetc%5Cpasswd",
    "/api/files/{job}/%2Fetc%2Fpasswd",
    "/api/files/%2Fetc/passwd",
    "/api/files/{job}/%00.npy",
    "/api/files/{job}/{stem}.npy%00.gif",
    "/api/files/{job}/../{job}/{stem}.npy/../../../../etc/passwd",
    "/static/..%2F..%2Fserve.py",
    "/static/%2e%2e/serve.py",
    "/static/../../../../etc/passwd",
]


def test_path_traversal_is_refused_on_a_live_server(app, generated):
    g = generated[0]
    with live_server(app) as base:
        status, body = raw_get(base, f"/api/files/{g['job']}/{g['stem']}.npy")
        assert status == 200 and body.startswith(b"\x93NUMPY")
        for path in TRAVERSALS:
            status, body = raw_get(base, path.format(job=g["job"], stem=g["stem"]))
            assert status in (400, 404), (path, status)
            assert b"root:" not in body and b"import" not in body, path


def test_oversized_bodies_get_413(tiny, tmp_path):
    small = create_app(tiny, out=tmp_path, max_body=2000)
    with TestClient(small) as c:
        big = {"prompts": "walk " * 1000}
        r = c.post("/api/generate", json=big)
        assert "larger than this server's limit of 2,000 bytes" in error(r, 413)

        def chunks():  # no Content-Length: counted as it arrives
            for _ in range(10):
                yield b"x" * 500

        r = c.post("/api/lift", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
        assert "larger than" in error(r, 413)
        r = c.post("/api/generate", content=chunks(), headers={"content-type": "application/json"})
        assert "larger than" in error(r, 413)
        assert c.post("/api/generate", json={"prompts": "walk", "seconds": 2}).status_code == 200
    with live_server(small) as base:  # and a real upload, through a socket
        import httpx

        r = httpx.post(f"{base}/api/lift", files={"file": ("big.json", b"[" + b"0," * 50_000 + b"0]")})
        assert "larger than" in error(r, 413)


def test_a_full_queue_answers_503_at_once_and_the_loop_stays_free(tiny, tmp_path):
    busy_app = create_app(tiny, out=tmp_path, max_queue=1)
    release, started = threading.Event(), threading.Event()
    worker: Worker = busy_app.state.worker

    def busy() -> None:
        started.set()
        release.wait(120)

    with TestClient(busy_app) as c:
        try:
            worker.submit(busy)  # the model is busy (its task taken off the queue) ...
            assert started.wait(30)
            waiting = {}
            t = threading.Thread(target=lambda: waiting.update(r=c.post("/api/generate", json={
                "prompts": "walk", "seconds": 2})))
            t.start()  # ... one request waits in the queue ...
            deadline = time.monotonic() + 30
            while worker._tasks.qsize() < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert worker._tasks.qsize() == 1
            t0 = time.monotonic()
            r = c.post("/api/generate", json={"prompts": "walk", "seconds": 2})  # ... the next is refused
            assert "the server is busy" in error(r, 503) and r.headers["retry-after"]
            assert c.get("/api/info").status_code == 200  # the event loop still answers
            assert time.monotonic() - t0 < 5
        finally:  # a failed check must not leave the worker blocked (the client's exit waits for it)
            release.set()
        t.join(60)
        assert waiting["r"].status_code == 200
    with pytest.raises(Busy):
        full = Worker(max_queue=1)
        gate = threading.Event()
        full.submit(gate.wait)
        while full._tasks.qsize():
            time.sleep(0.01)
        full.submit(gate.wait)
        try:
            full.submit(gate.wait)
        finally:
            gate.set()


def test_only_loopback_host_headers_when_asked(tiny, tmp_path):
    local = create_app(tiny, out=tmp_path, allowed_hosts=["127.0.0.1", "localhost"])
    with TestClient(local, base_url="http://127.0.0.1:8000") as c:
        assert c.get("/api/info").status_code == 200
        assert c.get("/api/info", headers={"host": "rebound.example"}).status_code == 400


def test_old_jobs_are_removed(tiny, tmp_path):
    with TestClient(create_app(tiny, out=tmp_path, keep_jobs=2)) as c:
        first = c.post("/api/generate", json={"prompts": "walk", "seconds": 2}).json()["results"][0]
        for seed in (1, 2):
            r = c.post("/api/generate", json={"prompts": "walk", "seconds": 2, "seed": seed})
            assert r.status_code == 200
        assert len([p for p in tmp_path.iterdir() if JOB_RE.fullmatch(p.name)]) == 2
        assert "are removed" in error(c.get(first["downloads"]["npy"]), 404)


def test_cli_checks_its_options(capsys, monkeypatch):
    assert main(["serve", "--port", "70000", "--device", "cpu"]) == 2
    assert "--port must be 1 to 65535" in capsys.readouterr().err
    assert main(["serve", "--queue", "0"]) == 2
    assert "--queue must be at least 1" in capsys.readouterr().err
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "uvicorn" else real(n, *a))
    assert main(["serve"]) == 2
    assert "pip install 'free3d[serve]'" in capsys.readouterr().err
