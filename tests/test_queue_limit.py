"""The queue limit against a real `i2v serve`: by default at most 100 jobs wait, and the limit holds when 40
clients submit at once; `I2V_QUEUE_LIMIT=0` means no limit."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from helpers import ServerProcess, png_bytes

from i2v.jobs.config import ServiceSettings
from i2v.jobs.service import JobService

#: The first job keeps the one worker busy (100 steps at 256²×32) while the others wait behind it.
LONG = {"prompt": "waves", "width": 256, "height": 256, "num_frames": 32, "steps": 100, "fps": 8}
DEFAULT_LIMIT = 100
CLIENTS = 40
SUBMITS = DEFAULT_LIMIT + 40


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model):
    assert "I2V_QUEUE_LIMIT" not in os.environ, "the server must run with the default limit"
    process = ServerProcess(tmp_path_factory.mktemp("home"), tiny_model).start()
    yield process
    process.stop()


def test_the_default_limit_holds_under_40_way_concurrency(server):
    image = png_bytes(64, 64)

    def submit(seed: int) -> httpx.Response:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            return http.post("/api/v1/jobs", files={"image": ("p.png", image, "image/png")},
                             data={"request": json.dumps({**LONG, "seed": seed})})

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(submit, range(SUBMITS)))
    accepted = [answer for answer in answers if answer.status_code == 202]
    refused = [answer for answer in answers if answer.status_code != 202]
    # 100 wait; one more only if the worker took a job off the queue while the others arrived.
    assert DEFAULT_LIMIT <= len(accepted) <= DEFAULT_LIMIT + 1, [answer.status_code for answer in answers]
    assert refused and all(answer.status_code == 429 for answer in refused)
    for answer in refused:
        assert int(answer.headers["Retry-After"]) >= 1
        body = answer.json()
        assert body["code"] == "queue_full" and "the queue is full" in body["detail"]
        assert "limit 100, I2V_QUEUE_LIMIT" in body["detail"]
    with httpx.Client(base_url=server.url, timeout=30) as http:
        jobs = http.get("/api/v1/jobs", params={"limit": 200}).json()
        assert jobs["total"] == len(accepted)  # a refused submit stored nothing
        waiting = [job for job in jobs["jobs"] if job["state"] == "queued"]
        assert len(waiting) <= DEFAULT_LIMIT
        for job in jobs["jobs"]:
            http.post(f"/api/v1/jobs/{job['id']}/cancel")


class _FullStore:
    """A store with more jobs waiting than any limit: what `JobService` asks before it accepts a job."""

    per_model_queues = False

    def waiting(self, model: str) -> int:
        return 10**6

    def recent_run_seconds(self) -> list[float]:
        return [10.0]


class _NoWorkers:
    def workers(self) -> list:
        return []


def test_the_setting_defaults_to_100_and_0_means_no_limit(monkeypatch, tmp_path):
    from i2v.errors import QueueFullError

    monkeypatch.delenv("I2V_QUEUE_LIMIT", raising=False)
    assert ServiceSettings(home=tmp_path).queue_limit == DEFAULT_LIMIT
    monkeypatch.setenv("I2V_QUEUE_LIMIT", "0")
    unlimited = JobService(ServiceSettings(home=tmp_path), _FullStore(), _NoWorkers())  # type: ignore[arg-type]
    unlimited._check_queue_limit("m")  # no limit: never full
    limited = JobService(ServiceSettings(home=tmp_path, queue_limit=5), _FullStore(), _NoWorkers())  # type: ignore[arg-type]
    with pytest.raises(QueueFullError, match="limit 5, I2V_QUEUE_LIMIT"):
        limited._check_queue_limit("m")
