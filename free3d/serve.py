"""``free3d serve``: a local web app around a model (FastAPI + uvicorn; ``pip install
'free3d[serve]'``).

The page (free3d/viewer/app.*) sends prompts, spans to edit and keypoint files to lift to
a JSON API and shows each result in the 3D viewer that ``--format html`` writes. Every
script and style comes from the package: the app works with no network at all.

Each request's results go into a job folder of their own under the output folder
(``<out>/<16 hex digits>/``), written by free3d.export like ``generate`` and ``lift`` do;
npy at once, BVH, GIF and HTML the first time someone downloads them. The newest
``keep_jobs`` job folders are kept.

Safety, since it runs on someone's machine:

- it binds 127.0.0.1 unless told otherwise, and then answers only to a loopback Host
  header (a web page elsewhere cannot reach it through DNS rebinding);
- a request body over ``max_body`` bytes is refused with 413 before it is read;
- downloads come only from a job folder of the output folder, by names checked against
  a strict pattern and the job's manifest: no path from a request reaches the disk;
- the model runs on one worker thread, off the event loop; at most ``max_queue``
  requests wait for it, and beyond that the API answers 503 at once;
- every error is JSON ``{"error": message}``, the message the CLI would print.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import json
import logging
import queue
import re
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, File, Form, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .api import (
    DEFAULT_MODEL,
    MAX_SECONDS,
    MIN_SECONDS,
    Free3D,
    Motion,
    check_prompt,
    check_seed,
    seconds_to_frames,
)
from .export.generated import MANIFEST as GENERATED_MANIFEST
from .export.generated import output_stem, save_motions, slug, write_motion_file
from .export.html import motion_payload
from .export.lifted import MANIFEST as LIFTED_MANIFEST
from .export.lifted import lift_keypoints, save_lifted
from .keypoints import LAYOUTS, read_keypoints
from .sampling import check_sampling_value
from .skeleton import get_skeleton
from .viewer import SERVED, read_asset

log = logging.getLogger("free3d.serve")

DOWNLOADS = ("npy", "bvh", "gif", "html")  # what a result offers, each by free3d.export's writer
MEDIA_TYPES = {"npy": "application/octet-stream", "bvh": "application/octet-stream",
               "gif": "image/gif", "html": "text/html"}
UPLOADS = (".json", ".npy", ".npz")  # what `free3d lift` reads from one file
MAX_PROMPTS = 16
MAX_PROMPT_CHARS = 300
MAX_SAMPLES = 8
MAX_MOTIONS = 32  # prompts x samples in one request
DEFAULT_MAX_BODY = 8 * 1024 * 1024  # a 10 s COCO-17 JSON at 30 fps is about 0.2 MB
DEFAULT_MAX_QUEUE = 16
DEFAULT_KEEP_JOBS = 500
JOB_RE = re.compile(r"[0-9a-f]{16}")
STEM_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,120}")
CODES = ".codes.npz"  # beside a generated npy: its tokens and frame, so an edit starts from them
# the page and its files: same-origin only, so nothing can load from the network
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class Busy(RuntimeError):
    """Too many requests are already waiting for the model."""


class NotFound(LookupError):
    """No such job, result or file (or a name that could never be one)."""


# ------------------------------------------------------------------------------- worker


class Worker:
    """One thread runs every task that computes (the model is not thread-safe, and it uses
    every core already); at most ``max_queue`` tasks wait behind the running one."""

    def __init__(self, *, max_queue: int) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        self.max_queue = max_queue
        self._tasks: queue.Queue = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._loop, name="free3d-worker", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future:
        """Queue ``fn(*args)``; a Busy error at once when ``max_queue`` tasks wait already."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            self._tasks.put_nowait((future, fn, args))
        except queue.Full:
            raise Busy(f"the server is busy: {self.max_queue} requests are waiting for the model; "
                       "try again in a moment") from None
        return future

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the worker thread, awaited without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(fn, *args))

    def _loop(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            future, fn, args = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as e:  # the request that asked gets it, the worker goes on
                future.set_exception(e)

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        self._tasks.put(None)
        self._thread.join()


# ------------------------------------------------------------------------- body limit


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` with 413: by their
    Content-Length before reading, and by counting when they come without one."""

    def __init__(self, app, *, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = (f"the request is larger than this server's limit of {self.max_bytes:,} bytes "
                   "(free3d serve --max-upload-mb)")
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                await JSONResponse({"error": "bad Content-Length header"}, 400)(scope, receive, send)
                return
            if too_big:
                await JSONResponse({"error": message}, 413, headers={"Connection": "close"})(
                    scope, receive, send)
                return
        seen, started, refused = 0, False, False

        async def counted():
            # over the limit: answer 413 now and tell the app the client has gone, so that
            # it stops reading (whatever it catches) and its own answer is dropped
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            event = await receive()
            if event["type"] == "http.request":
                seen += len(event.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    if not started:
                        await JSONResponse({"error": message}, 413, headers={"Connection": "close"})(
                            scope, receive, send)
                    return {"type": "http.disconnect"}
            return event

        async def tracked(event):
            nonlocal started
            if refused:
                return
            started = started or event["type"] == "http.response.start"
            await send(event)

        await self.app(scope, counted, tracked)


# ---------------------------------------------------------------------------- storage


@dataclass(frozen=True)
class Result:
    """Where one motion of a job is and what it is, as its job's manifest says."""

    job: str
    stem: str
    folder: Path
    skeleton: str
    fps: float
    title: str
    lifted: bool


class Jobs:
    """The output folder: one folder per request, named by 16 random hex digits."""

    def __init__(self, root: str | Path, *, keep: int = DEFAULT_KEEP_JOBS) -> None:
        if keep < 1:
            raise ValueError(f"keep_jobs must be at least 1, got {keep}")
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep = keep

    def new(self) -> tuple[str, Path]:
        self._prune()
        job = secrets.token_hex(8)
        folder = self.root / job
        folder.mkdir()
        return job, folder

    def _prune(self) -> None:
        """Keep the newest ``keep - 1`` job folders (room for the one about to be made)."""
        folders = sorted((p for p in self.root.iterdir() if JOB_RE.fullmatch(p.name) and p.is_dir()),
                         key=lambda p: p.stat().st_mtime)
        for old in folders[:max(0, len(folders) - (self.keep - 1))]:
            shutil.rmtree(old, ignore_errors=True)

    def result(self, job: object, stem: object) -> Result:
        """The result ``stem`` of ``job``, or NotFound; names are matched against patterns
        and the job's manifest, never joined to a path unchecked."""
        if not (isinstance(job, str) and JOB_RE.fullmatch(job) and isinstance(stem, str)
                and STEM_RE.fullmatch(stem)):
            raise NotFound("no such result")
        folder = self.root / job
        if not folder.is_dir():
            raise NotFound(f"no result {job}/{stem} (results older than the newest {self.keep} "
                           "requests are removed)")
        generated, lifted = folder / GENERATED_MANIFEST, folder / LIFTED_MANIFEST
        try:
            if generated.is_file():
                for entry in json.loads(generated.read_text(encoding="utf-8")):
                    if entry.get("files", {}).get("npy") == f"{stem}.npy":
                        return Result(job, stem, folder, entry["skeleton"], float(entry["fps"]),
                                      f"{entry['text']} (seed {entry['seed']})", False)
            elif lifted.is_file():
                entry = json.loads(lifted.read_text(encoding="utf-8"))
                if entry.get("files", {}).get("npy") == f"{stem}.npy":
                    return Result(job, stem, folder, entry["skeleton"], float(entry["fps"]),
                                  f"{entry['source']}: lifted", True)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # a manifest removed or rewritten meanwhile: as good as absent
        raise NotFound(f"no result {job}/{stem}")

    def joints(self, r: Result) -> np.ndarray:
        return np.load(r.folder / f"{r.stem}.npy").astype(np.float64)

    def file(self, r: Result, fmt: str) -> Path:
        """``<stem>.<fmt>`` of a result, written by free3d.export the first time it is asked for."""
        path = r.folder / f"{r.stem}.{fmt}"
        if not path.is_file():
            joints2d = None
            if r.lifted and fmt == "gif":  # the 2D it was lifted from, beside it, as `free3d lift` draws
                with np.load(r.folder / f"{r.stem}_2d.npz") as z:
                    joints2d = z["joints2d"].astype(np.float64)
            write_motion_file(path, fmt, self.joints(r), get_skeleton(r.skeleton), fps=r.fps,
                              title=r.title, joints2d=joints2d)
        return path


def _payload(r: Result, joints: np.ndarray, *, label: str, text: str, seed: int | None,
             notes: list[str] | None = None) -> dict:
    out = motion_payload(joints, get_skeleton(r.skeleton), label=label, fps=r.fps)
    out.update(job=r.job, stem=r.stem, id=f"{r.job}/{r.stem}", text=text, seed=seed,
               seconds=round(len(joints) / r.fps, 3), notes=notes or [],
               downloads={fmt: f"/api/files/{r.job}/{r.stem}.{fmt}" for fmt in DOWNLOADS})
    return out


# ---------------------------------------------------------------------------- requests


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompts: str | list[str]  # a string: one prompt per line
    seconds: float | None = None  # None: the length estimator chooses
    seed: int = 0
    num_samples: int = 1
    guidance: float | None = None


class EditRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    job: str
    stem: str
    start: float
    end: float
    prompt: str
    seed: int = 0
    guidance: float | None = None


def check_prompts(prompts: str | list[str]) -> list[str]:
    """The prompts of a request, checked: 1 to MAX_PROMPTS, none blank or too long."""
    if isinstance(prompts, str):
        texts = [line for line in prompts.splitlines() if line.strip()]
    else:
        texts = list(prompts)
    if not texts:
        raise ValueError("no prompt: write one per line, e.g. 'a person walks forward'")
    if len(texts) > MAX_PROMPTS:
        raise ValueError(f"{len(texts)} prompts in one request; at most {MAX_PROMPTS}")
    for i, text in enumerate(texts, 1):
        if len(text) > MAX_PROMPT_CHARS:
            raise ValueError(f"prompt {i} is {len(text)} characters long; at most {MAX_PROMPT_CHARS}")
    return [check_prompt(t) for t in texts]


def _sampling(guidance: float | None) -> dict:
    return {} if guidance is None else {"guidance": check_sampling_value("guidance", guidance)}


def _validation_message(e: RequestValidationError) -> str:
    parts = []
    for err in e.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",)) or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(dict.fromkeys(parts)) or "invalid request"


# --------------------------------------------------------------------------------- app


def create_app(model: Free3D, *, out: str | Path | None = None, model_name: str = "a model",
               max_body: int = DEFAULT_MAX_BODY, max_queue: int = DEFAULT_MAX_QUEUE,
               keep_jobs: int = DEFAULT_KEEP_JOBS, allowed_hosts: list[str] | None = None) -> FastAPI:
    """The web app around ``model``; results go into ``out`` (default: a new temporary folder).

    ``allowed_hosts``: the Host headers it answers (None: any; :func:`serve` gives the
    loopback names when bound to loopback).
    """
    if max_body < 1:
        raise ValueError(f"max_body must be at least 1 byte, got {max_body}")
    jobs = Jobs(out if out is not None else tempfile.mkdtemp(prefix="free3d-serve-"), keep=keep_jobs)
    worker = Worker(max_queue=max_queue)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await asyncio.to_thread(worker.close)

    app = FastAPI(title="free3d", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.jobs, app.state.worker, app.state.model = jobs, worker, model
    app.add_middleware(BodyLimit, max_bytes=max_body)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)

    # ---- errors: always {"error": message}
    @app.exception_handler(ValueError)
    async def _bad_input(request, e: ValueError) -> JSONResponse:
        return JSONResponse({"error": str(e)}, 400)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request, e: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _validation_message(e)}, 400)

    @app.exception_handler(Busy)
    async def _busy(request, e: Busy) -> JSONResponse:
        return JSONResponse({"error": str(e)}, 503, headers={"Retry-After": "5"})

    @app.exception_handler(NotFound)
    async def _not_found(request, e: NotFound) -> JSONResponse:
        return JSONResponse({"error": str(e)}, 404)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, e: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(e.detail)}, e.status_code, headers=e.headers)

    # ---- the page
    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(read_asset("app.html"), headers=_page_headers())

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        if name not in SERVED:
            raise NotFound(f"no file {name!r}")
        return Response(read_asset(name), media_type=SERVED[name], headers=_page_headers())

    @app.get("/api/info")
    async def info() -> dict:
        return {"model": model_name, "skeleton": model.skeleton.name, "device": str(model.device),
                "limits": {"min_seconds": MIN_SECONDS, "max_seconds": MAX_SECONDS,
                           "max_prompts": MAX_PROMPTS, "max_samples": MAX_SAMPLES,
                           "max_motions": MAX_MOTIONS, "max_body_bytes": max_body,
                           "max_queue": max_queue},
                "defaults": {"guidance": model.sampling.guidance}, "layouts": list(LAYOUTS),
                "downloads": list(DOWNLOADS)}

    # ---- generate, edit, lift
    @app.post("/api/generate")
    async def generate(body: GenerateRequest) -> dict:
        texts = check_prompts(body.prompts)
        if body.seconds is not None:
            seconds_to_frames(body.seconds)
        n = body.num_samples
        if not 1 <= n <= MAX_SAMPLES:
            raise ValueError(f"num_samples must be 1 to {MAX_SAMPLES}, got {n}")
        if len(texts) * n > MAX_MOTIONS:
            raise ValueError(f"{len(texts)} prompts x {n} samples is {len(texts) * n} motions; "
                             f"at most {MAX_MOTIONS} per request")
        seed = check_seed(body.seed, n)
        sampling = _sampling(body.guidance)
        return {"results": await worker.run(_generate, texts, body.seconds, seed, n, sampling)}

    def _generate(texts: list[str], seconds: float | None, seed: int, n: int, sampling: dict) -> list[dict]:
        motions = model.generate(texts, seconds, seed=seed, num_samples=n, **sampling)
        return _save_generated(motions, [p for p in range(len(texts)) for _ in range(n)])

    def _save_generated(motions: list[Motion], numbers: list[int], label: str | None = None) -> list[dict]:
        job, folder = jobs.new()
        save_motions(motions, folder, ["npy"], prompt_numbers=numbers)
        out = []
        for m, p in zip(motions, numbers):
            stem = output_stem(p, m.text, m.seed)
            np.savez(folder / f"{stem}{CODES}", codes=m.codes, rotation=m.frame[0], translation=m.frame[1])
            r = jobs.result(job, stem)
            out.append(_payload(r, m.joints, label=label or f"{m.text} (seed {m.seed})", text=m.text,
                                seed=m.seed))
        return out

    @app.post("/api/edit")
    async def edit(body: EditRequest) -> dict:
        source = jobs.result(body.job, body.stem)
        prompt = check_prompt(body.prompt)
        seed = check_seed(body.seed)
        sampling = _sampling(body.guidance)
        return {"results": await worker.run(_edit, source, body.start, body.end, prompt, seed, sampling)}

    def _edit(source: Result, start: float, end: float, prompt: str, seed: int, sampling: dict) -> list[dict]:
        joints = jobs.joints(source)
        codes = source.folder / f"{source.stem}{CODES}"
        motion: Motion | np.ndarray = joints  # lifted: the model tokenises it through a front view
        if codes.is_file():  # generated: edit from its own tokens, exactly as the API would
            with np.load(codes) as z:
                motion = Motion(joints, model.skeleton, source.title, seed, z["codes"],
                                (z["rotation"], z["translation"]))
        edited = model.edit(motion, start, end, prompt, seed=seed, **sampling)
        return _save_generated([edited], [0], label=f"{source.title}, {start:g}-{end:g} s redone as "
                                                    f"{prompt!r} (seed {seed})")

    @app.post("/api/lift")
    async def lift(file: Annotated[UploadFile, File()], layout: Annotated[str | None, Form()] = None,
                   fps: Annotated[float | None, Form()] = None) -> dict:
        name = Path(file.filename or "").name
        suffix = Path(name).suffix.lower()
        if suffix not in UPLOADS:
            raise ValueError(f"{name or 'the upload'}: upload a keypoint file ({', '.join(UPLOADS)}); "
                             "an OpenPose folder: lift it with `free3d lift`")
        if layout is not None and layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; choose from {', '.join(LAYOUTS)}")
        data = await file.read()
        if not data:
            raise ValueError(f"{name}: the file is empty")
        return {"results": await worker.run(_lift, name, data, layout, fps)}

    def _lift(name: str, data: bytes, layout: str | None, fps: float | None) -> list[dict]:
        job, folder = jobs.new()
        stem = slug(Path(name).stem, 60)
        upload = folder / f".upload{Path(name).suffix.lower()}"
        upload.write_bytes(data)
        try:
            try:
                kp = read_keypoints(upload, layout=layout or None, fps=fps)
            except ValueError as e:  # name the user's file, not the server's copy of it
                raise ValueError(str(e).replace(str(upload), name)) from None
            motion = lift_keypoints(kp, model.lifter, model.skeleton)
        finally:
            upload.unlink(missing_ok=True)
        save_lifted(motion, folder, stem, ["npy"], source=name, layout=kp.layout, input_fps=kp.fps,
                    notes=kp.notes)
        r = jobs.result(job, stem)
        return [_payload(r, motion.joints, label=f"{name}: lifted ({kp.layout})", text=name, seed=None,
                         notes=kp.notes)]

    # ---- downloads
    @app.get("/api/files/{job}/{name}")
    async def download(job: str, name: str) -> FileResponse:
        stem, dot, fmt = name.rpartition(".")
        if not dot or fmt not in DOWNLOADS:
            raise NotFound(f"no file {name!r}: results offer {', '.join(DOWNLOADS)}")
        r = jobs.result(job, stem)
        path = r.folder / name
        if not path.is_file():
            path = await worker.run(jobs.file, r, fmt)
        if path.resolve().parent != jobs.root / r.job:  # one more guard: never outside a job folder
            raise NotFound("no such file")
        return FileResponse(path, media_type=MEDIA_TYPES[fmt], filename=name)

    return app


def _page_headers() -> dict[str, str]:
    return {"Content-Security-Policy": PAGE_POLICY, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(*, host: str = "127.0.0.1", port: int = 8000, model: str | None = None, device: str = "auto",
          precision: str = "auto", out: str | None = None, max_body: int = DEFAULT_MAX_BODY,
          max_queue: int = DEFAULT_MAX_QUEUE, keep_jobs: int = DEFAULT_KEEP_JOBS) -> None:
    """Load the model and serve the app until interrupted."""
    import uvicorn

    if not 0 < port < 65536:
        raise ValueError(f"--port must be 1 to 65535, got {port}")
    loaded = Free3D.from_pretrained(model, device=device, precision=precision)
    name = Path(DEFAULT_MODEL if model in (None, "default") else model).resolve().name
    hosts = [*LOOPBACK_NAMES, host] if is_loopback(host) else None
    app = create_app(loaded, out=out, model_name=name, max_body=max_body, max_queue=max_queue,
                     keep_jobs=keep_jobs, allowed_hosts=hosts)
    if not is_loopback(host):
        log.warning("free3d serve on %s: anyone who can reach this address can use it (no login)", host)
    shown = f"[{host}]" if ":" in host else host
    print(f"free3d serve: http://{shown}:{port}/ (results in {app.state.jobs.root}; Ctrl+C stops)",
          flush=True)
    # limit_concurrency: connections beyond it get 503 from uvicorn itself, before any app code
    uvicorn.run(app, host=host, port=port, log_level="info", limit_concurrency=64, timeout_keep_alive=5)


__all__ = ["Busy", "Jobs", "NotFound", "Worker", "create_app", "serve"]
