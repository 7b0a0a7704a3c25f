"""`i2v serve`: check the port, log to a timestamped file, run the app with uvicorn."""

from __future__ import annotations

import logging
import socket
import sys
from datetime import datetime
from pathlib import Path

from i2v.jobs.config import ServiceSettings
from i2v.web.security import is_loopback


class ServeError(Exception):
    """Why the server cannot start; printed as one line, exit code 1."""


def check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: a crashed server's connections in TIME_WAIT do not block a restart; a live one does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise ServeError(f"port {port} on {host} is already in use: stop the other server or pass --port") from None


def setup_logging(folder: Path) -> Path:
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"app_{datetime.now():%Y%m%d_%H%M%S}.log"
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers = [logging.FileHandler(path, encoding="utf-8"), logging.StreamHandler(sys.stderr)]
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    return path


def check_store(url: str) -> None:
    """Fail at start-up, in one line naming the file and what to do, when the job database is damaged."""
    from i2v.errors import StoreUnavailableError
    from i2v.jobs.store import check_integrity

    try:
        check_integrity(url)
    except StoreUnavailableError as error:
        raise ServeError(str(error)) from None


def check_queue(url: str) -> None:
    """Fail at start-up, in one line, when the Redis queue cannot be reached."""
    from i2v.jobs.redis_shared import QueueUnreachable, check_reachable, connect

    try:
        check_reachable(connect(url), url)
    except QueueUnreachable as error:
        raise ServeError(str(error)) from None


def serve(
    host: str = "127.0.0.1",
    port: int = 7860,
    *,
    token: str | None = None,
    local_worker: bool = True,
    queue: str | None = None,
    queue_file: str | Path | None = None,
) -> None:
    import uvicorn

    from i2v.jobs.redis_shared import QueueUnreachable, queue_url

    overrides: dict[str, object] = {"local_worker": local_worker}
    if token:
        overrides["api_token"] = token
    try:
        overrides["queue_url"] = queue_url(queue, queue_file)
    except QueueUnreachable as error:
        raise ServeError(str(error)) from None
    settings = ServiceSettings(**overrides)
    if not is_loopback(host) and not settings.api_token:
        raise ServeError(f"binding to {host} exposes the server beyond this machine: set I2V_API_TOKEN or pass --share-token")
    if not settings.local_worker and not settings.queue_url:
        raise ServeError("--no-local-worker needs --queue redis://… (or I2V_QUEUE_URL): otherwise nothing runs the jobs")
    check_port(host, port)
    if settings.queue_url:
        check_queue(settings.queue_url)
    check_store(settings.db_url)
    log_path = setup_logging(settings.folder)
    from i2v.web.app import create_app

    app = create_app(settings, bind=host)
    logging.getLogger(__name__).info("i2v serving on http://%s:%d (log: %s, data: %s)", host, port, log_path, settings.folder)
    # uvicorn has no timeout for a request's headers: the connection limit bounds what slow clients can hold
    # (an internet-facing server goes behind a reverse proxy, which has one).
    uvicorn.run(app, host=host, port=port, log_config=None, timeout_graceful_shutdown=5, limit_concurrency=settings.max_connections)
