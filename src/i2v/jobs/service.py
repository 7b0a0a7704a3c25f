"""The job service: what every front end (REST, web UI) asks of the job system, in domain terms.

It validates a submission (image by content, settings by `GenerationRequest`, model against what this server
offers), stores it, enqueues it and hands out jobs, their files and their texts without server paths. It
returns domain objects (`Job`) and raises our own errors; `web/` builds the REST views and URLs
(web/views.py) and maps the errors to HTTP statuses.
"""

from __future__ import annotations

import errno
import json
import math
import re
import secrets
import shutil
import statistics
import threading
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from i2v.errors import (
    InvalidInputError,
    JobNotFoundError,
    JobStateError,
    ModelNotAllowedError,
    ModelNotFoundError,
    ModelNotServedError,
    NoPreviewError,
    QueueFullError,
    StorageFullError,
    UploadTooLargeError,
)
from i2v.jobs.config import ServiceSettings
from i2v.jobs.queue import Queue
from i2v.jobs.runner import preview_path
from i2v.jobs.store import ACTIVE, Job, JobStore
from i2v.media.images import load_image
from i2v.models.plan import RunPlan
from i2v.models.spec import ModelSpec
from i2v.request import GenerationRequest, default_model, echo, validation_messages

EXTENSIONS = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "WEBP": ".webp", "BMP": ".bmp"}
#: Retry-After when no job has finished yet to measure from.
DEFAULT_RETRY_SECONDS = 10
MAX_RETRY_SECONDS = 600
#: Job ids are 16 hex characters; anything longer is not one of ours.
MAX_JOB_ID_LENGTH = 32


def request_error(error: ValidationError) -> InvalidInputError:
    """A pydantic error as one InvalidInputError listing each bad field."""
    problems = validation_messages(error)
    return InvalidInputError("; ".join(message if message.startswith(field) else f"{field}: {message}" for field, message in problems), problems=problems)


