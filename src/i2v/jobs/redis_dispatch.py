"""The serve node's side of the Redis queue: send jobs to per-model Huey queues, apply workers' events to the job
table and the outputs folder, re-queue jobs whose worker stopped heartbeating, and rebuild Redis's share of the
state after Redis lost it, and re-send a job whose message a worker took and died with before starting it.

One background thread does the applying and the reaping, so the two never race; API threads only send and cancel.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import redis
from huey import RedisHuey
from huey.api import TaskWrapper

from i2v.errors import I2VError, StoreUnavailableError
from i2v.jobs.config import ServiceSettings
from i2v.jobs.consumer import EmbeddedConsumer
from i2v.jobs.redis_shared import (
    CANCEL_TTL,
    EPOCH,
    EVENTS,
    GROUP,
    Event,
    cancel_key,
    connect,
    jobs_in_queue,
    lease_holder,
    lease_key,
    list_workers,
    model_queue,
    ticket_key,
)
from i2v.jobs.redis_worker import RESULT_FILES, RedisWorker
from i2v.jobs.runner import Outcome, finish_values, preview_path, worker_name
from i2v.jobs.store import Job, JobStore
from i2v.media.files import atomic_path, write_json
from i2v.media.previews import PREVIEW_MAX_BYTES, write_preview
from i2v.models.registry import built_in
from i2v.request import default_model

log = logging.getLogger(__name__)

#: What a worker's result may set on the job row; paths are written only by this node.
WORKER_COLUMNS = frozenset({"progress", "refined_prompt", "plan", "timings", "warnings", "error", "error_code"})
#: What an error code looks like (`I2VError.code`): a forged event cannot put other text in that column.
ERROR_CODE = re.compile(r"[a-z_]{1,40}")
WORKER_STATES = frozenset({"succeeded", "failed", "cancelled"})
CONSUMER = "serve"  # one serve node: a fixed consumer name lets a restarted node re-read what it had not applied
BATCH = 64


class RedisJobQueue:
    """The queue interface of `i2v serve` when `I2V_QUEUE_URL` names a Redis server."""

    kind = "redis"

    def __init__(self, settings: ServiceSettings, store: JobStore, outputs: Path):
        assert settings.queue_url
        self.settings = settings
        self.store = store
        store.per_model_queues = True  # each model has its own queue: a job waits only behind jobs for its model
        self.outputs = outputs
        self.client = connect(settings.queue_url)
        self.local: RedisWorker | None = None
        if settings.local_worker:
            self.local = RedisWorker(connect(settings.queue_url), default_model(), lease_seconds=settings.lease_seconds)
        # Model-free built-in backends (camera-preview) need no GPU and no weights: this node draws them itself,
        # so they work with any pool of workers, each on its own queue under its own name.
        self.built_in = [
            RedisWorker(connect(settings.queue_url), model, name=f"{worker_name()}/{model}", lease_seconds=settings.lease_seconds)
            for model in sorted(built_in())
        ]
        self._queues: dict[str, tuple[RedisHuey, TaskWrapper]] = {}
        self._unsent: set[str] = set()
        self._missing_since: dict[tuple[str, int], float] = {}
        self._unseen: set[tuple[str, int]] = set()  # queued attempts whose message the last check did not find
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="i2v-dispatch", daemon=True)
        self._backlog = True  # first read what a previous run of this node received but did not apply
        self._reconciled = False

    @property
    def local_worker(self) -> bool:
        return self.local is not None

    # -- called from request handlers -------------------------------------------------------------------------

    def enqueue(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is None:
            return
        try:
            self._send_or_fail(job)
        except redis.RedisError as error:
            log.warning("job %s stays queued until Redis is back: %s", job_id, error)
            with self._lock:
                self._unsent.add(job_id)

    def cancel(self, job_id: str) -> None:
        """Reach a running job's worker at its next step; a queued job's message is skipped by whoever pops it."""
        job = self.store.get(job_id)
        try:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.set(cancel_key(job_id), 1, ex=CANCEL_TTL)
                if job is None or job.state not in ("queued", "running"):
                    pipe.delete(ticket_key(job_id))
                pipe.execute()
        except redis.RedisError as error:
            log.warning("cancel of %s reaches its worker once Redis is back: %s", job_id, error)

    def pending(self) -> int:
        return self.store.count("queued")

    def workers(self) -> list[dict[str, Any]]:
        try:
            return list_workers(self.client)
        except redis.RedisError as error:
            log.warning("cannot list workers: %s", error)
            return []

    def held_models(self) -> set[str]:
        """The models live workers hold (this node's own worker included): a job for any other model would wait."""
        return {model for worker in self.workers() for model in worker.get("models") or []}

    # -- life cycle -------------------------------------------------------------------------------------------

    def start(self, max_requeues: int) -> None:
        """Re-queueing uses `settings.max_requeues` (the same value the embedded queue is given here)."""
        try:
            self._reconcile()
        except redis.RedisError as error:
            log.warning("Redis unreachable at start-up (%s); jobs are sent when it is back", error)
        self._thread.start()
        for worker in [*([self.local] if self.local is not None else []), *self.built_in]:
            worker.start_embedded(EmbeddedConsumer)

    def stop(self) -> None:
        self._stop.set()
        for worker in [*([self.local] if self.local is not None else []), *self.built_in]:
            worker.stop()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    # -- sending ----------------------------------------------------------------------------------------------

    def _queue(self, model: str) -> tuple[RedisHuey, TaskWrapper]:
        with self._lock:
            if model not in self._queues:
                self._queues[model] = model_queue(self.client, model, _never_here)
            return self._queues[model]

    def _send_or_fail(self, job: Job) -> None:
        """Send the job's next attempt; a job whose input image is gone fails with that reason."""
        try:
            self._send(job, job.attempts + 1)
        except OSError as error:
            self.store.finish(job.id, "failed", error=f"the input image cannot be read any more: {error}")

    def _send(self, job: Job, attempt: int) -> None:
        """Ticket and message in one transaction: a worker never sees a message without its ticket."""
        huey, task = self._queue(job.request["model"])
        image = Path(job.image_path)
        payload = {
            "job_id": job.id,
            "attempt": attempt,
            "request": job.request,
            "plan": job.run_plan,
            "image": image.read_bytes(),
            "image_suffix": image.suffix,
            "lease_seconds": self.settings.lease_seconds,
        }
        message = huey.serialize_task(task.s(payload))
        with self.client.pipeline(transaction=True) as pipe:
            pipe.set(ticket_key(job.id), attempt)
            pipe.lpush(huey.storage.queue_key, message)
            pipe.execute()

    def _reconcile(self) -> None:
        """Make Redis hold what the table says is in flight: re-send queued jobs whose ticket is missing (never
        sent, or Redis lost it) and restore running jobs' tickets, so their workers keep going."""
        try:
            self.client.xgroup_create(EVENTS, GROUP, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        jobs = self.store.jobs_in_state("queued", "running")
        tickets = self.client.mget([ticket_key(job.id) for job in jobs]) if jobs else []
        resent = []
        for job, ticket in zip(jobs, tickets):
            if ticket is not None:
                continue
            if job.state == "queued":
                self._send_or_fail(job)
                resent.append(job.id)
            else:
                self.client.set(ticket_key(job.id), job.attempts, nx=True)
        if resent:
            log.warning("sent %d queued job(s) to Redis again: %s", len(resent), ", ".join(resent))
        with self._lock:
            self._unsent.difference_update(resent)
        self._missing_since.clear()
        self._unseen.clear()
        self.client.set(EPOCH, secrets.token_hex(8))
        self._reconciled = True

    def _flush_unsent(self) -> None:
        with self._lock:
            waiting = sorted(self._unsent)
            self._unsent.clear()
        for job_id in waiting:
            self.enqueue(job_id)

    # -- the background loop ----------------------------------------------------------------------------------

    def _loop(self) -> None:
        down = store_down = False
        next_reap = next_lost_check = 0.0
        while not self._stop.is_set():
            try:
                if not self._reconciled:
                    self._reconcile()
                elif not self.client.exists(EPOCH):
                    log.warning("Redis has lost its data (restarted?): rebuilding the queue from the job table")
                    self._reconcile()
                self._flush_unsent()
                self._apply(self._read())
                if time.monotonic() >= next_reap:
                    self._reap()
                    next_reap = time.monotonic() + min(self.settings.lease_seconds / 4, 1.0)
                if time.monotonic() >= next_lost_check:
                    self._resend_lost()
                    next_lost_check = time.monotonic() + self.settings.lease_seconds
                if down:
                    log.info("Redis is back")
                down = store_down = False
            except (redis.ConnectionError, redis.TimeoutError) as error:
                if not down:
                    log.warning("Redis unreachable (%s); retrying", error)
                down = True
                self._stop.wait(0.5)
            except StoreUnavailableError as error:  # one line, not a traceback every half second
                if not store_down:
                    log.error("%s", error)
                store_down = True
                self._backlog = True
                self._stop.wait(5)
            except Exception:  # noqa: BLE001 - this thread must outlive any one bad event
                log.exception("dispatch loop error")
                self._backlog = True  # re-read the entries this batch left unacknowledged, not only new ones
                self._stop.wait(0.5)

    def _read(self) -> list[tuple[bytes, Event | None]]:
        start = "0" if self._backlog else ">"
        try:
            reply = self.client.xreadgroup(GROUP, CONSUMER, {EVENTS: start}, count=BATCH, block=None if self._backlog else 500)
        except redis.ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            self._reconcile()
            return []
        entries = reply[0][1] if reply else []
        if self._backlog and not entries:
            self._backlog = False
        return [(entry_id, _parse(entry_id, fields)) for entry_id, fields in entries]

    def _apply(self, entries: list[tuple[bytes, Event | None]]) -> None:
        """Apply a batch in order; a progress event followed by any later event of the same job is skipped, and so
        is a preview followed by a later preview of the same job (only the newest is shown)."""
        later: set[str] = set()
        later_preview: set[str] = set()
        keep = []
        for _, event in reversed(entries):
            if event is None:
                continue
            if event.kind == "preview":
                if event.job_id not in later_preview:
                    keep.append(event)
                later_preview.add(event.job_id)
                continue
            if event.kind != "progress" or event.job_id not in later:
                keep.append(event)
            later.add(event.job_id)
        for event in reversed(keep):
            self._apply_one(event)
        if entries:
            ids = [entry_id for entry_id, _ in entries]
            self.client.xack(EVENTS, GROUP, *ids)
            self.client.xdel(EVENTS, *ids)

    def _apply_one(self, event: Event) -> None:
        job = self.store.get(event.job_id)
        if job is None:
            return
        if job.state == "queued" and job.attempts == event.attempt - 1:
            # The first event of an attempt claims it (the `started` event may have been lost with Redis's data).
            job = self.store.claim(event.job_id, event.worker, attempt=event.attempt) or self.store.get(event.job_id)
        if job is None or job.state != "running" or job.attempts != event.attempt:
            if job is not None and job.state == "cancelled":
                self.cancel(job.id)  # cancelled here meanwhile (e.g. from the UI): stop that worker
            return
        if event.kind == "progress":
            self.store.update(job.id, attempt=event.attempt, progress=event.data["progress"])
        elif event.kind == "preview":
            self._preview(job, event)
        elif event.kind == "finished":
            self._finish(job, event)
        elif event.kind == "interrupted":
            self._release(job, f"worker {event.worker} stopped")

    def _finish(self, job: Job, event: Event) -> None:
        """Apply a worker's result. Only the columns a worker may set are taken from it: file paths are this
        node's business (set by `_write_files`), so a forged event cannot point a job at a file of this node."""
        state = event.data.get("state")
        if state not in WORKER_STATES:
            log.warning("job %s: ignored a result with state %r from %s", job.id, state, event.worker)
            return
        values = {key: value for key, value in dict(event.data.get("values") or {}).items() if key in WORKER_COLUMNS}
        if not (values.get("error_code") is None or (isinstance(values["error_code"], str) and ERROR_CODE.fullmatch(values["error_code"]))):
            values["error_code"] = "internal"  # a code is a short identifier; anything else a worker sends is not one
        outcome = Outcome(state, values, event.data.get("seed"))
        if outcome.state == "succeeded":
            try:
                outcome.values.update(self._write_files(job, event))
            except I2VError as error:
                outcome = Outcome("failed", {"error": f"the result could not be stored: {error}"})
        if self.store.finish(job.id, outcome.state, attempt=event.attempt, worker=event.worker,
                             **finish_values(outcome, job.request)):
            self.client.delete(ticket_key(job.id))
            return
        for column in ("video_path", "metadata_path", "thumbnail_path"):  # lost a race with a cancel: no orphans
            if outcome.values.get(column):
                Path(outcome.values[column]).unlink(missing_ok=True)

    def _preview(self, job: Job, event: Event) -> None:
        """A worker's live preview into this node's outputs, under the job's own name. Only an animated WebP of
        bounded size with integer steps is taken, so a forged event can put no other kind of file here."""
        data = event.files.get("preview", b"")
        step, total = event.data.get("step"), event.data.get("total")
        if (len(data) > PREVIEW_MAX_BYTES or data[:4] != b"RIFF" or data[8:12] != b"WEBP"
                or not isinstance(step, int) or not isinstance(total, int)):
            log.warning("job %s: ignored a malformed preview from %s", job.id, event.worker)
            return
        write_preview(preview_path(self.outputs, job.id), data)
        self.store.update(job.id, attempt=event.attempt, preview={"step": step, "total": total})

    def _write_files(self, job: Job, event: Event) -> dict[str, str]:
        """The worker's files into this node's outputs, atomically; the metadata says where they are now."""
        paths = {name: self.outputs / f"{job.id}{suffix}" for name, suffix in RESULT_FILES.items()}
        for name in ("video", "thumbnail"):
            with atomic_path(paths[name]) as temp:
                temp.write_bytes(event.files[name])
        metadata = json.loads(event.files["metadata"])
        metadata.setdefault("output", {})["path"] = str(paths["video"].resolve())
        metadata.setdefault("request", {})["image"] = job.image_path
        metadata["worker"] = event.worker
        write_json(paths["metadata"], metadata)
        return {"video_path": str(paths["video"]), "metadata_path": str(paths["metadata"]),
                "thumbnail_path": str(paths["thumbnail"])}

    def _release(self, job: Job, reason: str) -> None:
        state = self.store.release(job.id, job.attempts, self.settings.max_requeues, reason)
        if state == "queued":
            log.warning("job %s: %s; re-queued (attempt %d)", job.id, reason, job.attempts + 1)
            self.enqueue(job.id)
        elif state is not None:
            log.warning("job %s: %s; now %s", job.id, reason, state)
            self.client.delete(ticket_key(job.id))

    def _reap(self) -> None:
        """Running jobs whose lease has been missing for `lease_seconds` lost their worker: re-queue them. A queued
        job holding a lease for its next attempt is running (its `started` event was lost): mark it so, and it is
        watched like the others. Cancels made straight on the table (the UI) are passed on here too."""
        jobs = self.store.jobs_in_state("queued", "running")
        leases = self.client.mget([lease_key(job.id) for job in jobs]) if jobs else []
        running = []
        for job, lease in zip(jobs, leases):
            if job.state == "running":
                running.append((job, lease))
            elif lease is not None:
                worker, attempt = lease_holder(lease)
                claimed = self.store.claim(job.id, worker, attempt=attempt) if attempt == job.attempts + 1 else None
                if claimed is not None:
                    running.append((claimed, lease))
        now = time.monotonic()
        alive = set()
        for job, lease in running:
            key = (job.id, job.attempts)
            alive.add(key)
            if job.cancel_requested:
                self.client.set(cancel_key(job.id), 1, ex=CANCEL_TTL)
            if lease is not None:
                self._missing_since.pop(key, None)
            elif now - self._missing_since.setdefault(key, now) >= self.settings.lease_seconds:
                self._missing_since.pop(key, None)
                self._release(job, "its worker stopped heartbeating")
        for key in set(self._missing_since) - alive:
            del self._missing_since[key]

    def _resend_lost(self) -> None:
        """Huey has no acks: a worker killed after popping a message and before taking its lease takes the message
        with it, and the job would wait for ever. A queued attempt with its ticket, no lease and no message in its
        model's queue at two checks in a row (`lease_seconds` apart, so a worker now between the two is left alone)
        is sent again; should that worker live after all, the lease lets only one of them run it."""
        jobs = self.store.jobs_in_state("queued")
        tickets = self.client.mget([ticket_key(job.id) for job in jobs]) if jobs else []
        leases = self.client.mget([lease_key(job.id) for job in jobs]) if jobs else []
        waiting: dict[str, list[Job]] = {}
        for job, ticket, lease in zip(jobs, tickets, leases):
            if lease is None and ticket is not None and int(ticket) == job.attempts + 1:
                waiting.setdefault(job.request["model"], []).append(job)
        unseen = set()
        for model, group in waiting.items():
            huey, _ = self._queue(model)
            if len(group) <= self.client.llen(huey.storage.queue_key):
                continue  # every one of them can still have its message there: nothing to look for
            present = jobs_in_queue(huey)
            unseen.update((job.id, job.attempts + 1) for job in group if job.id not in present)
        lost, self._unseen = unseen & self._unseen, unseen - self._unseen
        for job_id, attempt in sorted(lost):
            job = self.store.get(job_id)
            if job is not None and job.state == "queued" and job.attempts + 1 == attempt:
                log.warning("job %s: a worker took its queue message and stopped before starting it; sent again", job_id)
                self._send_or_fail(job)


def _parse(entry_id: bytes, fields: dict[bytes, bytes] | None) -> Event | None:
    """None for an entry to acknowledge and skip: deleted before a crash (no fields) or not ours (malformed)."""
    if not fields:
        return None
    try:
        return Event.parse(fields)
    except (KeyError, ValueError, UnicodeDecodeError):
        log.warning("skipping malformed event %s in %s", entry_id, EVENTS)
        return None


def _never_here(payload: dict[str, Any]) -> None:
    raise RuntimeError("the serve node only sends jobs; workers run them")
