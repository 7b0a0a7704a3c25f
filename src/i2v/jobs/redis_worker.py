"""A worker on the Redis queue: holds one model on one device, runs one job at a time, needs no database and no
shared filesystem (the image comes in the message, the video goes back in an event).

While a job runs, a heartbeat thread renews its lease and rewrites this worker's registry entry; the worker stops
a job within one denoising step when the serve node cancels it or when its lease went to another attempt.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from huey import signals
from huey.consumer import Consumer
from pydantic import ValidationError

from i2v.generation import generate, get_backend, loaded_backend
from i2v.jobs.redis_shared import (
    WORKER_PREFIX,
    Event,
    Lease,
    cancel_key,
    lease_token,
    model_queue,
    publish,
    queue_name,
    until_delivered,
)
from i2v.jobs.runner import Outcome, execute, worker_name
from i2v.models.plan import RunPlan
from i2v.request import GenerationRequest, describe_validation_error

log = logging.getLogger(__name__)

RESULT_FILES = {"video": ".mp4", "metadata": ".json", "thumbnail": ".jpg"}
PATH_COLUMNS = ("video_path", "metadata_path", "thumbnail_path")


@dataclass
class Running:
    """The job this worker is running now. `lost` says why its result must be dropped (lease gone elsewhere)."""

    job_id: str
    attempt: int
    lease: Lease
    lost: str | None = None
    step: int = 0


class QuietRedisErrors(logging.Filter):
    """Huey logs a full traceback every second while Redis is down; one line says the same."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, (redis.ConnectionError, redis.TimeoutError)):
            record.msg, record.args, record.exc_info, record.exc_text = f"{record.getMessage()}: {error}", (), None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_huey_logs() -> None:
    for name in ("huey.consumer.Worker", "huey.consumer.Scheduler", "huey"):
        logging.getLogger(name).addFilter(QuietRedisErrors())


