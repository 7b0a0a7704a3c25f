"""REST API (FastAPI): submit, watch, cancel and fetch jobs; refine and plan without generating.

The OpenAPI document is the contract: every route declares its response model and every status it can answer,
and every error has one body shape (`ErrorBody`). A job's files are reached only through its id; no path from a
request ever touches the filesystem. Domain errors (i2v.errors) are mapped to statuses here and only here.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from i2v.errors import (
    I2VError,
    InvalidInputError,
    JobNotFoundError,
    JobStateError,
    QueueFullError,
    StorageFullError,
    StoreUnavailableError,
    UploadTooLargeError,
)
from i2v.jobs.service import JobService
from i2v.jobs.store import FINISHED
from i2v.media.previews import PREVIEW_MEDIA_TYPE
from i2v.models.spec import ModelSpec
from i2v.refine.base import RefinedPrompt
from i2v.request import ECHO_CHARS, MAX_PROMPT_CHARS, GenerationRequest, default_model, echo
from i2v.web.advice import router as advice_router
from i2v.web.names import model_name
from i2v.web.rest import COMMON, NOT_FOUND, UPLOAD, _error, error_response, service_of
from i2v.web.security import add_cors, add_docs, require_token
from i2v.web.views import JobPage, JobView, job_page, job_view, public_metadata

log = logging.getLogger(__name__)
#: Deepest history page a client may ask for (SQLite's OFFSET is a 64-bit integer; far below that is plenty).
MAX_OFFSET = 1_000_000_000

#: Domain error class -> HTTP status. The first match in MRO order wins.
STATUS = {
    UploadTooLargeError: 413,
    InvalidInputError: 422,
    JobNotFoundError: 404,
    JobStateError: 409,
    QueueFullError: 429,
    StorageFullError: 507,
    StoreUnavailableError: 503,
}


class Health(BaseModel):
    status: str = Field(description="ok")
    model_loaded: str | None = Field(description="The model this process holds in memory, if any (a local folder by its name)")
    device: str | None
    dtype: str | None
    queued: int
    running: int
    local_worker: bool = Field(description="Whether this process runs jobs itself")
    queue: str = Field(description="sqlite (embedded) or redis")


class Worker(BaseModel):
    model_config = {"extra": "allow"}

    name: str
    models: list[str] = Field(default_factory=list)
    device: str | None = None
    device_name: str | None = None
    total_bytes: int | None = None
    free_bytes: int | None = None
    model_loaded: bool | None = None
    current_job: str | None = None
    last_heartbeat: float | None = None
    heartbeat_age_seconds: float | None = None


class Workers(BaseModel):
    workers: list[Worker]


class ModelInfo(BaseModel):
    name: str = Field(description="The value to put in a request's `model`")
    where: str = Field(description="configured, local folder, downloaded, built in, or on worker NAME")
    default: bool
    spec: ModelSpec | None = Field(
        description="What a request may ask of this model: frames, sizes, steps, guidance, schedulers, defaults "
        "(a setting left out takes the default here). Null for a model only a remote worker has on disk."
    )


class Models(BaseModel):
    models: list[ModelInfo]


class RefineBody(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    refiner: str = Field(default="rules", pattern="^(rules|llm)$")
    model: str | None = Field(default=None, max_length=1000, description="Write for this offered model's prompt budget and style (default: the server's default model)")


class PlanReport(BaseModel):
    """The advisor's answer: the plan that fits, its predicted peak against the budget, what changed and why."""

    model_config = {"extra": "allow"}

    device: dict[str, Any]
    predicted_peak_bytes: int
    unconstrained_peak_bytes: int
    unconstrained_fits: bool
    budget_bytes: int
    margin: float
    fits: bool
    changes: list[str]
    plan: dict[str, Any]
    stages: dict[str, Any]
    peak_stage: str
    warnings: list[str]
    predicted_seconds: float


#: Nested JSON deeper than this in a request part is refused before it reaches a recursive parser.
MAX_JSON_DEPTH = 32


