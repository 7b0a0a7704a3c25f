"""REST API (FastAPI): submit, watch, cancel and fetch jobs; refine and plan without generating.

A job's files are reached only through its id; no path from a request ever touches the filesystem.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import statistics
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, ValidationError

from i2v.errors import I2VError
from i2v.media.images import load_image
from i2v.request import GenerationRequest, validation_messages
from i2v.service.config import ServiceSettings
from i2v.service.queue import Queue
from i2v.service.store import FINISHED, Job, JobStore

log = logging.getLogger(__name__)
EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "WEBP": ".webp", "BMP": ".bmp"}
#: Retry-After when no job has finished yet to measure from.
DEFAULT_RETRY_SECONDS = 10
MAX_RETRY_SECONDS = 600


class Service:
    """Everything a request handler needs: settings, the job store and the queue."""

    def __init__(self, settings: ServiceSettings, store: JobStore, queue: Queue):
        self.settings = settings
        self.store = store
        self.queue = queue
        self._submit_lock = threading.Lock()

    def job_view(self, job: Job) -> dict[str, Any]:
        base = f"/api/v1/jobs/{job.id}"
        done = job.state == "succeeded"
        return {
            "id": job.id,
            "state": job.state,
            "progress": job.progress,
            "queue_position": self.store.queue_position(job),
            "request": job.request,
            "refined_prompt": job.refined_prompt,
            "plan": job.plan,
            "timings": job.timings,
            "warnings": job.warnings or [],
            "error": job.error,
            "attempts": job.attempts,
            "worker": job.worker,
            "created_at": job.created_at.isoformat() if job.created_at else None,
            "updated_at": job.updated_at.isoformat() if job.updated_at else None,
            "video_url": f"{base}/video" if done else None,
            "metadata_url": f"{base}/metadata" if done else None,
            "thumbnail_url": f"{base}/thumbnail" if done else None,
        }

    def submit(self, request_fields: dict[str, Any], image_bytes: bytes, filename: str) -> Job:
        """Validate the image by content and the settings by the request model, store both, enqueue."""
        if len(image_bytes) > self.settings.max_upload_bytes:
            raise HTTPException(413, f"image is {len(image_bytes)} bytes; the limit is {self.settings.max_upload_bytes} (I2V_MAX_UPLOAD_BYTES)")
        try:
            loaded = load_image(image_bytes, name=filename or "uploaded image")
        except I2VError as error:
            raise HTTPException(422, [{"loc": ["image"], "msg": str(error)}]) from None
        job_id = secrets.token_hex(8)
        upload = self.settings.subfolder("uploads") / f"{job_id}{EXTENSIONS.get(loaded.source_format, '.png')}"
        fields = {key: value for key, value in request_fields.items() if key != "image"}
        try:
            request = GenerationRequest(image=upload, **fields)
        except ValidationError as error:
            raise HTTPException(422, _errors(error)) from None
        with self._submit_lock:  # the queue's order must be the table's order
            self._check_queue_limit()
            upload.write_bytes(image_bytes)
            # Only what the client set (plus the resolved model): the advisor may change the rest.
            stored = {**request.model_dump(mode="json", exclude_unset=True), "model": request.model}
            job = self.store.create(stored, str(upload), job_id=job_id)
            self.queue.enqueue(job.id)
        return job

    def _check_queue_limit(self) -> None:
        """Back-pressure: past `I2V_QUEUE_LIMIT` waiting jobs, 429 with about when one slot frees."""
        limit = self.settings.queue_limit
        if limit is None:
            return
        waiting = self.store.count("queued")
        if waiting < limit:
            return
        seconds = self.retry_after()
        raise HTTPException(
            429,
            f"the queue is full ({waiting} jobs waiting, limit {limit}, I2V_QUEUE_LIMIT): retry in about {seconds} s",
            headers={"Retry-After": str(seconds)},
        )

    def retry_after(self) -> int:
        """Seconds until a worker likely frees a slot: the mean of recent run times over the number of workers."""
        runs = self.store.recent_run_seconds()
        per_job = statistics.fmean(runs) if runs else DEFAULT_RETRY_SECONDS
        return min(max(math.ceil(per_job / max(len(self.workers()), 1)), 1), MAX_RETRY_SECONDS)

    def cancel(self, job_id: str) -> Job | None:
        """A queued job is cancelled at once; a running one, on whichever worker, at its next denoising step."""
        job = self.store.request_cancel(job_id)
        if job is not None:
            self.queue.cancel(job_id)
        return job

    def workers(self) -> list[dict[str, Any]]:
        """Live workers: name, models, device and its free memory, current job, last heartbeat (for the UI too)."""
        return self.queue.workers()

    def delete(self, job: Job) -> None:
        for path in (job.video_path, job.metadata_path, job.thumbnail_path, job.image_path):
            if path:
                Path(path).unlink(missing_ok=True)
        self.store.delete(job.id)


def _errors(error: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": field.split("."), "msg": f"{field}: {message}"} for field, message in validation_messages(error)]


def service_of(request: Request) -> Service:
    return request.app.state.service


def require_token(request: Request) -> None:
    token = request.app.state.service.settings.api_token
    if not token:
        return
    # Header or cookie only: a token in the query string would be written to access logs.
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip() or request.cookies.get("i2v_token") or ""
    if not secrets.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, "missing or wrong API token: send 'Authorization: Bearer <I2V_API_TOKEN>'")


router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])


def _job_or_404(service: Service, job_id: str) -> Job:
    job = service.store.get(job_id) if len(job_id) <= 32 else None
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return job


@router.post("/jobs", status_code=202, summary="Submit a job: multipart with an `image` file and a `request` JSON part")
async def submit_job(
    request: Request,
    image: UploadFile = File(description="PNG, JPEG, WebP or BMP; checked by content"),
    request_json: str = Form("{}", alias="request", description="GenerationRequest fields as JSON (without image)"),
) -> dict[str, Any]:
    service = service_of(request)
    fields = _request_part(request_json)
    data = await image.read(service.settings.max_upload_bytes + 1)
    job = await asyncio.to_thread(service.submit, fields, data, image.filename or "")
    return service.job_view(service.store.get(job.id))


def _request_part(request_json: str) -> dict[str, Any]:
    """The multipart `request` part: a JSON object of GenerationRequest fields (an `image` key is ignored)."""
    try:
        fields = json.loads(request_json or "{}")
    except json.JSONDecodeError as error:
        raise HTTPException(422, [{"loc": ["request"], "msg": f"request part is not valid JSON: {error.msg}"}]) from None
    if not isinstance(fields, dict):
        raise HTTPException(422, [{"loc": ["request"], "msg": "request part must be a JSON object of GenerationRequest fields"}])
    fields.pop("image", None)
    return fields


@router.get("/jobs", summary="History, newest first")
def list_jobs(request: Request, limit: int = Query(20, ge=1, le=200), offset: int = Query(0, ge=0)) -> dict[str, Any]:
    service = service_of(request)
    jobs, total = service.store.list(limit, offset)
    return {"jobs": [service.job_view(job) for job in jobs], "total": total, "limit": limit, "offset": offset}


@router.get("/jobs/{job_id}")
def get_job(request: Request, job_id: str) -> dict[str, Any]:
    service = service_of(request)
    return service.job_view(_job_or_404(service, job_id))


@router.get("/jobs/{job_id}/events", summary="Server-Sent Events: position, stage, step i/N, ETA, then done/failed/cancelled")
async def job_events(request: Request, job_id: str) -> StreamingResponse:
    service = service_of(request)
    _job_or_404(service, job_id)

    async def stream() -> AsyncIterator[str]:
        last = None
        while not await request.is_disconnected():
            job = await asyncio.to_thread(service.store.get, job_id)
            if job is None:
                yield _sse("gone", {"id": job_id})
                return
            view = service.job_view(job)
            snapshot = {key: view[key] for key in ("state", "progress", "queue_position", "error")}
            if snapshot != last:
                last = snapshot
                name = {"succeeded": "done", "failed": "failed", "cancelled": "cancelled", "interrupted": "failed"}.get(job.state, "progress")
                yield _sse(name, view)
                if job.state in (*FINISHED, "interrupted"):
                    return
            await asyncio.sleep(0.2)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _file(job: Job, attribute: str, media_type: str, what: str) -> FileResponse:
    path = getattr(job, attribute)
    if not path or not Path(path).is_file():
        raise HTTPException(404, f"job {job.id} has no {what} (state: {job.state})")
    return FileResponse(path, media_type=media_type, filename=f"i2v-{job.id}{Path(path).suffix}")


@router.get("/jobs/{job_id}/video")
def job_video(request: Request, job_id: str) -> FileResponse:
    return _file(_job_or_404(service_of(request), job_id), "video_path", "video/mp4", "video")


@router.get("/jobs/{job_id}/metadata")
def job_metadata(request: Request, job_id: str) -> FileResponse:
    return _file(_job_or_404(service_of(request), job_id), "metadata_path", "application/json", "metadata")


@router.get("/jobs/{job_id}/thumbnail")
def job_thumbnail(request: Request, job_id: str) -> FileResponse:
    return _file(_job_or_404(service_of(request), job_id), "thumbnail_path", "image/jpeg", "thumbnail")


@router.post("/jobs/{job_id}/cancel", status_code=202)
def cancel_job(request: Request, job_id: str) -> dict[str, Any]:
    service = service_of(request)
    job = _job_or_404(service, job_id)
    if job.state not in ("queued", "running"):
        raise HTTPException(409, f"job {job_id} is {job.state}; only queued or running jobs can be cancelled")
    return service.job_view(service.cancel(job_id))


@router.delete("/jobs/{job_id}", status_code=204)
def delete_job(request: Request, job_id: str) -> None:
    service = service_of(request)
    job = _job_or_404(service, job_id)
    if job.state in ("queued", "running"):
        raise HTTPException(409, f"job {job_id} is {job.state}: cancel it first")
    service.delete(job)


class RefineBody(BaseModel):
    text: str = Field(min_length=1, max_length=2000)
    refiner: str = Field(default="rules", pattern="^(rules|llm)$")


@router.post("/refine", summary="Refine raw text into the English prompt and tags (no image)")
def refine_text(body: RefineBody) -> dict[str, Any]:
    from i2v.refine import make_refiner

    return make_refiner(body.refiner).refine(body.text).model_dump(mode="json")  # type: ignore[arg-type]


@router.post("/plan", summary="Predict peak memory and time, and the settings that fit (multipart: image + request)")
async def plan_request(
    http: Request,
    image: UploadFile = File(description="The image the job would animate"),
    request_json: str = Form("{}", alias="request", description="GenerationRequest fields as JSON (without image)"),
    vram: str | None = Form(None, description="Plan for a card with this much memory, e.g. 24GiB"),
) -> dict[str, Any]:
    from i2v.advisor.report import plan_report

    limit = service_of(http).settings.max_upload_bytes
    try:
        request = GenerationRequest(image="upload", **{"prompt": "plan", **_request_part(request_json)})
    except ValidationError as error:
        raise HTTPException(422, _errors(error)) from None
    data = await image.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"image is over the {limit}-byte limit (I2V_MAX_UPLOAD_BYTES)")
    try:
        loaded = await asyncio.to_thread(load_image, data, name=image.filename or "uploaded image")
        report = await asyncio.to_thread(
            plan_report, request, loaded.image.size, vram, request.allow_degrade, image=loaded.image
        )
    except I2VError as error:
        raise HTTPException(422, [{"loc": ["image" if "image" in str(error) else "vram"], "msg": str(error)}]) from None
    return report


@router.get("/health")
def health(request: Request) -> dict[str, Any]:
    from i2v.generation import loaded_backend

    service = service_of(request)
    backend = loaded_backend()
    return {
        "status": "ok",
        "model_loaded": backend.model_id if backend else None,
        "device": backend.device if backend else None,
        "dtype": backend.dtype if backend else None,
        "queued": service.store.count("queued"),
        "running": service.store.count("running"),
        "local_worker": service.queue.local_worker,
        "queue": service.queue.kind,
    }


@router.get("/workers", summary="Workers: name, models, device, free memory, current job, last heartbeat")
def list_workers(request: Request) -> dict[str, Any]:
    return {"workers": service_of(request).workers()}


def create_api(service: Service) -> FastAPI:
    app = FastAPI(title="i2v", version="0.1.0", description="Image-to-video jobs: submit, watch, fetch.")
    app.state.service = service
    app.include_router(router)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    return app
