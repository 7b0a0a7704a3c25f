"""`redact_url`: the one way messages and logs name an endpoint (an LLM base URL, the Redis queue)."""

from __future__ import annotations

import pytest

from i2v.jobs.redis_shared import redacted
from i2v.urls import redact_url


@pytest.mark.parametrize(("url", "shown"), [
    ("http://user:pass@127.0.0.1:9/v1?api-key=k#f", "http://127.0.0.1:9/v1"),
    ("https://api.example/v1", "https://api.example/v1"),
    ("http://[::1]:8000/v1?token=t", "http://[::1]:8000/v1"),
    ("redis://:secret@10.0.0.5:6379/0", "redis://10.0.0.5:6379/0"),
    ("redis://10.0.0.5:6379/0?password=secret", "redis://10.0.0.5:6379/0"),
])
def test_credentials_and_queries_never_show(url, shown):
    assert redact_url(url) == shown


@pytest.mark.parametrize("url", ["sk-pasted-key", "http://host:port/v1", "http://[::1/v1", "", "/just/a/path"])
def test_a_text_that_is_not_a_url_is_not_shown(url):
    assert redact_url(url) is None


def test_the_queue_names_a_socket_and_never_a_password():
    """The Redis helper masked only the password and kept the query, so `?password=` showed in its messages."""
    assert redacted("unix:///run/redis.sock?password=secret") == "unix:///run/redis.sock"
    assert "secret" not in redacted("redis://127.0.0.1:6379/0?password=secret")
    assert "secret" not in redacted("redis://:secret@127.0.0.1:6379/0")
    assert redacted("not a url") == "the configured queue URL (not a redis://HOST:PORT/DB URL)"
