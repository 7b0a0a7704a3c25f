"""Running one job: generate with throttled progress and cancel checks, write outputs atomically, report an outcome.

`execute` is the part every worker shares; `JobRunner` wires it to the job store for the embedded worker, the
Redis worker (jobs.redis_worker) wires it to Redis.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from i2v.errors import GenerationCancelled, I2VError
from i2v.generation import generate as default_generate
from i2v.generation import metadata_for, thumbnail_for
from i2v.jobs.store import JobStore
from i2v.media.previews import encode_preview, write_preview
from i2v.models.base import Hooks
from i2v.models.plan import RunPlan
from i2v.request import GenerationRequest

log = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.2  # seconds between progress writes; steps on a fast GPU are quicker than a DB round trip
#: The live preview beside a job's outputs (media.previews encodes it).
PREVIEW_SUFFIX = ".preview.webp"

Report = Callable[[dict[str, Any]], None]
#: preview(step, total, webp_bytes): where a finished preview image goes (a file here, an event to the serve node).
PreviewSink = Callable[[int, int, bytes], None]


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
    preview: PreviewSink | None = None,
    plan: RunPlan | None = None,
) -> Outcome:
    """Generate `request`, write `<job_id>.mp4/.jpg/.json` into `outputs` (`GenerationResult.save`, the one write stage); every failure becomes an outcome.

    `plan` is the run resolved when the job was submitted (None: resolve it here). With `preview`, the backend's
    live previews are encoded off the sampling thread and handed to it."""
    total = (plan.steps if plan is not None else request.steps) or 0  # else known once steps run
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

    writer = PreviewWriter(preview) if preview is not None else None
    try:
        hooks = Hooks(on_step=on_step, on_stage=on_stage, cancelled=cancelled, on_preview=writer.offer if writer else None)
        try:
            result = generate(request, hooks, plan=plan)
        finally:
            if writer is not None:
                writer.close()
        hooks.stage("write")
        video = result.save(outputs / f"{job_id}.mp4")
    except GenerationCancelled as error:
        return Outcome("cancelled", {"error": str(error), "error_code": error.code, "progress": {"stage": "cancelled", "step": error.step, "total": error.total}})
    except I2VError as error:
        return Outcome("failed", {"error": str(error), "error_code": error.code, "progress": {**stage_now, "step": 0, "total": total}})
    except Exception as error:  # noqa: BLE001 - a job must end in a state, whatever broke
        log.exception("job %s crashed", job_id)
        return Outcome("failed", {"error": f"internal error: {type(error).__name__}: {error}", "error_code": "internal"})
    return Outcome(
        "succeeded",
        {
            "progress": {"stage": "done", "step": total, "total": total},
            "refined_prompt": result.metadata.get("refined_prompt"),
            "plan": result.metadata.get("plan") or result.metadata.get("runtime"),
            "timings": result.metadata["timings"],
            "warnings": result.warnings,
            "video_path": str(video),
            "metadata_path": str(metadata_for(video)),
            "thumbnail_path": str(thumbnail_for(video)),
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
            preview=lambda step, total, data: self._write_preview(job_id, step, total, data),
            plan=RunPlan.model_validate(job.run_plan) if job.run_plan else None,
        )
        self.store.finish(job_id, outcome.state, **finish_values(outcome, job.request))
        return outcome.state

    def _write_preview(self, job_id: str, step: int, total: int, data: bytes) -> None:
        write_preview(preview_path(self.outputs, job_id), data)
        self.store.update(job_id, preview={"step": step, "total": total})


def preview_path(outputs: Path, job_id: str) -> Path:
    """Where a job's latest live preview lives (named by the job id only, like its other outputs)."""
    return outputs / f"{job_id}{PREVIEW_SUFFIX}"


class PreviewWriter:
    """Encodes and hands on previews on a thread of its own, so the sampler never waits for an image encoder.

    Only the newest preview matters: one that arrives while another is being written replaces the one waiting.
    `close` writes what is still waiting and stops; a failing sink is logged once and never fails the job.
    """

    def __init__(self, sink: PreviewSink):
        self.sink = sink
        self._waiting: tuple[int, int, np.ndarray] | None = None
        self._closed = False
        self._failed = False
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="i2v-preview", daemon=True)
        self._thread.start()

    def offer(self, step: int, total: int, frames: np.ndarray) -> None:
        with self._wake:
            self._waiting = (step, total, frames)
            self._wake.notify()

    def close(self, timeout: float = 30.0) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._waiting is None and not self._closed:
                    self._wake.wait()
                if self._waiting is None:
                    return
                step, total, frames = self._waiting
                self._waiting = None
            try:
                self.sink(step, total, encode_preview(frames))
            except Exception:  # noqa: BLE001 - a preview is a nicety; the job goes on without it
                if not self._failed:
                    log.exception("could not write a live preview; the job goes on without previews")
                self._failed = True
