"""One FastAPI app: the REST API under /api/v1, the Gradio UI at /, and (unless turned off) a worker in the same process."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI

from i2v.jobs.config import ServiceSettings
from i2v.jobs.queue import open_queue
from i2v.jobs.service import JobService
from i2v.jobs.store import JobStore
from i2v.web.api import create_api
from i2v.web.security import FORM_OVERHEAD_BYTES, BodyLimit, EdgeGuard

log = logging.getLogger(__name__)


def _preload() -> None:
    """Load the default model at start-up so the first job does not wait for it (a failure is logged, and the
    first job reports it to its user)."""
    from i2v.generation import get_backend
    from i2v.request import default_model

    try:
        get_backend(default_model())
    except Exception as error:  # noqa: BLE001 - the server must come up even without a model
        log.warning("could not preload %s: %s", default_model(), error)


def create_app(settings: ServiceSettings | None = None, *, ui: bool = True, bind: str = "127.0.0.1") -> FastAPI:
    """`bind` is the address the server listens on: the Host names it answers to follow from it (EdgeGuard)."""
    settings = settings or ServiceSettings()
    store = JobStore(settings.db_url)
    queue = open_queue(settings, store)
    service = JobService(settings, store, queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        queue.start(settings.max_requeues)
        if queue.local_worker:
            threading.Thread(target=_preload, name="i2v-preload", daemon=True).start()
        try:
            yield
        finally:
            queue.stop()

    app = create_api(service)
    app.router.lifespan_context = lifespan
    if ui:
        from i2v.web.ui import mount_ui

        app = mount_ui(app, service)
    # Outermost, so every route (the UI's too, and the guard that reads a UI call's body) sees a bounded body.
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + FORM_OVERHEAD_BYTES)
    # Outside that: a request from a foreign Host or a cross-site page is refused before its body is read, and
    # every answer (a refusal, a 413 too) carries the security headers.
    app.add_middleware(
        EdgeGuard, bind=bind, allowed_hosts=settings.host_list, origins=settings.origin_list, token=bool(settings.api_token)
    )
    return app
