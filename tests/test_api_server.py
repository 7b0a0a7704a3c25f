"""The REST API against a real `i2v serve` process on a loopback port, generating with the tiny model."""

import io
import json
import threading

import av
import httpx
import pytest
from helpers import SMALL_JOB, ServerProcess, submit_job as submit, wait_for_job as wait_for
from helpers import png_bytes as png, run_cli

SMALL = SMALL_JOB
LONG = {"prompt": "waves", "width": 256, "height": 256, "num_frames": 32, "steps": 100, "fps": 8}


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model):
    home = tmp_path_factory.mktemp("home")
    process = ServerProcess(home, tiny_model, env={"I2V_MAX_UPLOAD_BYTES": str(2_000_000)}).start()
    yield process
    process.stop()


def test_submit_follow_events_and_download(client):
    response = submit(client, {**SMALL, "seed": 5})
    assert response.status_code == 202, response.text
    job = response.json()
    assert {"id", "state", "progress", "queue_position"} <= set(job)
    events = []
    with client.stream("GET", f"/api/v1/jobs/{job['id']}/events") as stream:
        name = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    assert events[-1][0] == "done"
    stages = [data["progress"].get("stage") for name, data in events if name != "preview"]  # a preview is not a job
    assert "done" in stages
    assert all(set(data) == {"step", "total", "url"} for name, data in events if name == "preview")
    final = events[-1][1]
    assert final["state"] == "succeeded" and final["refined_prompt"]["source"] == "rules"
    assert "cat" in final["refined_prompt"]["prompt"].lower()
    video = client.get(final["video_url"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(video.content)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 8 and frames[0].shape == (64, 64, 3)
    metadata = client.get(final["metadata_url"]).json()
    assert metadata["seed"] == 5 and metadata["request"]["prompt"] == "猫转头"
    assert client.get(final["thumbnail_url"]).headers["content-type"] == "image/jpeg"
    history = client.get("/api/v1/jobs").json()
    assert history["jobs"][0]["id"] == final["id"]


def test_cancel_a_running_job(client):
    job = submit(client, LONG).json()
    running = wait_for(client, job["id"], lambda j: j["state"] == "running" and j["progress"].get("step", 0) > 0)
    assert running["progress"]["total"] == 100
    response = client.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert response.status_code == 202
    done = wait_for(client, job["id"], lambda j: j["state"] != "running", timeout=30)
    assert done["state"] == "cancelled" and "nothing was written" in done["error"]
    assert client.get(f"/api/v1/jobs/{job['id']}/video").status_code == 404
    assert client.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 409


def test_twenty_concurrent_jobs_all_finish_in_order(client, server):
    ids: list[tuple[int, str]] = []
    lock = threading.Lock()

    def one(index):
        with httpx.Client(base_url=server.url, timeout=60) as http:
            job = submit(http, {**SMALL, "seed": index, "steps": 2}).json()
        with lock:
            ids.append((index, job["id"]))

    threads = [threading.Thread(target=one, args=(index,)) for index in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 20
    finals = [wait_for(client, job_id, lambda j: j["state"] in ("succeeded", "failed")) for _, job_id in ids]
    assert all(job["state"] == "succeeded" for job in finals)
    by_submission = sorted(finals, key=lambda job: job["created_at"])
    finish_order = sorted(finals, key=lambda job: job["updated_at"])
    assert [job["id"] for job in by_submission] == [job["id"] for job in finish_order]


def test_queue_position_is_reported(client):
    first = submit(client, LONG).json()
    second = submit(client, SMALL).json()
    assert second["queue_position"] >= 1
    waiting = client.get(f"/api/v1/jobs/{second['id']}").json()
    assert waiting["state"] == "queued" and waiting["queue_position"] >= 1
    client.post(f"/api/v1/jobs/{first['id']}/cancel")
    wait_for(client, second["id"], lambda j: j["state"] == "succeeded")


@pytest.mark.parametrize(
    ("image", "fields", "status", "reason"),
    [
        (b"not an image at all", SMALL, 422, "not a supported image"),
        (b"", SMALL, 422, "image file is empty"),
        (None, {**SMALL, "num_frames": 99}, 422, "num_frames: must be between 8 and 32 for I2VGen-XL (nearest: 32), got 99"),
        (None, {**SMALL, "prompt": "  "}, 422, "prompt is empty"),
        (None, {**SMALL, "image": "/etc/passwd", "bogus": 1}, 422, "bogus: is not a setting"),
        (b"\x89PNG" + b"\0" * 2_100_000, SMALL, 413, "over the 2000000-byte limit"),
    ],
    ids=["not-an-image", "empty", "frames-99", "blank-prompt", "unknown-field", "over-limit"],
)
def test_bad_uploads_get_4xx_with_reasons(client, image, fields, status, reason):
    response = submit(client, fields, image=image)
    assert response.status_code == status, response.text
    assert reason in json.dumps(response.json(), ensure_ascii=False)


def test_bad_request_json(client):
    response = client.post("/api/v1/jobs", files={"image": ("p.png", png(), "image/png")}, data={"request": "{nope"})
    assert response.status_code == 422 and "not valid JSON" in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/jobs/..%2F..%2F..%2Fetc%2Fpasswd/video",
        "/api/v1/jobs/%2e%2e/metadata",
        "/api/v1/jobs/" + "a" * 40 + "/video",
        "/api/v1/jobs/does-not-exist",
        "/api/v1/jobs/does-not-exist/thumbnail",
    ],
)
def test_unknown_ids_and_traversal_are_404(client, path):
    assert client.get(path).status_code == 404


def test_delete_removes_job_and_files(client, server):
    job = submit(client, SMALL).json()
    done = wait_for(client, job["id"], lambda j: j["state"] == "succeeded")
    video = client.get(done["video_url"])
    assert video.status_code == 200
    assert client.delete(f"/api/v1/jobs/{job['id']}").status_code == 204
    assert client.get(f"/api/v1/jobs/{job['id']}").status_code == 404
    assert not list((server.home / "outputs").glob(f"{job['id']}*"))


def test_refine_and_health_endpoints(client):
    refined = client.post("/api/v1/refine", json={"text": "镜头向左平移，海浪拍打沙滩"}).json()
    assert "pan_left" in refined["tags"] and refined["source"] == "rules"
    assert client.post("/api/v1/refine", json={"text": ""}).status_code == 422
    # Written for the model named (its prompt budget, style and negative prompt), as its job would get it.
    from i2v.models.i2vgenxl.spec import SPEC as I2VGENXL

    assert refined["negative_prompt"] == I2VGENXL.negative_prompt  # the default model: the tiny I2VGen-XL
    camera = client.post("/api/v1/refine", json={"text": "镜头向左平移，海浪拍打沙滩", "model": "camera-preview"}).json()
    assert camera["tags"] == refined["tags"] and camera["negative_prompt"] == "", camera
    refused = client.post("/api/v1/refine", json={"text": "猫", "model": "/etc"})
    assert refused.status_code == 422 and refused.json()["code"] == "model_not_allowed"
    health = client.get("/api/v1/health").json()
    assert health["status"] == "ok" and health["local_worker"] is True
    assert client.get("/docs").status_code == 200
    assert "/api/v1/jobs" in client.get("/openapi.json").json()["paths"]
    models = client.get("/api/v1/models").json()["models"]
    assert [m["default"] for m in models].count(True) == 1


def test_second_server_on_the_same_port_exits_1(server, tmp_path):
    result = run_cli("serve", "--port", str(server.port), env={"I2V_HOME": str(tmp_path)}, timeout=60)
    assert result.returncode == 1
    assert f"port {server.port}" in result.stderr and "already in use" in result.stderr


def test_restart_mid_job_requeues_and_finishes(tmp_path, tiny_model):
    server = ServerProcess(tmp_path, tiny_model).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            job = submit(http, {**LONG, "num_frames": 8, "width": 64, "height": 64, "steps": 100}).json()
            wait_for(http, job["id"], lambda j: j["state"] == "running" and j["progress"].get("step", 0) > 0)
        server.kill()
        partial = [p for p in (tmp_path / "outputs").glob("*") if p.suffix == ".mp4"] if (tmp_path / "outputs").exists() else []
        assert partial == []
        server.start()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            done = wait_for(http, job["id"], lambda j: j["state"] in ("succeeded", "failed", "interrupted"), timeout=180)
            assert done["state"] == "succeeded" and done["attempts"] == 2
            assert http.get(done["video_url"]).status_code == 200
    finally:
        server.stop()


def test_plan_endpoint(client):
    fields = {"resolution": "1024p", "num_frames": 32, "steps": 100}
    response = client.post(
        "/api/v1/plan", files={"image": ("p.png", png(1280, 704), "image/png")}, data={"request": json.dumps(fields), "vram": "24GiB"}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["fits"] is True and report["unconstrained_fits"] is False
    bad = client.post("/api/v1/plan", files={"image": ("p.png", png(), "image/png")}, data={"request": '{"num_frames": 64}'})
    assert bad.status_code == 422 and "num_frames" in bad.text


def test_camera_preview_runs_through_the_same_queue_without_weights(client):
    assert "camera-preview" in [model["name"] for model in client.get("/api/v1/models").json()["models"]]
    fields = {key: value for key, value in SMALL.items() if key != "steps"}  # camera-preview does not denoise
    job = submit(client, {**fields, "prompt": "镜头慢慢推近", "model": "camera-preview"}).json()
    done = wait_for(client, job["id"], lambda j: j["state"] in ("succeeded", "failed"))
    assert done["state"] == "succeeded" and {"zoom_in", "dolly_in"} & set(done["refined_prompt"]["tags"])
    with av.open(io.BytesIO(client.get(done["video_url"]).content)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 8
