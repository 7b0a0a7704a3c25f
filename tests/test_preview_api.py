"""Live previews, job side: the embedded runner writes them, the REST API serves them and the SSE stream announces
them (in-process over TestClient, with the tiny I2VGen-XL); a Redis worker's preview events reach the serve
node's outputs, and only well-formed ones."""

from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient
from helpers import submit_accepted
from PIL import Image

from i2v.models import preview

TINY_JOB = {"prompt": "a cat turns its head", "width": 64, "height": 64, "num_frames": 8, "steps": 4, "fps": 8, "seed": 3}


@pytest.fixture
def api(tmp_path, tiny_model, monkeypatch):
    from i2v.jobs.config import ServiceSettings
    from i2v.web.app import create_app

    monkeypatch.setenv("I2V_MODEL", str(tiny_model))
    monkeypatch.setenv("I2V_PREVIEW_CACHE", str(tmp_path / "fits"))
    monkeypatch.setattr(preview, "MIN_INTERVAL", 0.0)  # a preview after every tiny step
    monkeypatch.setattr(preview, "FIT_CLIPS", 4)
    app = create_app(ServiceSettings(home=tmp_path / "home"), ui=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:  # a Host the loopback server answers to
        yield client


def events(client: TestClient, job_id: str) -> list[tuple[str, dict]]:
    seen, name = [], None
    with client.stream("GET", f"/api/v1/jobs/{job_id}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                seen.append((name, json.loads(line.removeprefix("data: "))))
    return seen


def test_a_running_job_streams_preview_events_whose_url_serves_an_animated_webp(api):
    job_id = submit_accepted(api, TINY_JOB)
    stream = events(api, job_id)
    names = [name for name, _ in stream]
    previews = [data for name, data in stream if name == "preview"]
    assert names[-1] == "done" and previews, names
    assert all(data["total"] == 4 and data["url"] == f"/api/v1/jobs/{job_id}/preview?step={data['step']}" for data in previews)
    steps = [data["step"] for data in previews]
    assert steps == sorted(set(steps)) and steps[-1] == 4  # the last step's preview is written before the job ends
    assert names.index("preview") < names.index("done")

    job = api.get(f"/api/v1/jobs/{job_id}").json()
    assert job["preview_step"] == 4 and job["preview_url"] == previews[-1]["url"]
    response = api.get(job["preview_url"])
    assert response.status_code == 200 and response.headers["content-type"] == "image/webp"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "WEBP" and image.is_animated and image.n_frames == 8 and image.size == (64, 64)
    image.seek(7)
    image.convert("RGB").load()

    service = api.app.state.service
    path = service.preview_file(job_id)
    assert path is not None and path.read_bytes() == response.content and path.parent.name == "outputs"
    path.unlink()  # the file going between the lookup and the read (a delete racing the GET) is no preview, not a 500
    service.preview_file = lambda _job_id: path
    gone = api.get(job["preview_url"])
    assert gone.status_code == 404 and gone.json()["code"] == "no_preview"
    del service.preview_file
    path.write_bytes(response.content)
    assert api.delete(f"/api/v1/jobs/{job_id}").status_code == 204
    assert not path.exists()


def test_no_preview_is_404_no_preview_and_a_model_free_job_makes_none(api):
    job_id = submit_accepted(api, {"prompt": "camera slowly pushes in", "model": "camera-preview", "width": 64, "height": 64,
                          "num_frames": 4})
    assert [name for name, _ in events(api, job_id)][-1] == "done"
    response = api.get(f"/api/v1/jobs/{job_id}/preview")
    assert response.status_code == 404 and response.json()["code"] == "no_preview"
    assert api.get(f"/api/v1/jobs/{job_id}").json()["preview_step"] is None
    assert api.app.state.service.preview_file(job_id) is None
    missing = api.get("/api/v1/jobs/0123456789abcdef/preview")
    assert missing.status_code == 404 and missing.json()["code"] == "job_not_found"
    assert api.get("/api/v1/jobs/../../etc/passwd/preview").status_code == 404


def test_the_openapi_document_describes_the_preview_route_and_event(api):
    document = api.get("/openapi.json").json()
    route = document["paths"]["/api/v1/jobs/{job_id}/preview"]["get"]
    assert "image/webp" in route["responses"]["200"]["content"] and "404" in route["responses"]
    stream = document["paths"]["/api/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]
    assert "preview" in stream["schema"]["properties"]["event"]["enum"]
    assert "preview_step" in document["components"]["schemas"]["JobView"]["properties"]


def test_a_redis_workers_previews_reach_the_serve_node_and_forged_ones_do_not(tmp_path):
    """Events from a worker: the newest preview of a batch is written under the job's own name; one that is not a
    WebP, too large or without integer steps is dropped."""
    from i2v.jobs.redis_dispatch import RedisJobQueue
    from i2v.jobs.redis_shared import Event
    from i2v.jobs.runner import preview_path
    from i2v.jobs.store import JobStore
    from i2v.media.previews import encode_preview

    store = JobStore(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    job = store.create({"prompt": "x", "steps": 8}, str(tmp_path / "in.png"))
    running = store.claim(job.id, "w1")
    queue = object.__new__(RedisJobQueue)
    queue.store, queue.outputs = store, tmp_path / "outputs"
    queue.outputs.mkdir()
    queue.client = type("NoRedis", (), {"xack": lambda self, *args: 0, "xdel": lambda self, *args: 0})()
    frames = [__import__("numpy").full((2, 8, 8, 3), value, dtype="uint8") for value in (10, 200)]

    def event(step, data, **values):
        return Event(job.id, running.attempts, "preview", "w1", {"step": step, "total": 8, **values}, {"preview": data})

    queue._apply([(b"1", event(2, encode_preview(frames[0]))), (b"2", event(4, encode_preview(frames[1])))])
    path = preview_path(queue.outputs, job.id)
    assert store.get(job.id).preview == {"step": 4, "total": 8}
    assert Image.open(path).convert("RGB").getpixel((0, 0))[0] > 150  # the newer one
    for forged in (event(6, b"#!/bin/sh\n" + b"x" * 64), event("6", encode_preview(frames[0])),
                   event(6, b"RIFF\0\0\0\0WEBP" + b"\0" * (5 * 2**20))):
        queue._apply([(b"3", forged)])
    assert store.get(job.id).preview == {"step": 4, "total": 8}
    assert sorted(p.name for p in queue.outputs.iterdir()) == [path.name]
