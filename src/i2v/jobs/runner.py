"""Running one job: generate with throttled progress and cancel checks, write outputs atomically, report an outcome.

`execute` is the part every worker shares; `JobRunner` wires it to the job store for the embedded worker, the
Redis worker (jobs.redis_worker) wires it to Redis.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from i2v.errors import GenerationCancelled, I2VError
from i2v.jobs.store import JobStore
from i2v.models.base import Hooks
from i2v.request import GenerationRequest

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.2  # seconds between progress writes; steps on a fast GPU are quicker than a DB round trip
THUMBNAIL_SIDE = 256

Report = Callable[[dict[str, Any]], None]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Outcome:
    """How a run ended: the job state and the columns `JobStore.finish` takes (paths point into `outputs`)."""

    state: str
    values: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None


def execute(
    request: GenerationRequest,
    outputs: Path,
    job_id: str,
    *,
    report: Report,
    cancelled: Callable[[], bool],
    generate: Callable,
) -> Outcome:
    """Generate `request`, write `<job_id>.mp4/.json/.jpg` into `outputs`; every failure becomes an outcome."""
    total = request.steps or 0  # the model's default when the request left it out: known once steps run
    started = time.monotonic()
    last_write = 0.0
    stage_now = {"stage": "starting"}

    def write_progress(**progress: Any) -> None:
        nonlocal last_write
        last_write = time.monotonic()
        report({**stage_now, "step": 0, "total": total, **progress})

    def on_stage(stage: str) -> None:
        stage_now["stage"] = stage
        write_progress(elapsed=round(time.monotonic() - started, 2))

    def on_step(step: int, steps: int, elapsed: float) -> None:
        nonlocal total
        total = steps
        if step < steps and time.monotonic() - last_write < PROGRESS_INTERVAL:
            return
        eta = elapsed / step * (steps - step) if step else None
        write_progress(step=step, total=steps, eta_seconds=round(eta, 1) if eta is not None else None)

    try:
        hooks = Hooks(on_step=on_step, on_stage=on_stage, cancelled=cancelled)
        result = generate(request, hooks)
        hooks.stage("write")
        video = result.save(outputs / f"{job_id}.mp4")
        thumbnail = outputs / f"{job_id}.jpg"
        _write_thumbnail(result.frames[0], thumbnail)
    except GenerationCancelled as error:
        return Outcome("cancelled", {"error": str(error), "progress": {"stage": "cancelled", "step": error.step, "total": error.total}})
    except I2VError as error:
        return Outcome("failed", {"error": str(error), "progress": {**stage_now, "step": 0, "total": total}})
    except Exception as error:  # noqa: BLE001 - a job must end in a state, whatever broke
        log.exception("job %s crashed", job_id)
        return Outcome("failed", {"error": f"internal error: {type(error).__name__}: {error}"})
    return Outcome(
        "succeeded",
        {
            "progress": {"stage": "done", "step": total, "total": total},
            "refined_prompt": result.metadata.get("refined_prompt"),
            "plan": result.metadata.get("plan") or result.metadata.get("runtime"),
            "timings": result.metadata["timings"],
            "warnings": result.warnings,
            "video_path": str(video),
            "metadata_path": str(video.with_suffix(".json")),
            "thumbnail_path": str(thumbnail),
        },
        seed=result.seed,
    )


def finish_values(outcome: Outcome, stored_request: dict[str, Any]) -> dict[str, Any]:
    """The outcome's columns plus the stored request with the seed that ran (so a rerun reproduces it)."""
    if outcome.seed is None:
        return outcome.values
    return {**outcome.values, "request": {**stored_request, "seed": outcome.seed}}


class JobRunner:
    """Turns a job id into a finished job. The model stays loaded between jobs (generation.get_backend)."""

    def __init__(self, store: JobStore, outputs: Path, *, generate: Callable | None = None):
        from i2v.generation import generate as default_generate

        self.store = store
        self.outputs = outputs
        self.generate = generate or default_generate
        self.name = worker_name()

    def run(self, job_id: str) -> str:
        job = self.store.claim(job_id, self.name)
        if job is None:
            log.info("job %s is not queued any more (cancelled or taken); skipping", job_id)
            return "skipped"
        outcome = execute(
            GenerationRequest.model_validate(job.request),
            self.outputs,
            job_id,
            report=lambda progress: self.store.update(job_id, progress=progress),
            cancelled=lambda: self.store.cancel_requested(job_id),
            generate=self.generate,
        )
        self.store.finish(job_id, outcome.state, **finish_values(outcome, job.request))
        return outcome.state


def _write_thumbnail(frame, path: Path) -> None:
    from i2v.media.files import atomic_path

    image = Image.fromarray(frame)
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    with atomic_path(path) as temp:
        image.save(temp, format="JPEG", quality=85)
