"""``monohand serve``: the main job as a local web page (FastAPI + a static page).

An upload becomes a job that one worker thread runs (the fit uses every core; running two at
once only makes both slower); the page polls the job for its stage and shows the overlay, an
interactive 3D view of the ``.glb`` (``<model-viewer>``, served by the app), the keypoints,
the fit loss and per-joint confidences. Outputs are written in a temporary folder, read into
memory and the folder removed, so the server leaves no files behind; the last ``max_jobs``
results are kept for download (a job still queued or running is never dropped; with
``max_jobs`` of them waiting, an upload is refused until one is done).
"""

from __future__ import annotations

import io
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..data.images import ImageError, decode_rgb
from ..notes import hand_notes, small_photo

STATIC = resources.files("monohand.serve") / "static"
MEDIA_TYPES = {".glb": "model/gltf-binary", ".json": "application/json", ".png": "image/png"}


@dataclass
class ServeConfig:
    model_path: str | None = None  # MANO file/folder or NIMBLE folder, enables those models
    checkpoint: str | None = None  # the method "network"'s checkpoint (default: the shipped one)
    example: str | None = None  # the image behind "try the example"
    max_upload_mb: float = 20.0
    max_pixels: int = 40_000_000
    max_jobs: int = 16


@dataclass
class Job:
    id: str
    name: str
    model: str
    method: str
    status: str = "queued"  # queued | running | done | error
    stage: str = "waiting for the worker"
    submitted: float = field(default_factory=time.time)
    started: float | None = None  # when the worker took it
    seconds: float | None = None  # the worker's time on it, once finished
    error: str | None = None
    result: dict | None = None
    files: dict[str, bytes] = field(default_factory=dict)

    def public(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "model": self.model,
            "method": self.method,
            "status": self.status,
            "stage": self.stage,
            # since it was submitted (queue included), frozen when it finishes
            "elapsed": round((self.started + self.seconds if self.seconds is not None
                              else time.time()) - self.submitted, 1),  # fmt: skip
            "seconds": None if self.seconds is None else round(self.seconds, 1),
            "error": self.error,
            "result": self.result,
        }