def offered_models(settings: ServiceSettings, workers: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """Model -> where it is (configured, local folder, downloaded, on a worker): the only models clients may pick.

    The default model and `I2V_MODELS` are the operator's choice; known hub models count once downloaded;
    models held by live Redis workers count too. A client can never name an arbitrary path or hub id.
    """
    from huggingface_hub import try_to_load_from_cache

    from i2v.models.registry import built_in, known_models, repository_for

    offered: dict[str, str] = {}
    for model in dict.fromkeys([default_model(), *settings.model_list]):
        folder = Path(model).expanduser()
        offered[model] = "local folder" if folder.is_dir() else "configured"
    for model in known_models():
        if model in built_in():
            offered.setdefault(model, "built in")
        elif model not in offered and isinstance(try_to_load_from_cache(repository_for(model), "model_index.json"), str):
            offered[model] = "downloaded"
    for worker in workers or []:
        for model in worker.get("models") or []:
            offered.setdefault(model, f"on worker {worker.get('name', '?')}")
    return offered


class JobService:
    """Everything a front end needs: settings, the job store and the queue, behind domain methods."""

    def __init__(self, settings: ServiceSettings, store: JobStore, queue: Queue):
        self.settings = settings
        self.store = store
        self.queue = queue
        self._submit_lock = threading.Lock()

    # -- reading ------------------------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        job = self.store.get(job_id) if len(job_id) <= MAX_JOB_ID_LENGTH else None
        if job is None:
            raise JobNotFoundError(f"no job {job_id[:MAX_JOB_ID_LENGTH]!r}: it never existed or was deleted")
        return job

    def find(self, job_id: str) -> Job | None:
        """The job, or None once it is gone (a stream following it then ends instead of failing)."""
        return self.store.get(job_id) if len(job_id) <= MAX_JOB_ID_LENGTH else None

    def counts(self) -> dict[str, int]:
        """How many jobs wait and run, for `/health`."""
        return {state: self.store.count(state) for state in ("queued", "running")}

    def queue_position(self, job: Job) -> int | None:
        """1 for the next job to run; None unless the job is queued."""
        return self.store.queue_position(job)

    def history(self, limit: int, offset: int) -> tuple[list[Job], int]:
        """One page of finished and running jobs, newest first, and how many there are in all."""
        return self.store.list(limit, offset)

    def redacted(self, job: Job) -> tuple[list[str], str | None]:
        """The job's warnings and error as a client may see them (server paths named, not shown)."""
        model = (job.request or {}).get("model")
        return [self._redact(warning, model) for warning in job.warnings or []], self._redact(job.error, model)

    def recent(self, limit: int) -> list[Job]:
        """The newest jobs first (the web page's history)."""
        return self.store.list(limit)[0]

    def file(self, job: Job, what: str) -> Path:
        """The path of a job's image, video, metadata or thumbnail; JobStateError while it has none."""
        attribute = {"image": "image_path", "video": "video_path", "metadata": "metadata_path", "thumbnail": "thumbnail_path"}[what]
        path = getattr(job, attribute)
        if not path or not Path(path).is_file():
            raise JobNotFoundError(f"job {job.id} has no {what} (state: {job.state})")
        return Path(path)

    def preview_file(self, job_id: str) -> Path | None:
        """The job's latest live preview (animated WebP), or None before its first one; JobNotFoundError for no job."""
        job = self.get(job_id)
        path = preview_path(self.settings.subfolder("outputs"), job.id)
        return path if preview_step(job) is not None and path.is_file() else None

    def preview(self, job_id: str) -> bytes:
        """The latest preview's bytes, read whole (it is replaced atomically while a job runs, so a stat-then-stream
        could announce one preview's length and send another's); NoPreviewError (404, `no_preview`) when there is
        none, including when the job is deleted between the lookup and the read."""
        path = self.preview_file(job_id)
        try:
            if path is not None:
                return path.read_bytes()
        except FileNotFoundError:
            pass
        raise NoPreviewError(f"job {job_id} has no live preview yet (its first comes a few denoising steps in; "
                             "some models make none)")

    def public_metadata(self, job: Job) -> dict[str, Any]:
        """The clip's metadata JSON without server paths (the image and output locations are the server's business)."""
        metadata = json.loads(self.file(job, "metadata").read_text(encoding="utf-8"))
        if isinstance(metadata.get("request"), dict):
            metadata["request"].pop("image", None)
        if isinstance(metadata.get("output"), dict):
            metadata["output"].pop("path", None)
        return metadata

    def models(self) -> dict[str, str]:
        return offered_models(self.settings, self.workers() if self.queue.kind == "redis" else None)

    def model_specs(self) -> dict[str, ModelSpec | None]:
        """Each offered model's spec; None for one only a remote worker has on disk (its backend is not known here)."""
        from i2v.models.registry import spec_for

        specs: dict[str, ModelSpec | None] = {}
        for name in self.models():
            try:
                specs[name] = spec_for(name)
            except ModelNotFoundError:
                specs[name] = None
        return specs

    def workers(self) -> list[dict[str, Any]]:
        """Live workers: name, models, device and its free memory, current job, last heartbeat (for the UI too)."""
        return self.queue.workers()

    # -- changing -----------------------------------------------------------------------------------------------

    def submit(self, request_fields: dict[str, Any], image_bytes: bytes, filename: str) -> Job:
        """Validate the image by content, the settings by the request model and the model against what this
        server offers; then store both and enqueue. Nothing is left behind when any step fails."""
        loaded = self.load_upload(image_bytes, filename)
        job_id = secrets.token_hex(8)
        uploads = self.settings.subfolder("uploads")
        upload = uploads / f"{job_id}{EXTENSIONS.get(loaded.source_format, '.png')}"
        fields = {key: value for key, value in request_fields.items() if key != "image"}
        try:
            request = GenerationRequest(image=upload, **fields)
        except ValidationError as error:
            raise request_error(error) from None
        warnings = self.check_model(request.model)
        plan = self.resolve(request, loaded.image.size)
        with self._submit_lock:  # the queue's order must be the table's order
            self._check_queue_limit(request.model)
            self._check_free_space(len(image_bytes))
            try:
                upload.write_bytes(image_bytes)
                # Only what the client set (plus the resolved model): the advisor may change the rest. The seed is
                # the plan's (drawn now when none was given), so the job has it from the start: a cancelled or
                # failed run, a retry and a Redis worker all use (and show) the one seed. The plan goes with the
                # job: the worker runs it instead of resolving the request again.
                seed = plan.seed if plan is not None else request.with_seed().seed
                stored = {**request.model_dump(mode="json", exclude_unset=True), "model": request.model, "seed": seed}
                job = self.store.create(
                    stored, str(upload), job_id=job_id, warnings=warnings,
                    run_plan=plan.model_dump(mode="json") if plan is not None else None,
                )
            except Exception as error:
                upload.unlink(missing_ok=True)
                if _is_disk_full(error):
                    raise self._storage_full() from None
                raise
            self.queue.enqueue(job.id)
        return job

    def plan(self, request_fields: dict[str, Any], image_bytes: bytes, filename: str, vram: str | None = None) -> dict[str, Any]:
        """What the advisor would run for these settings and this image, without queueing anything: the plan,
        its predicted peak against the budget, what it changed, and every warning about the image once."""
        from i2v.advisor.device import parse_size
        from i2v.advisor.report import plan_report

        try:
            request = GenerationRequest(image="upload", **{"prompt": "plan", **request_fields})
        except ValidationError as error:
            raise request_error(error) from None
        if vram is not None:
            try:
                parse_size(vram)
            except InvalidInputError as error:
                raise InvalidInputError(str(error), field="vram") from None
        self.check_model(request.model)
        try:
            from i2v.models.registry import spec_for

            spec_for(request.model)
        except ModelNotFoundError:
            raise InvalidInputError(
                f"model {echo(request.model)} is only on the workers' disks; this server cannot plan it", field="model"
            ) from None
        self.check_settings(request)
        loaded = self.load_upload(image_bytes, filename)
        report = plan_report(request, loaded.image.size, vram, request.allow_degrade, image=loaded.image)
        report["warnings"] = list(dict.fromkeys([*loaded.warnings, *report["warnings"]]))
        return report

    def load_upload(self, image_bytes: bytes, filename: str):
        """An uploaded image checked by size and by content (InvalidInputError on the `image` field)."""
        limit = self.settings.max_upload_bytes
        if len(image_bytes) > limit:
            raise UploadTooLargeError(f"image is over the {limit}-byte limit (I2V_MAX_UPLOAD_BYTES)", field="image")
        return load_image(image_bytes, name=_safe_name(filename))

    def check_settings(self, request: GenerationRequest) -> None:
        """Refuse a request its model's spec refuses (InvalidInputError naming each bad field). A model only a
        remote worker has on disk is checked there, when the job starts."""
        from i2v.models.registry import spec_for

        try:
            spec = spec_for(request.model)
        except ModelNotFoundError:
            return
        spec.check(request)

    def resolve(self, request: GenerationRequest, image_size: tuple[int, int]) -> RunPlan | None:
        """The run the request asks for on this image, resolved by its model's spec (InvalidInputError naming each
        bad field). None for a model only a remote worker has on disk: that worker resolves it, when it starts."""
        from i2v.models.registry import spec_for

        try:
            spec = spec_for(request.model)
        except ModelNotFoundError:
            return None
        return spec.resolve(request, image_size)

    def check_model(self, model: str) -> list[str]:
        """Refuse a model this server does not offer, and one no live worker holds while workers are connected (the
        job would wait unseen and fill the queue); with no worker connected at all, accept it. Returns the job's
        warnings (that one waits for a worker)."""
        offered = self.models()
        if model not in offered:
            raise ModelNotAllowedError(
                f"model {echo(model)} is not offered by this server; pick one of: {', '.join(offered)} "
                "(the operator adds models with I2V_MODELS)",
                field="model",
            )
        held = self.queue.held_models()
        if held is None or model in held:
            return []
        from i2v.models.registry import built_in

        held -= built_in()  # the serve node's own model-free workers say nothing about the GPU pool
        if held:
            raise ModelNotServedError(
                f"no live worker holds model {model!r}; the workers connected hold: {', '.join(sorted(held))} "
                f"(the operator starts one for it with `i2v worker --model {model}`)",
                field="model",
            )
        return [f"no worker is connected yet; the job waits for one holding {model}"]

    def cancel(self, job_id: str) -> Job:
        """A queued job is cancelled at once; a running one, on whichever worker, at its next denoising step."""
        job = self.get(job_id)
        if job.state not in ACTIVE:
            raise JobStateError(f"job {job_id} is {job.state}; only queued or running jobs can be cancelled")
        cancelled = self.store.request_cancel(job_id)
        if cancelled is None:
            raise JobStateError(f"job {job_id} finished before the cancel arrived")
        self.queue.cancel(job_id)
        return cancelled

    def delete(self, job_id: str) -> None:
        job = self.get(job_id)
        if job.state in ACTIVE:
            raise JobStateError(f"job {job_id} is {job.state}: cancel it first")
        for path in (job.video_path, job.metadata_path, job.thumbnail_path, job.image_path):
            if path:
                Path(path).unlink(missing_ok=True)
        preview_path(self.settings.subfolder("outputs"), job.id).unlink(missing_ok=True)
        self.store.delete(job.id)

    # -- guards -------------------------------------------------------------------------------------------------

    def _check_queue_limit(self, model: str) -> None:
        """Back-pressure: past `I2V_QUEUE_LIMIT` jobs waiting in the queue this one would join (its model's, where
        each model has a queue), QueueFullError with about when one slot frees. A limit of 0 is none."""
        limit = self.settings.queue_limit
        if not limit:
            return
        waiting = self.store.waiting(model)
        if waiting < limit:
            return
        seconds = self.retry_after()
        which = f" for {model}" if self.store.per_model_queues else ""
        raise QueueFullError(
            f"the queue is full ({waiting} jobs waiting{which}, limit {limit}, I2V_QUEUE_LIMIT): retry in about {seconds} s", seconds
        )

    def retry_after(self) -> int:
        """Seconds until a worker likely frees a slot: the mean of recent run times over the number of workers."""
        runs = self.store.recent_run_seconds()
        per_job = statistics.fmean(runs) if runs else DEFAULT_RETRY_SECONDS
        return min(max(math.ceil(per_job / max(len(self.workers()), 1)), 1), MAX_RETRY_SECONDS)

    def _check_free_space(self, incoming: int) -> None:
        """Refuse before writing anything when the upload and one job's outputs would not fit."""
        if shutil.disk_usage(self.settings.folder).free < incoming + self.settings.min_free_bytes:
            raise self._storage_full()

    def _storage_full(self) -> StorageFullError:
        free = shutil.disk_usage(self.settings.folder).free
        return StorageFullError(
            f"the data folder is full ({free / 2**20:.1f} MiB free, {self.settings.min_free_bytes / 2**20:.0f} MiB needed "
            "besides the upload): the operator must free space (old jobs can be deleted); nothing was stored"
        )

    def _redact(self, text: str | None, model: Any = None) -> str | None:
        """Job errors (and warnings) may quote server files: a model folder becomes its folder name (as the UI labels
        it), the data folder `$I2V_HOME`, the Hugging Face cache `$HF_CACHE`, and any other absolute path (site-packages,
        /tmp, a home folder) its last part after `…/`. The server's log keeps the full text."""
        if not text:
            return text
        return scrub_paths(text, self._path_names(model))

    def _path_names(self, model: Any = None) -> dict[str, str]:
        """Server folders a client may see by name only: folder -> what to show instead."""
        from huggingface_hub import constants

        names: dict[str, str] = {}
        for candidate in dict.fromkeys([*(m for m in (model, default_model(), *self.settings.model_list) if isinstance(m, str))]):
            folder = Path(candidate).expanduser()
            if folder.is_absolute() or folder.is_dir():
                names[str(folder)] = folder.name or candidate
        for folder, shown in ((self.settings.folder, "$I2V_HOME"), (Path(constants.HF_HUB_CACHE), "$HF_CACHE")):
            names[str(folder)] = shown
        for folder, shown in list(names.items()):  # symlinked /tmp and the like: the resolved spelling too
            try:
                names.setdefault(str(Path(folder).resolve()), shown)
            except OSError:
                pass
        return names


#: An absolute POSIX path (not the path part of a URL, nor one already made relative), or a Windows one.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/$~\\-])(?:/|[A-Za-z]:\\)(?=[^\s'\"`/\\:,;()\[\]<>])(?:[^\s'\"`/\\:,;()\[\]<>]+[/\\])*([^\s'\"`/\\:,;()\[\]<>]*)")


def scrub_paths(text: str, names: dict[str, str]) -> str:
    """`text` with each folder in `names` replaced by its name (longest first, so a model folder inside the data
    folder keeps its own name) and any other absolute path cut to `…/` and its last part."""
    for folder in sorted(names, key=len, reverse=True):
        if len(folder) > 1:
            text = text.replace(folder, names[folder])
    return _ABSOLUTE_PATH.sub(lambda match: f"…/{match.group(1)}" if match.group(1) else "…/", text)


def preview_step(job: Job) -> int | None:
    """The denoising step of the job's latest live preview; None before its first one."""
    step = (job.preview or {}).get("step")
    return step if isinstance(step, int) else None


def _safe_name(filename: str) -> str:
    """The client's file name for messages: the last path part, printable, short."""
    name = Path(filename.replace("\\", "/")).name if filename else ""
    name = "".join(char for char in name if char.isprintable())[:80]
    return name or "uploaded image"


def _is_disk_full(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(error).lower()
    return "database or disk is full" in text or "no space left" in text

