"""The job queue on Huey: SQLite-backed in one process by default, Redis-backed when `I2V_QUEUE_URL` is set.

The job table is the source of truth; a queue message only says "run job X". So after a crash the serve
process can rebuild the embedded queue from the table, and a message for a job that was cancelled (or
already taken) is simply skipped by the runner's atomic claim.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from huey import RedisHuey, SqliteHuey
from huey.api import Huey
from huey.consumer import Consumer

from i2v.service.config import ServiceSettings
from i2v.service.store import JobStore
from i2v.service.worker import JobRunner

log = logging.getLogger(__name__)


class EmbeddedConsumer(Consumer):
    """A consumer that runs beside a web server: the server owns the process's signal handlers."""

    def _set_signal_handlers(self) -> None:
        pass


@dataclass
class JobQueue:
    huey: Huey
    store: JobStore
    runner: JobRunner | None = None
    consumer: Consumer | None = None

    @classmethod
    def create(cls, settings: ServiceSettings, store: JobStore, runner: JobRunner | None) -> JobQueue:
        if settings.queue_url:
            huey = RedisHuey("i2v", url=settings.queue_url)
        else:
            huey = SqliteHuey("i2v", filename=str(settings.folder / "queue.sqlite"))
        queue = cls(huey=huey, store=store, runner=runner)

        @huey.task(name="i2v.run_job")
        def run_job(job_id: str) -> str:
            if queue.runner is None:
                raise RuntimeError("this process has no local worker")
            return queue.runner.run(job_id)

        queue._task = run_job
        return queue

    def enqueue(self, job_id: str) -> None:
        self._task(job_id)

    def pending(self) -> int:
        return self.huey.pending_count()

    def recover(self, max_requeues: int) -> list[str]:
        """Embedded mode after a restart: re-queue interrupted jobs and rebuild the queue from the table."""
        requeued, queued = self.store.recover(max_requeues)
        if requeued:
            log.warning("re-queued %d job(s) interrupted by a restart: %s", len(requeued), ", ".join(requeued))
        self.huey.flush()
        for job_id in queued:
            self.enqueue(job_id)
        return requeued

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
