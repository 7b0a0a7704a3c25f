"""What the serve node and Redis workers share: connections, key names, per-model Huey queues, job leases, events.

The serve node's SQL job table stays the source of truth. Redis carries only what is in flight, so losing all of
it (a restart without persistence) loses nothing the serve node cannot rebuild:

- `huey.redis.i2v_<model hash>`: one Huey queue per model; a message carries the request and the input image,
  behind an `i2v-job:<id>` line that says which job it is without unpickling it.
- `i2v:job:<id>:ticket`: the attempt number the serve node last sent; any other attempt is stale.
- `i2v:job:<id>:lease`: which worker runs the job, with a TTL the worker keeps renewing (its heartbeat).
- `i2v:job:<id>:cancel`: set by the serve node, polled by the worker before every denoising step.
- `i2v:events`: a stream (consumer group `serve`) of started/progress/preview/finished/interrupted events, live
  previews and results included, that the serve node applies to its table and files.
- `i2v:worker:<name>`: each worker's self-description, rewritten every heartbeat, expiring when it stops.
- `i2v:epoch`: set by the serve node; its absence means Redis lost its data and the node must re-send work.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis
from huey import RedisHuey
from huey.api import TaskWrapper
from huey.serializer import Serializer
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from i2v.errors import I2VError
from i2v.urls import redact_url

log = logging.getLogger(__name__)

EVENTS = "i2v:events"
GROUP = "serve"
EPOCH = "i2v:epoch"
WORKER_PREFIX = "i2v:worker:"
TASK_NAME = "i2v.run_remote"
CANCEL_TTL = 24 * 3600
T = TypeVar("T")


class QueueUnreachable(I2VError):
    """The Redis server named by --queue / I2V_QUEUE_URL cannot be used."""

    code = "queue_unreachable"


def redacted(url: str) -> str:
    """The queue URL as messages and logs name it (`i2v.urls.redact_url`: no password, no query)."""
    return redact_url(url, host_required=False) or "the configured queue URL (not a redis://HOST:PORT/DB URL)"


def queue_url(given: str | None, given_file: str | Path | None = None) -> str | None:
    """The Redis URL from --queue, --queue-file, I2V_QUEUE_URL or I2V_QUEUE_URL_FILE, the first one set.

    A URL on the command line is readable by every user of the machine (`ps`, /proc/PID/cmdline): when it carries a
    password, say so on stderr, once.
    """
    if given and given_file:
        raise QueueUnreachable("pass --queue or --queue-file, not both")
    if given:
        if urlsplit(given).password:
            print("warning: the Redis password in --queue is visible to every user of this machine (ps, "
                  "/proc/PID/cmdline); pass the URL in I2V_QUEUE_URL or a file (--queue-file, I2V_QUEUE_URL_FILE)",
                  file=sys.stderr, flush=True)
        return given
    if given_file:
        return _read_url(Path(given_file), "--queue-file")
    if os.environ.get("I2V_QUEUE_URL"):
        return os.environ["I2V_QUEUE_URL"]
    if os.environ.get("I2V_QUEUE_URL_FILE"):
        return _read_url(Path(os.environ["I2V_QUEUE_URL_FILE"]), "I2V_QUEUE_URL_FILE")
    return None


def _read_url(path: Path, source: str) -> str:
    try:
        url = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise QueueUnreachable(f"cannot read the queue URL from {path} ({source}): {error}") from None
    if not url:
        raise QueueUnreachable(f"{path} ({source}) is empty: it should hold redis://:PASSWORD@HOST:PORT/DB")
    return url


def connect(url: str) -> redis.Redis:
    """A client that fails fast and retries briefly: callers run their own reconnect loops."""
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise QueueUnreachable(f"the queue must be a redis://HOST:PORT/DB URL, got {redacted(url)!r}")
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=2,
        socket_timeout=10,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        health_check_interval=5,
    )


def check_reachable(client: redis.Redis, url: str) -> None:
    try:
        client.ping()
    except redis.RedisError as error:
        raise QueueUnreachable(f"cannot reach Redis at {redacted(url)}: {error} (is redis-server running there?)") from None


def until_delivered(action: Callable[[], T], what: str, *, give_up: Callable[[], bool] = lambda: False) -> T | None:
    """Run a Redis call until Redis answers (it may be restarting); None only when `give_up()` turns true."""
    warned = False
    while not give_up():
        try:
            result = action()
        except (redis.ConnectionError, redis.TimeoutError) as error:
            if not warned:
                log.warning("Redis unreachable while %s (%s); retrying", what, error)
                warned = True
            time.sleep(0.5)
            continue
        if warned:
            log.info("Redis is back; %s done", what)
        return result
    return None


def ticket_key(job_id: str) -> str:
    return f"i2v:job:{job_id}:ticket"


def lease_key(job_id: str) -> str:
    return f"i2v:job:{job_id}:lease"


def cancel_key(job_id: str) -> str:
    return f"i2v:job:{job_id}:cancel"


def lease_token(worker: str, attempt: int, nonce: str) -> str:
    """The lease's value: who holds it for which attempt (the serve node reads both back)."""
    return f"{worker}/{attempt}/{nonce}"


def lease_holder(token: bytes) -> tuple[str, int]:
    worker, attempt, _ = token.decode().rsplit("/", 2)
    return worker, int(attempt)


def queue_name(model: str) -> str:
    """One Huey queue per model: a worker listens only to the model it holds. Hashed: model ids contain '/'."""
    return "i2v_" + hashlib.sha1(model.encode()).hexdigest()[:16]


JOB_TAG = b"i2v-job:"


