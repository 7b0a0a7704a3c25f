"""The job queue on Huey: SQLite-backed in one process by default, Redis-backed across machines when
`I2V_QUEUE_URL` is set (jobs.redis_dispatch on the serve node, jobs.redis_worker on each worker).

The job table is the source of truth; a queue message only says "run job X". So after a crash the serve
process can rebuild the embedded queue from the table, and a message for a job that was cancelled (or
already taken) is simply skipped by the runner's atomic claim.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from huey import SqliteHuey
from huey.api import Huey
from huey.consumer import Consumer

from i2v.generation import loaded_backend
from i2v.jobs.config import ServiceSettings
from i2v.jobs.consumer import EmbeddedConsumer
from i2v.jobs.runner import JobRunner
from i2v.jobs.store import JobStore, sqlite_problem

log = logging.getLogger(__name__)


class Queue(Protocol):
    """What the web layer needs from either queue."""

    kind: str

    @property
    def local_worker(self) -> bool: ...

    def enqueue(self, job_id: str) -> None: ...

    def cancel(self, job_id: str) -> None: ...

    def pending(self) -> int: ...

    def workers(self) -> list[dict[str, Any]]: ...

    def held_models(self) -> set[str] | None:
        """The models some live worker holds; None when the worker runs any model offered (embedded)."""

    def start(self, max_requeues: int) -> None: ...

    def stop(self) -> None: ...


def open_queue(settings: ServiceSettings, store: JobStore) -> Queue:
    """The embedded SQLite queue, or the Redis one when `I2V_QUEUE_URL` is set."""
    if settings.queue_url:
        from i2v.jobs.redis_dispatch import RedisJobQueue  # here: redis is imported only where Redis is used

        return RedisJobQueue(settings, store, settings.subfolder("outputs"))
    runner = JobRunner(store, settings.subfolder("outputs")) if settings.local_worker else None
    return JobQueue.create(settings, store, runner)


@dataclass
class JobQueue:
    huey: Huey
    store: JobStore
    runner: JobRunner | None = None
    consumer: Consumer | None = None
    kind = "sqlite"

    @classmethod
    def create(cls, settings: ServiceSettings, store: JobStore, runner: JobRunner | None) -> JobQueue:
        path = settings.folder / "queue.sqlite"
        _drop_if_damaged(path)
        huey = SqliteHuey("i2v", filename=str(path))
        queue = cls(huey=huey, store=store, runner=runner)

        @huey.task(name="i2v.run_job")
        def run_job(job_id: str) -> str:
            if queue.runner is None:
                raise RuntimeError("this process has no local worker")
            return queue.runner.run(job_id)

        queue._task = run_job
        return queue

    @property
    def local_worker(self) -> bool:
        return self.runner is not None

    def enqueue(self, job_id: str) -> None:
        self._task(job_id)

    def cancel(self, job_id: str) -> None:
        """Nothing to pass on: the runner polls the job table's cancel flag before every step."""

    def pending(self) -> int:
        return self.huey.pending_count()

    def workers(self) -> list[dict[str, Any]]:
        """The one in-process worker, in the shape `GET /api/v1/workers` gives for Redis workers."""
        if self.runner is None:
            return []
        from i2v.advisor.device import probe_device  # here: the advisor loads only when someone asks

        backend = loaded_backend()
        running = self.store.jobs_in_state("running")
        info = probe_device(backend.device if backend else None)
        return [{
            "name": self.runner.name, "models": [backend.model_id] if backend else [], "device": backend.device if backend else None,
            "device_name": info.name, "total_bytes": info.total_bytes, "free_bytes": info.free_bytes,
            "model_loaded": backend is not None, "current_job": running[0].id if running else None,
            "last_heartbeat": time.time(), "heartbeat_age_seconds": 0.0,
        }]

    def held_models(self) -> None:
        """The one embedded worker loads whichever offered model the next job asks for."""
        return None

    def recover(self, max_requeues: int) -> list[str]:
        """Embedded mode after a restart: re-queue interrupted jobs and rebuild the queue from the table."""
        requeued, queued = self.store.recover(max_requeues)
        if requeued:
            log.warning("re-queued %d job(s) interrupted by a restart: %s", len(requeued), ", ".join(requeued))
        self.huey.flush()
        for job_id in queued:
            self.enqueue(job_id)
        return requeued

    def start(self, max_requeues: int) -> None:
        if self.runner is not None:
            self.recover(max_requeues)
            self.start_consumer()

    def start_consumer(self) -> None:
        """One worker thread: one job per GPU at a time, in submission order."""
        self.consumer = EmbeddedConsumer(
            self.huey, workers=1, worker_type="thread", periodic=False, check_worker_health=False, max_delay=0.5
        )
        self.consumer.start()

    def stop(self) -> None:
        if self.consumer is not None:
            self.consumer.stop(graceful=False)
            self.consumer = None


def _drop_if_damaged(path: Path) -> None:
    """The embedded queue is a cache of the job table (`recover` refills it from there), so a damaged one is
    deleted, with a warning, instead of stopping the server."""
    problem = sqlite_problem(path) if path.is_file() else None
    if problem is None:
        return
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        part.unlink(missing_ok=True)
    log.warning("the queue file %s was damaged (%s): deleted it; queued jobs are sent again from the job table", path, problem)