class UploadError(ValueError):
    """A bad upload; the message is shown on the page, with HTTP ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def decode_upload(name: str, data: bytes, max_pixels: int) -> np.ndarray:
    """Uploaded bytes -> RGB uint8 (H, W, 3) (``data.images.decode_rgb``), with a readable
    error for anything else."""
    if not data:
        raise UploadError(f"{name}: the file is empty")
    try:
        return decode_rgb(io.BytesIO(data), name, max_pixels)
    except ImageError as e:
        from ..video.frames import is_video

        # the page takes photos; a video's tracks and smoothing are the command line's
        hint = (f" (a video: monohand reconstruct {name} on the command line)"
                if is_video(Path(name)) else "")  # fmt: skip
        raise UploadError(f"{e}{hint}") from e


class Worker:
    """Runs jobs one at a time and keeps the reconstructors (detector + models) warm."""

    def __init__(self, cfg: ServeConfig) -> None:
        self.cfg = cfg
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monohand-fit")
        self._recs: dict[tuple[str, str], object] = {}

    def options(self) -> dict:
        models = ["openhand"] + (["mano", "nimble"] if self.cfg.model_path else [])
        from ..nets.handnet import shipped_network_path

        # "network": the --checkpoint given, else the network that ships with monohand
        network = self.cfg.checkpoint or shipped_network_path().is_file()
        # the first is the page's default: the hybrid where the network is at hand
        methods = ["hybrid", "fit", "network"] if network else ["fit"]
        return {
            "models": models,
            "methods": methods,
            "example": bool(self.cfg.example),
            "max_upload_mb": self.cfg.max_upload_mb,
        }

    def submit(self, name: str, image: np.ndarray, model: str, method: str | None) -> Job:
        opts = self.options()
        method = method or opts["methods"][0]
        if model not in opts["models"]:
            raise UploadError(f"model {model!r} is not available here (one of {opts['models']})")
        if method not in opts["methods"]:
            raise UploadError(f"method {method!r} is not available here (one of {opts['methods']})")
        if method != "fit" and not self.cfg.checkpoint and model != "openhand":
            raise UploadError("the shipped network drives OpenHand: choose model openhand")
        job = Job(uuid.uuid4().hex[:12], name, model, method)
        with self.lock:
            waiting = sum(j.status in ("queued", "running") for j in self.jobs.values())
            if waiting >= self.cfg.max_jobs:
                raise UploadError(f"busy: {waiting} photos are queued or being reconstructed; "
                                  "try again when one is done", status=503)  # fmt: skip
            self.jobs[job.id] = job
            # The oldest finished results make room; a job still queued or running is never
            # dropped (its page would lose it).
            finished = [k for k, j in self.jobs.items() if j.status in ("done", "error")]
            while len(self.jobs) > self.cfg.max_jobs and finished:
                del self.jobs[finished.pop(0)]
        self.pool.submit(self._run, job, image)
        return job

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)

    def _reconstructor(self, model: str, method: str):
        from ..reconstruct import ReconstructConfig, Reconstructor

        key = (model, method)
        if key not in self._recs:
            self._recs[key] = Reconstructor(
                ReconstructConfig(
                    model=model,
                    method=method,
                    model_path=self.cfg.model_path if model != "openhand" else None,
                    checkpoint=self.cfg.checkpoint,
                )
            )
        return self._recs[key]

    def _run(self, job: Job, image: np.ndarray) -> None:
        from ..reconstruct import reconstruct_photo
        from ..record import record_header

        job.status, job.started = "running", time.time()
        try:
            job.stage = "loading the detector and the hand model"
            rec = self._reconstructor(job.model, job.method)
            # the hands are the reconstructor's model: under the network or the hybrid,
            # "openhand" (the default) stands for the network's, whichever that is
            job.model = rec.cfg.model
            stem = "hand"
            with tempfile.TemporaryDirectory(prefix="monohand-serve-") as d:
                res = reconstruct_photo(rec, image, d, stem, job.name,
                                        stage=lambda s: setattr(job, "stage", s))  # fmt: skip
                job.files = {p.name: p.read_bytes() for p in res.files}
            if not res.hands and res.unsupported:
                raise UploadError(f"{job.name}: {len(res.unsupported)} hand(s) found, not "
                                  f"reconstructed: {rec.sides_only}")  # fmt: skip
            if not res.hands:
                raise UploadError(f"{job.name}: no hand found in the image"
                                  f"{small_photo(image.shape)}")
            hands, source = res.hands, res.K_source
            job.result = {
                **record_header(),
                "overlay": f"{stem}_overlay.png",
                "json": f"{stem}.json",
                "hands": [
                    {
                        "side": h.side,
                        "glb": f"{stem}_{i}.glb",
                        "keypoints2d": np.round(h.detection.keypoints, 1).tolist(),
                        # metres, as the file (in float64: float32's rounded values
                        # print as 0.12346000224351883)
                        "joints3d": np.round(h.joints3d.astype(float), 5).tolist(),
                        "confidence": np.round(h.detection.confidence, 3).tolist(),
                        "fit": {k: round(v, 4) for k, v in h.fit.items()},
                    }
                    for i, h in enumerate(hands)
                ],
                "image": job.name,
                "K": np.asarray(res.K).tolist(),
                "K_source": source,
                "model": rec.cfg.model,
                "method": rec.cfg.method,
                **({} if rec.network_name is None else {"network": rec.network_name}),
                # what the command line says of these hands (``notes.hand_notes``), but
                # for how to fit them one by one, which the page does not offer
                "notes": [{"kind": k, "text": t}
                          for k, t in hand_notes(hands, rec.cfg.method, one_by_one=None)],
            }
            error = None
        except UploadError as e:
            error = str(e)
        except Exception as e:  # noqa: BLE001 - the server must keep serving
            traceback.print_exc()
            error = f"{job.name}: reconstruction failed ({type(e).__name__}: {e})"
        # the time and error before the status, which a poll may see at any moment
        job.seconds, job.error = time.time() - job.started, error
        job.status, job.stage = ("done", "done") if error is None else ("error", "failed")
        # one line per job in the server's log (uvicorn's own are at warning level)
        said = (f"{len(job.result['hands'])} hand(s) by {job.result['method']}" if error is None
                else f"failed: {error}")  # fmt: skip
        print(f"job {job.id} ({job.name}): {said}, {job.seconds:.1f} s", file=sys.stderr,
              flush=True)  # fmt: skip

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        for r in self._recs.values():
            r.close()


class UploadLimit:
    """ASGI middleware: refuses a request body over ``limit`` bytes before it is parsed (a
    stated Content-Length, or counted as it streams in: a body without one is read here, up
    to the limit, and handed on only when it fits)."""

    DRAIN_FACTOR = 4

    def __init__(self, app, limit: int, shown_mb: float | None = None) -> None:
        # ``shown_mb``: the limit as the user set it (``limit`` adds the form's own bytes)
        self.app, self.limit, self.shown_mb = app, limit, shown_mb

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if int(headers.get(b"content-length", b"0") or 0) > self.limit:
            # A client that waits for "100 Continue" has sent nothing: answer at once.
            if headers.get(b"expect", b"").lower() != b"100-continue":
                await self._drain(receive, 0)
            return await self._refuse(send)
        messages, seen, more = [], 0, True
        while more:
            msg = await receive()
            if msg["type"] != "http.request":  # the client went away
                return None
            seen += len(msg.get("body", b""))
            more = msg.get("more_body", False)
            if seen > self.limit:
                if more:
                    await self._drain(receive, seen)
                return await self._refuse(send)
            messages.append(msg)
        pending = iter(messages)

        async def replay():
            msg = next(pending, None)
            return msg if msg is not None else await receive()

        return await self.app(scope, replay, send)

    async def _drain(self, receive, seen: int) -> None:
        """Read and drop the rest of a refused body, up to ``DRAIN_FACTOR`` times the limit:
        a client still sending when the server answers and closes sees a broken pipe instead
        of the 413 (larger bodies are cut off all the same)."""
        while seen <= self.DRAIN_FACTOR * self.limit:
            msg = await receive()
            seen += len(msg.get("body", b""))
            if msg["type"] != "http.request" or not msg.get("more_body", False):
                return

    async def _refuse(self, send) -> None:
        mb = self.shown_mb if self.shown_mb is not None else self.limit / 2**20
        body = f'{{"error": "the upload is too large (at most {mb:g} MB)"}}'.encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


def create_app(cfg: ServeConfig | None = None):
    """The FastAPI application (``uvicorn`` serves it; tests may drive it directly)."""
    cfg = cfg or ServeConfig()
    worker = Worker(cfg)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        worker.close()

    app = FastAPI(title="monohand", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.worker = worker
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    limit = int(cfg.max_upload_mb * 1024 * 1024)
    app.add_middleware(UploadLimit, limit=limit + 64 * 1024,  # + the form's own fields
                       shown_mb=cfg.max_upload_mb)  # fmt: skip

    @app.exception_handler(UploadError)
    async def _bad_upload(_: Request, e: UploadError):
        return JSONResponse({"error": str(e)}, status_code=e.status)

    # Every refusal answers {"error": message}, FastAPI's own (404s, form errors) included.
    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, e: StarletteHTTPException):
        return JSONResponse({"error": str(e.detail)}, status_code=e.status_code)

    @app.exception_handler(RequestValidationError)
    async def _form_error(_: Request, e: RequestValidationError):
        parts = [f"{'.'.join(str(x) for x in err['loc'][1:])}: {err['msg']}" for err in e.errors()]
        return JSONResponse({"error": "; ".join(parts) or "invalid request"}, status_code=422)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return (STATIC / "index.html").read_text()

    @app.get("/api/options")
    def options() -> dict:
        return worker.options()

    @app.get("/api/example")
    def example():
        if not cfg.example:
            raise HTTPException(404, "no example image configured")
        return FileResponse(cfg.example)

    @app.post("/api/jobs")
    async def create_job(
        file: UploadFile | None = File(None),
        example: bool = Form(False),
        model: str = Form("openhand"),
        method: str | None = Form(None),  # None: the page's default (the first offered)
    ) -> dict:
        if example:
            if not cfg.example:
                raise UploadError("no example image is configured on this server")
            name, data = Path(cfg.example).name, Path(cfg.example).read_bytes()
        elif file is not None:
            name = Path(file.filename or "upload").name
            data = await file.read(limit + 1)
            await file.close()
            if len(data) > limit:
                raise UploadError(f"{name}: too large (at most {cfg.max_upload_mb:g} MB)",
                                  status=413)  # fmt: skip
        else:
            raise UploadError("no file was uploaded (a multipart form with the field file, or "
                              "example=true)")  # fmt: skip
        image = decode_upload(name, data, cfg.max_pixels)
        return worker.submit(name, image, model, method).public()

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str) -> dict:
        job = worker.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job.public()

    @app.get("/api/jobs/{job_id}/files/{name}")
    def job_file(job_id: str, name: str):
        job = worker.get(job_id)
        if job is not None and job.status == "error":  # its reason, not a bare "no file"
            raise HTTPException(404, f"no file {name}: job {job_id} failed ({job.error})")
        if job is None or name not in job.files:
            raise HTTPException(404, f"no file {name} for job {job_id}")
        headers = {"Content-Disposition": f'inline; filename="{name}"'}
        media = MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream")
        return Response(job.files[name], media_type=media, headers=headers)

    return app


def default_example() -> str | None:
    """The repository's ``examples/hand.jpg`` when running from a checkout."""
    p = Path(__file__).resolve().parents[3] / "examples" / "hand.jpg"
    return str(p) if p.is_file() else None