def parse_request_part(text: str) -> dict[str, Any]:
    """The multipart `request` part: a JSON object of GenerationRequest fields (an `image` key is ignored)."""
    depth = _json_depth(text or "")
    if depth > MAX_JSON_DEPTH:
        raise InvalidInputError(f"request part nests JSON {depth} levels deep; the limit is {MAX_JSON_DEPTH}", field="request")
    try:
        fields = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        raise InvalidInputError(f"request part is not valid JSON: {error.msg} at character {error.pos}", field="request") from None
    if not isinstance(fields, dict):
        raise InvalidInputError("request part must be a JSON object of GenerationRequest fields", field="request")
    fields.pop("image", None)
    return fields


def _json_depth(text: str) -> int:
    """The deepest bracket nesting outside strings, counted without recursion (json.loads recurses)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)], responses=COMMON)


#: How a client follows a submitted job: the 202's `id` is every job route's `job_id`.
JOB_LINKS = {
    name: {"operationId": operation, "parameters": {"job_id": "$response.body#/id"}}
    for name, operation in (
        ("GetJob", "getJob"), ("JobEvents", "jobEvents"), ("CancelJob", "cancelJob"), ("DeleteJob", "deleteJob"),
        ("JobVideo", "jobVideo"), ("JobMetadata", "jobMetadata"), ("JobThumbnail", "jobThumbnail"), ("JobImage", "jobImage"),
        ("JobPreview", "jobPreview"),
    )
}


@router.post(
    "/jobs", status_code=202, response_model=JobView, operation_id="submitJob",
    summary="Submit a job: multipart with an `image` file and a `request` JSON part",
    responses={202: {"links": JOB_LINKS}, **UPLOAD, 429: {**_error("Too many jobs waiting (I2V_QUEUE_LIMIT)"), "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds until a slot likely frees"}}},
               507: _error("The server's data folder is full")},
)
async def submit_job(
    request: Request,
    image: UploadFile = File(description="PNG, JPEG, WebP or BMP; checked by content"),
    request_json: str = Form("{}", alias="request", description="GenerationRequest fields as JSON (without image)"),
) -> JobView:
    service = service_of(request)
    fields = parse_request_part(request_json)
    data = await image.read(service.settings.max_upload_bytes + 1)
    # Off the event loop, the view too: it reads the table, which a busy worker may hold for a moment.
    return await asyncio.to_thread(lambda: job_view(service, service.submit(fields, data, image.filename or "")))


@router.get("/jobs", response_model=JobPage, operation_id="listJobs", summary="History, newest first")
def list_jobs(request: Request, limit: int = Query(20, ge=1, le=200), offset: int = Query(0, ge=0, le=MAX_OFFSET)) -> JobPage:
    return job_page(service_of(request), limit, offset)


@router.get("/jobs/{job_id}", response_model=JobView, operation_id="getJob", responses=NOT_FOUND, summary="One job")
def get_job(request: Request, job_id: str) -> JobView:
    service = service_of(request)
    return job_view(service, service.get(job_id))


EVENTS_DESCRIPTION = """Server-Sent Events until the job ends. Each event's `data` is the job as `GET /jobs/{id}` returns it
(a `JobView`); the event name says why it was sent:

| event | when | what to read in `data` |
|---|---|---|
| `progress` | the state, stage, step, ETA or queue position changed | `state`, `queue_position`, `progress.stage`, `progress.step` / `progress.total`, `progress.eta_seconds` |
| `preview` | a new live preview of the clip forming (every few denoising steps; not every model makes them) | not a job: `{"step", "total", "url"}`, `url` serving the animated WebP |
| `done` | the job succeeded (last event) | `video_url`, `metadata_url`, `thumbnail_url`, `refined_prompt`, `plan`, `timings` |
| `failed` | the job failed or was interrupted (last event) | `error`, `state` |
| `cancelled` | the job was cancelled (last event) | `error`, `progress.step` |
| `gone` | the job was deleted while watched (last event) | `id` only |
"""


#: One server-sent event (OpenAPI 3.1 describes a stream by its events): a name, and the job as JSON text.
SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "event": {"type": "string", "enum": ["progress", "preview", "done", "failed", "cancelled", "gone"]},
        "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": {"anyOf": [
            {"$ref": "#/components/schemas/JobView"},
            {"title": "PreviewEvent", "description": "A `preview` event's data", "type": "object",
             "required": ["step", "total", "url"], "properties": {
                 "step": {"type": "integer", "description": "The denoising step the preview shows"},
                 "total": {"type": "integer", "description": "The run's denoising steps"},
                 "url": {"type": "string", "description": "GET it for the animated WebP (the job's preview route)"}}},
        ]}},
    },
}


@router.get(
    "/jobs/{job_id}/events", operation_id="jobEvents", summary="Server-Sent Events: position, stage, step i/N, ETA, then done/failed/cancelled",
    description=EVENTS_DESCRIPTION, response_class=StreamingResponse,
    responses={**NOT_FOUND, 200: {"content": {"text/event-stream": {"schema": SSE_EVENT}}, "description": "An event stream (see the table); each event as described here"}},
)
async def job_events(request: Request, job_id: str) -> StreamingResponse:
    service = service_of(request)
    await asyncio.to_thread(service.get, job_id)

    def current() -> tuple[str, dict[str, Any], dict[str, Any]] | None:
        job = service.find(job_id)
        return None if job is None else (job.state, job_view(service, job).model_dump(mode="json"), job.preview or {})

    async def stream() -> AsyncIterator[str]:
        last = None
        last_preview = None
        while not await request.is_disconnected():
            found = await asyncio.to_thread(current)
            if found is None:
                yield _sse("gone", {"id": job_id})
                return
            state, view, preview = found
            if view["preview_step"] is not None and view["preview_step"] != last_preview:
                last_preview = view["preview_step"]
                yield _sse("preview", {"step": last_preview, "total": preview.get("total", 0), "url": view["preview_url"]})
            snapshot = {key: view[key] for key in ("state", "progress", "queue_position", "error")}
            if snapshot != last:
                last = snapshot
                name = {"succeeded": "done", "failed": "failed", "cancelled": "cancelled", "interrupted": "failed"}.get(state, "progress")
                yield _sse(name, view)
                if state in (*FINISHED, "interrupted"):
                    return
            await asyncio.sleep(0.2)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


MEDIA = {"image": None, "video": "video/mp4", "thumbnail": "image/jpeg"}


def _file_route(what: str, content_type: str, summary: str):
    def handler(request: Request, job_id: str) -> FileResponse:
        service = service_of(request)
        job = service.get(job_id)
        path = service.file(job, what)
        return FileResponse(path, media_type=MEDIA[what], filename=f"i2v-{job.id}{'-input' if what == 'image' else ''}{path.suffix}")

    router.add_api_route(
        f"/jobs/{{job_id}}/{what}", handler, methods=["GET"], summary=summary, response_class=FileResponse,
        responses={**NOT_FOUND, 200: {"content": {content_type: {"schema": {"type": "string", "format": "binary"}}}, "description": summary}},
        name=f"job_{what}", operation_id=f"job{what.title()}",
    )
    # Players and proxies ask HEAD first; FileResponse answers it with the headers alone.
    router.add_api_route(f"/jobs/{{job_id}}/{what}", handler, methods=["HEAD"], include_in_schema=False)


_file_route("video", "video/mp4", "The finished clip (404 until the job succeeded)")
_file_route("thumbnail", "image/jpeg", "The clip's first frame as a JPEG (404 until the job succeeded)")
_file_route("image", "image/*", "The image the job animates, as uploaded")


@router.get(
    "/jobs/{job_id}/preview", operation_id="jobPreview", response_class=Response,
    summary="The latest live preview of the clip as it forms: a small animated WebP (404 `no_preview` before the first)",
    responses={
        200: {"content": {PREVIEW_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
              "description": "The latest preview, decoded cheaply from the latents (colours approximate)"},
        404: _error("No job with that id (`job_not_found`), or no preview yet (`no_preview`)"),
    },
)
def job_preview(
    request: Request, job_id: str,
    step: int | None = Query(None, ge=0, le=1_000_000, description="Ignored: the `preview` event's URL carries it so that "
                             "each preview has its own URL; the latest preview is served"),
) -> Response:
    return Response(service_of(request).preview(job_id), media_type=PREVIEW_MEDIA_TYPE, headers={"Cache-Control": "no-cache"})


@router.get("/jobs/{job_id}/metadata", operation_id="jobMetadata", responses=NOT_FOUND, summary="Everything needed to reproduce the clip (no server paths)")
def job_metadata(request: Request, job_id: str) -> dict[str, Any]:
    service = service_of(request)
    return public_metadata(service, service.get(job_id))


@router.post("/jobs/{job_id}/cancel", status_code=202, response_model=JobView, operation_id="cancelJob", responses={**NOT_FOUND, 409: _error("The job already finished")})
def cancel_job(request: Request, job_id: str) -> JobView:
    service = service_of(request)
    return job_view(service, service.cancel(job_id))


@router.delete("/jobs/{job_id}", status_code=204, operation_id="deleteJob", responses={**NOT_FOUND, 409: _error("The job is queued or running: cancel it first")})
def delete_job(request: Request, job_id: str) -> None:
    service_of(request).delete(job_id)


@router.post("/refine", response_model=RefinedPrompt, operation_id="refine", responses={400: _error("The body nests JSON too deeply to parse"), 422: _error("The body is not a JSON object (errors names `body`: not JSON, a list, none), or a field is invalid")}, summary="Refine raw text into the English prompt and tags (no image)")
def refine_text(request: Request, body: RefineBody) -> RefinedPrompt:
    from i2v.refine import make_refiner

    spec = None
    if body.model is not None:
        service = service_of(request)
        service.check_model(body.model)  # only a model this server offers (422 with the list otherwise)
        spec = service.model_specs().get(body.model)
    return make_refiner(body.refiner, spec=spec).refine(body.text)  # type: ignore[arg-type]


@router.post("/plan", response_model=PlanReport, operation_id="plan", responses=UPLOAD, summary="Predict peak memory and time, and the settings that fit (multipart: image + request)")
async def plan_request(
    http: Request,
    image: UploadFile = File(description="The image the job would animate"),
    request_json: str = Form("{}", alias="request", description="GenerationRequest fields as JSON (without image)"),
    vram: str | None = Form(None, max_length=32, description="Plan for a card with this much memory, e.g. 24GiB"),
) -> dict[str, Any]:
    service = service_of(http)
    data = await image.read(service.settings.max_upload_bytes + 1)
    return await asyncio.to_thread(service.plan, parse_request_part(request_json), data, image.filename or "", vram)


@router.get("/health", response_model=Health, operation_id="health", summary="Liveness, the model held, queue counts")
def health(request: Request) -> Health:
    from i2v.generation import loaded_backend

    service = service_of(request)
    backend = loaded_backend()
    return Health(
        status="ok",
        model_loaded=model_name(backend.model_id) if backend else None,
        device=backend.device if backend else None,
        dtype=backend.dtype if backend else None,
        **service.counts(),
        local_worker=service.queue.local_worker,
        queue=service.queue.kind,
    )


@router.get("/workers", response_model=Workers, operation_id="listWorkers", summary="Workers: name, models, device, free memory, current job, last heartbeat")
def list_workers(request: Request) -> Workers:
    return Workers(workers=[Worker.model_validate(worker) for worker in service_of(request).workers()])


@router.get("/models", response_model=Models, operation_id="listModels", summary="The models a request may name in `model` (anything else is refused)")
def list_models(request: Request) -> Models:
    service = service_of(request)
    specs = service.model_specs()
    return Models(
        models=[
            ModelInfo(name=name, where=where, default=name == default_model(), spec=specs.get(name))
            for name, where in service.models().items()
        ]
    )


def _status_of(error: I2VError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to `ErrorBody`: domain errors by class, FastAPI's own validation and HTTP errors, and
    the few Python errors hostile input can still provoke in a parser (deep nesting)."""

    @app.exception_handler(I2VError)
    async def domain_error(request: Request, error: I2VError) -> JSONResponse:
        status = _status_of(error)
        if status == 500:
            log.error("unmapped domain error on %s: %s", request.url.path, error)
        headers = {"Retry-After": str(error.retry_after)} if isinstance(error, QueueFullError) else None
        return error_response(status, error.code, str(error), getattr(error, "problems", None), headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors():
            loc = item.get("loc", ())
            location = [str(part) for part in loc if part not in ("body", "query", "path", "header", "cookie", "form")]
            field = ".".join(location) or ("body" if loc[:1] == ("body",) else "request")  # the whole body: not an object, or none
            message = item.get("msg", "invalid").removeprefix("Value error, ")
            if item.get("type") == "json_invalid":
                field, message = "body", f"the body is not valid JSON ({item.get('ctx', {}).get('error', 'cannot parse it')})"
            elif "input" in item and item.get("type") != "missing":
                message = f"{message}, got {echo(item['input'])}"
            problems.append((field[:ECHO_CHARS], message))
        detail = "; ".join(f"{field}: {message}" for field, message in problems)
        return error_response(422, "invalid_input", detail, problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "upload_too_large"}.get(error.status_code, "http_error")
        detail = error.detail if isinstance(error.detail, str) else json.dumps(error.detail)
        return error_response(error.status_code, code, detail, headers=getattr(error, "headers", None))

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, error: RecursionError) -> JSONResponse:
        return error_response(422, "invalid_input", "the request body nests too deeply to parse: send flat JSON", [("request", "nested too deeply")])


