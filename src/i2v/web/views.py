"""How jobs look to REST clients and the UI: `JobView`, `JobPage` and the /api/v1 URLs of a job's files, built
from the job service's domain objects (jobs/ knows no URL and no REST shape)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from i2v.jobs.service import JobService, preview_step
from i2v.jobs.store import Job
from i2v.models.base import STAGES

#: Where the REST API lives (web/api.py's and web/advice.py's routers).
API_PREFIX = "/api/v1"


class Progress(BaseModel):
    """Where a job is: its stage, the denoising step of `total`, and an ETA once steps run."""

    model_config = ConfigDict(extra="allow")

    stage: str | None = Field(
        default=None,
        description="queued, starting, then the run's stages (" + ", ".join(STAGES) + "), then done, failed or cancelled",
    )
    step: int = 0
    total: int = 0
    eta_seconds: float | None = None
    elapsed: float | None = None


class JobView(BaseModel):
    """A job as clients see it: settings, progress, outcome and URLs; never a server path."""

    id: str
    state: str = Field(description="queued, running, succeeded, failed, cancelled or interrupted")
    progress: Progress
    queue_position: int | None = Field(description="1 for the next job to run; null unless queued")
    request: dict[str, Any] = Field(description="The GenerationRequest fields the client set, plus the resolved model (no image path)")
    refined_prompt: dict[str, Any] | None = Field(description="What the refiner made of the prompt: prompt, tags, source, notes")
    plan: dict[str, Any] | None = Field(description="What ran: size, frames, dtype, offload … as the advisor planned it")
    timings: dict[str, Any] | None = Field(description="Seconds per stage")
    warnings: list[str]
    error: str | None
    error_code: str | None = Field(
        default=None, description="Why it failed or was cancelled, as a stable code (`memory_exhausted`, "
        "`model_not_found`, `cancelled`, … as in the error table; `internal` for a bug); null otherwise")
    attempts: int
    worker: str | None
    created_at: datetime | None
    updated_at: datetime | None
    image_url: str = Field(description="The uploaded image")
    video_url: str | None
    metadata_url: str | None
    thumbnail_url: str | None
    preview_step: int | None = Field(
        default=None, description="The denoising step of the latest live preview; null until the first one (and for "
        "models that make none). Kept after the job ends.")
    preview_url: str | None = Field(
        default=None, description="The latest live preview (an animated WebP), with `?step=` so each one has its own URL")

    @field_validator("created_at", "updated_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        """SQLite hands back naive datetimes; they were stored in UTC, and clients need the offset."""
        return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


class JobPage(BaseModel):
    """One page of the history, newest first."""

    jobs: list[JobView]
    total: int
    limit: int
    offset: int


def job_url(job_id: str, what: str = "") -> str:
    """The REST address of a job (`what` empty) or of one of its files (image, video, metadata, thumbnail, preview)."""
    return f"{API_PREFIX}/jobs/{job_id}" + (f"/{what}" if what else "")


def job_view(service: JobService, job: Job) -> JobView:
    done = job.state == "succeeded"
    step = preview_step(job)
    warnings, error = service.redacted(job)
    return JobView(
        id=job.id,
        state=job.state,
        progress=Progress.model_validate(job.progress or {}),
        queue_position=service.queue_position(job),
        request={key: value for key, value in (job.request or {}).items() if key != "image"},
        refined_prompt=job.refined_prompt,
        plan=job.plan,
        timings=job.timings,
        warnings=warnings,
        error=error,
        error_code=job.error_code,
        attempts=job.attempts,
        worker=job.worker,
        created_at=job.created_at,
        updated_at=job.updated_at,
        image_url=job_url(job.id, "image"),
        video_url=job_url(job.id, "video") if done else None,
        metadata_url=job_url(job.id, "metadata") if done else None,
        thumbnail_url=job_url(job.id, "thumbnail") if done else None,
        preview_step=step,
        preview_url=f"{job_url(job.id, 'preview')}?step={step}" if step is not None else None,
    )


def job_page(service: JobService, limit: int, offset: int) -> JobPage:
    jobs, total = service.history(limit, offset)
    return JobPage(jobs=[job_view(service, job) for job in jobs], total=total, limit=limit, offset=offset)


def public_metadata(service: JobService, job: Job) -> dict[str, Any]:
    """The clip's metadata JSON as clients get it: no server paths, and the video's URL where its path was."""
    metadata = service.public_metadata(job)
    if isinstance(metadata.get("output"), dict):
        metadata["output"]["url"] = job_url(job.id, "video")
    return metadata