class RedisWorker:
    """One model on one device, listening to that model's queue only: how a pool mixes cards and models."""

    def __init__(self, client: redis.Redis, model: str, *, device: str | None = None, name: str | None = None,
                 lease_seconds: float = 15.0):
        self.client = client
        self.model = model
        self.device = device
        self.name = name or worker_name()
        self.lease_seconds = lease_seconds
        self.huey, _ = model_queue(client, model, self.run_task)
        self.huey.signal(signals.SIGNAL_INTERRUPTED)(self._on_interrupted)
        self.current: Running | None = None
        self.jobs_done = 0
        self.started_at = time.time()
        self.consumer: Consumer | None = None
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat_forever, name="i2v-heartbeat", daemon=True)

    # -- life cycle -------------------------------------------------------------------------------------------

    def load(self):
        """Load the model now (once), so the first job does not wait and a missing model fails at start-up."""
        return get_backend(self.model, device=self.device)

    def run_forever(self) -> None:
        """Consume until SIGINT (finish the running job first) or SIGTERM (hand the running job back at once)."""
        quiet_huey_logs()
        self._heartbeat.start()
        self.consumer = Consumer(self.huey, workers=1, worker_type="thread", periodic=False, max_delay=1.0)
        try:
            self.consumer.run()
        finally:
            self._shutdown()

    def start_embedded(self, consumer_class: type[Consumer]) -> None:
        """Beside a web server (`i2v serve --queue … ` with its local worker): no signal handlers of ours."""
        quiet_huey_logs()
        self._heartbeat.start()
        self.consumer = consumer_class(self.huey, workers=1, worker_type="thread", periodic=False,
                                       check_worker_health=False, max_delay=1.0)
        self.consumer.start()

    def stop(self) -> None:
        if self.consumer is not None:
            self.consumer.stop(graceful=False)
        self._on_interrupted(None)
        self._shutdown()

    def _shutdown(self) -> None:
        self._stop.set()
        try:
            self.client.delete(WORKER_PREFIX + self.name)
        except redis.RedisError:
            pass

    # -- one job ----------------------------------------------------------------------------------------------

    def run_task(self, payload: dict[str, Any]) -> None:
        job_id, attempt = payload["job_id"], int(payload["attempt"])
        lease = Lease(self.client, job_id, attempt, lease_token(self.name, attempt, uuid.uuid4().hex[:8]), float(payload["lease_seconds"]))
        status = until_delivered(lease.take, f"taking job {job_id}")
        if status != "ok":
            log.info("not running job %s attempt %d: %s", job_id, attempt, status)
            return
        running = Running(job_id, attempt, lease)
        self.current = running
        log.info("running job %s (attempt %d)", job_id, attempt)
        try:
            self._send(running, "started")
            with tempfile.TemporaryDirectory(prefix="i2v-job-") as folder:
                outcome = self._execute(running, payload, Path(folder))
                files = self._result_files(outcome, Path(folder), job_id)
            if running.lost:
                log.warning("dropping the result of job %s attempt %d: %s", job_id, attempt, running.lost)
                return
            values = {key: value for key, value in outcome.values.items() if key not in PATH_COLUMNS}
            if self._send(running, "finished", {"state": outcome.state, "values": values, "seed": outcome.seed}, files):
                self.jobs_done += 1  # only results that reached the serve node: a dropped one was not done here
            log.info("job %s %s", job_id, outcome.state)
        finally:
            self.current = None

    def _execute(self, running: Running, payload: dict[str, Any], folder: Path) -> Outcome:
        image = folder / f"input{payload.get('image_suffix', '.png')}"
        image.write_bytes(payload["image"])
        try:
            request = GenerationRequest.model_validate({**payload["request"], "image": str(image)})
            plan = RunPlan.model_validate(payload["plan"]) if payload.get("plan") else None
        except ValidationError as error:
            return Outcome("failed", {"error": describe_validation_error(error)})

        def report(progress: dict[str, Any]) -> None:
            running.step = int(progress.get("step") or 0)
            try:
                publish(self.client, Event(running.job_id, running.attempt, "progress", self.name, {"progress": progress}))
            except redis.RedisError:
                pass  # progress is best effort; the result is not

        def preview(step: int, total: int, data: bytes) -> None:
            try:  # best effort like progress: a few dozen KB through Redis, applied by the serve node
                publish(self.client, Event(running.job_id, running.attempt, "preview", self.name,
                                           {"step": step, "total": total}, {"preview": data}))
            except redis.RedisError:
                pass

        return execute(request, folder, running.job_id, report=report, cancelled=functools.partial(self._cancelled, running),
                       generate=functools.partial(generate, device=self.device), preview=preview, plan=plan)

    def _cancelled(self, running: Running) -> bool:
        """Polled before every denoising step: one EXISTS on loopback or LAN is far cheaper than a step."""
        if running.lost:
            return True
        try:
            return bool(self.client.exists(cancel_key(running.job_id)))
        except redis.RedisError:
            return False  # Redis restarting: keep going, the heartbeat re-checks the lease when it is back

    @staticmethod
    def _result_files(outcome: Outcome, folder: Path, job_id: str) -> dict[str, bytes]:
        if outcome.state != "succeeded":
            return {}
        return {name: (folder / f"{job_id}{suffix}").read_bytes() for name, suffix in RESULT_FILES.items()}

    def _send(self, running: Running, kind: str, data: dict[str, Any] | None = None, files: dict[str, bytes] | None = None) -> bool:
        """Whether the event reached Redis (False: the attempt was lost to another worker meanwhile)."""
        event = Event(running.job_id, running.attempt, kind, self.name, data or {}, files or {})
        return until_delivered(lambda: publish(self.client, event), f"reporting job {running.job_id} {kind}",
                               give_up=lambda: running.lost is not None) is not None

    def _on_interrupted(self, signal: str | None, task: Any = None) -> None:
        """SIGTERM or shutdown mid-job: give the lease back and tell the serve node to re-queue now."""
        running = self.current
        if running is None or running.lost:
            return
        running.lost = "worker stopping"
        try:
            running.lease.drop()
            publish(self.client, Event(running.job_id, running.attempt, "interrupted", self.name))
            log.warning("handed job %s back to the queue", running.job_id)
        except redis.RedisError as error:
            log.warning("could not hand job %s back (%s); the serve node re-queues it when its lease expires",
                        running.job_id, error)

    # -- heartbeat --------------------------------------------------------------------------------------------

    def _beat_forever(self) -> None:
        down = False
        while not self._stop.is_set():
            running = self.current
            seconds = min(self.lease_seconds, running.lease.seconds if running else self.lease_seconds)
            try:
                self._beat(running, ttl=max(3 * seconds / 5, 2.0))
                if down:
                    log.info("Redis is back")
                down = False
            except (redis.ConnectionError, redis.TimeoutError) as error:
                if not down:
                    log.warning("Redis unreachable (%s); still working, retrying", error)
                down = True
            except Exception:  # noqa: BLE001 - the heartbeat must outlive any one failure
                log.exception("heartbeat failed")
            self._stop.wait(max(seconds / 5, 0.2))

    def _beat(self, running: Running | None, ttl: float) -> None:
        if running is not None and not running.lost:
            status = running.lease.renew()
            if status != "ok":
                running.lost = f"lease {status}"
                log.warning("job %s attempt %d: %s; stopping it", running.job_id, running.attempt, running.lost)
        self.client.set(WORKER_PREFIX + self.name, json.dumps(self.describe(running)), px=int(ttl * 1000))

    def describe(self, running: Running | None) -> dict[str, Any]:
        """What `GET /api/v1/workers` shows for this worker."""
        from i2v.advisor.device import probe_device  # here: the advisor loads only when someone asks

        backend = loaded_backend()
        device = backend.device if backend else (self.device or "auto")
        try:
            info = probe_device(device if backend or self.device else None)
            memory = {"device_name": info.name, "total_bytes": info.total_bytes, "free_bytes": info.free_bytes}
        except Exception:  # noqa: BLE001 - a failed probe must not stop the heartbeat
            memory = {"device_name": None, "total_bytes": None, "free_bytes": None}
        return {
            "name": self.name,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "models": [self.model],
            "queue": queue_name(self.model),
            "device": device,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            **memory,
            "model_loaded": backend is not None,
            "current_job": running.job_id if running else None,
            "current_step": running.step if running else None,
            "jobs_done": self.jobs_done,
            "started_at": self.started_at,
            "last_heartbeat": time.time(),
        }