def describe_multipart(app: FastAPI) -> None:
    """Document the `request` form part as what it is, a JSON object of GenerationRequest fields, not a bare
    string, so generated clients (and schema fuzzers) send a real request."""
    generate_openapi = app.openapi

    def fields_schema(prompt_required: bool, components: dict[str, Any]) -> dict[str, Any]:
        # Nested models (the advisor's record) go to the document's components, where their $refs point.
        schema = GenerationRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in schema.pop("$defs", {}).items():
            components.setdefault(name, definition)
        schema["properties"].pop("image")
        schema["required"] = ["prompt"] if prompt_required else []
        schema["description"] = "GenerationRequest fields (the image travels as its own part)"
        return schema

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate_openapi()
            for path, prompt_required in (("/api/v1/jobs", True), ("/api/v1/plan", False)):
                form = document["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]
                properties = {
                    "image": {"type": "string", "format": "binary", "description": "PNG, JPEG, WebP or BMP; checked by content"},
                    "request": fields_schema(prompt_required, document.setdefault("components", {}).setdefault("schemas", {})),
                }
                if path.endswith("/plan"):
                    properties["vram"] = {"type": "string", "maxLength": 32, "description": "Plan for a card with this much memory, e.g. 24GiB"}
                form["schema"] = {"type": "object", "required": ["image"], "properties": properties}
                form["encoding"] = {"request": {"contentType": "application/json"}}
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def unknown_route(request: Request, rest: str) -> None:
    """Anything else under /api/v1 is ours to answer (the UI is mounted at the root and would answer in its own
    shape): 405 with `Allow` for a route that exists with other methods, else 404."""
    allowed = sorted({
        method for api_router in request.app.state.api_routers for route in api_router.routes
        if isinstance(route, APIRoute) and route.path_regex.match(request.url.path)
        for method in route.methods
    })
    if allowed:
        raise StarletteHTTPException(
            405, f"{request.method} is not allowed here; use {', '.join(allowed)}", headers={"Allow": ", ".join(allowed)}
        )
    raise StarletteHTTPException(404, f"no API route /api/v1/{rest[:ECHO_CHARS]}: see /docs for the routes")


def create_api(service: JobService) -> FastAPI:
    app = FastAPI(
        title="i2v", version="0.1.0", docs_url=None, redoc_url=None, openapi_url=None,
        description="Image-to-video jobs: submit, watch, fetch. This document is the contract: every status a route "
        "can answer is listed with its body, and every error is an `ErrorBody` with a stable `code`.",
    )
    app.state.service = service
    app.state.api_routers = (router, advice_router)
    for api_router in app.state.api_routers:
        app.include_router(api_router)
    app.add_api_route(
        "/api/v1/{rest:path}", unknown_route, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
        include_in_schema=False, dependencies=[Depends(require_token)],
    )
    install_error_handlers(app)
    describe_multipart(app)
    add_docs(app)
    add_cors(app, service.settings.origin_list)
    return app
