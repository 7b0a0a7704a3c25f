"""The Huey consumer both queues run beside a web server (the embedded SQLite queue, and the serve node's own
workers in Redis mode): a module of its own, so neither queue imports the other for it."""

from __future__ import annotations

from huey.consumer import Consumer


class EmbeddedConsumer(Consumer):
    """A consumer that runs beside a web server: the server owns the process's signal handlers."""

    def _set_signal_handlers(self) -> None:
        pass