class TaggedSerializer(Serializer):
    """Huey's pickle behind an `i2v-job:<id>` line, so the serve node can tell which jobs a queue still holds
    (`jobs_in_queue`) without unpickling anything it reads from Redis."""

    def serialize(self, data: Any) -> bytes:
        args = getattr(data, "args", None)
        payload = args[0] if args and isinstance(args[0], dict) else {}
        body = super().serialize(data)
        return JOB_TAG + str(payload["job_id"]).encode() + b"\n" + body if "job_id" in payload else body

    def deserialize(self, data: bytes) -> Any:
        if data.startswith(JOB_TAG):
            data = data.partition(b"\n")[2]
        return super().deserialize(data)


# The job ids tagged on a queue's messages, read 32 messages at a time: a long queue of large images is never copied whole.
_JOBS_IN_QUEUE_SCRIPT = """
local ids = {}
local length = redis.call('llen', KEYS[1])
for first = 0, length - 1, 32 do
    for _, message in ipairs(redis.call('lrange', KEYS[1], first, first + 31)) do
        local id = string.match(string.sub(message, 1, 80), '^i2v%-job:([^\\n]+)\\n')
        if id then table.insert(ids, id) end
    end
end
return ids
"""


def jobs_in_queue(huey: RedisHuey) -> set[str]:
    """The ids of the jobs whose messages wait in this Huey queue."""
    script = huey.storage.conn.register_script(_JOBS_IN_QUEUE_SCRIPT)
    return {raw.decode() for raw in script(keys=[huey.storage.queue_key])}


def model_queue(client: redis.Redis, model: str, handler: Callable[[dict[str, Any]], None]) -> tuple[RedisHuey, TaskWrapper]:
    """The Huey instance for `model`'s queue on `client`'s connections, with the job task registered."""
    huey = RedisHuey(queue_name(model), connection_pool=client.connection_pool, results=False, read_timeout=1,
                     serializer=TaggedSerializer())

    def run(payload: dict[str, Any]) -> None:  # defined here: Huey names a task after its function's module
        handler(payload)

    return huey, huey.task(name=TASK_NAME)(run)


# -- leases -----------------------------------------------------------------------------------------------------

# Take (ARGV[4] == '1') or renew the lease of one attempt, atomically: refused when the serve node has sent a
# newer attempt (a missing ticket only refuses taking: Redis may have lost it while this attempt ran), when the
# job was cancelled before it started, or when another worker holds the lease. Otherwise SET with a fresh TTL.
_LEASE_SCRIPT = """
local ticket = redis.call('get', KEYS[2])
if ticket then
    if ticket ~= ARGV[3] then return 'superseded' end
elseif ARGV[4] == '1' then
    return 'superseded'
end
if ARGV[4] == '1' and redis.call('exists', KEYS[3]) == 1 then return 'cancelled' end
local holder = redis.call('get', KEYS[1])
if holder and holder ~= ARGV[1] then return 'taken' end
redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2])
return 'ok'
"""
_DROP_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@dataclass
class Lease:
    """One worker's hold on one attempt of a job: SET-if-absent with a TTL, renewed by the heartbeat."""

    client: redis.Redis
    job_id: str
    attempt: int
    token: str
    seconds: float

    def _call(self, taking: bool) -> str:
        keys = [lease_key(self.job_id), ticket_key(self.job_id), cancel_key(self.job_id)]
        args = [self.token, int(self.seconds * 1000), str(self.attempt), "1" if taking else "0"]
        return self.client.register_script(_LEASE_SCRIPT)(keys=keys, args=args).decode()

    def take(self) -> str:
        """'ok', or why not: 'superseded', 'cancelled', 'taken'."""
        return self._call(taking=True)

    def renew(self) -> str:
        return self._call(taking=False)

    def drop(self) -> None:
        self.client.register_script(_DROP_SCRIPT)(keys=[lease_key(self.job_id)], args=[self.token])


# -- events -----------------------------------------------------------------------------------------------------


@dataclass
class Event:
    """One message from a worker to the serve node. `files` holds a result's bytes (video, metadata, thumbnail) or a
    live preview's (`preview`)."""

    job_id: str
    attempt: int
    kind: str  # started | progress | preview | finished | interrupted
    worker: str
    data: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        encoded: dict[str, Any] = {
            "job": self.job_id, "attempt": self.attempt, "kind": self.kind, "worker": self.worker,
            "data": json.dumps(self.data, ensure_ascii=False, default=str),
        }
        encoded.update({f"file:{name}": content for name, content in self.files.items()})
        return encoded

    @classmethod
    def parse(cls, fields: dict[bytes, bytes]) -> Event:
        text = {key.decode(): value for key, value in fields.items()}
        return cls(
            job_id=text["job"].decode(), attempt=int(text["attempt"]), kind=text["kind"].decode(),
            worker=text["worker"].decode(), data=json.loads(text["data"]),
            files={key.removeprefix("file:"): value for key, value in text.items() if key.startswith("file:")},
        )


def publish(client: redis.Redis, event: Event) -> bytes:
    """Append to the event stream; returns the entry's id."""
    return client.xadd(EVENTS, event.fields())


# -- the worker registry ----------------------------------------------------------------------------------------


def list_workers(client: redis.Redis) -> list[dict[str, Any]]:
    """Every worker that heartbeated recently, by name, with the age of its last heartbeat in seconds."""
    keys = sorted(client.scan_iter(match=WORKER_PREFIX + "*", count=500))
    workers = []
    now = time.time()
    for raw in client.mget(keys) if keys else []:
        if raw is None:
            continue
        worker = json.loads(raw)
        worker["heartbeat_age_seconds"] = round(max(now - worker.get("last_heartbeat", now), 0.0), 2)
        workers.append(worker)
    return workers
