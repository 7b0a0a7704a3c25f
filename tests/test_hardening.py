"""A hostile client against a real `i2v serve` over HTTP: the Gradio UI's file inputs, hostile sizes and shapes,
models by name, body limits, error bodies, server paths, the token, CORS and a full disk."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess

import httpx
import pytest
from helpers import SMALL_JOB, ServerProcess, submit_job as submit, wait_for_job as wait_for
from helpers import png_bytes as png
from PIL import Image

SMALL = SMALL_JOB
LIMIT = 2_000_000


def flat_png(width: int, height: int) -> bytes:
    """A one-colour PNG: a few hundred bytes whatever its size, like a hostile client's."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def assert_error_body(response, status, code, *needles):
    """Every error has one shape: detail + stable code + per-field errors."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail", "code", "errors"} and body["code"] == code, body
    for needle in needles:
        assert needle in body["detail"], body
    return body


@pytest.fixture(scope="module")
def broken_model(tmp_path_factory):
    """A folder the operator lists as a model but whose weights are missing: loading it must fail."""
    folder = tmp_path_factory.mktemp("broken-model")
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "I2VGenXLSampler"}))
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model, broken_model):
    home = tmp_path_factory.mktemp("home")
    env = {"I2V_MAX_UPLOAD_BYTES": str(LIMIT), "GRADIO_TEMP_DIR": str(home / "gradio-cache"), "I2V_MODELS": str(broken_model)}
    process = ServerProcess(home, tiny_model, env=env).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def finished_job(server):
    with httpx.Client(base_url=server.url, timeout=30) as http:
        job = submit(http, {**SMALL, "seed": 3}).json()
        return wait_for(http, job["id"], lambda j: j["state"] == "succeeded")


# -- 1. the Gradio UI: file inputs and the file route ---------------------------------------------------------------


def gradio_call(client, fn: str, data: list, headers=None) -> tuple[str, str]:
    """Call a UI function as a script would (no browser): POST the inputs, read the one-shot event stream."""
    started = client.post(f"/gradio_api/call/{fn}", json={"data": data}, headers=headers)
    assert started.status_code == 200, started.text
    stream = client.get(f"/gradio_api/call/{fn}/{started.json()['event_id']}", headers=headers, timeout=60).text
    events = [line.removeprefix("event: ") for line in stream.splitlines() if line.startswith("event: ")]
    return events[-1], stream


def file_data(path) -> dict:
    return {"path": str(path), "meta": {"_type": "gradio.FileData"}}


def ui_inputs(fn: str, image: dict, model: str) -> list:
    """The page's inputs in order: its language first, then (for submit) the advisor's record, then the form."""
    if fn == "plan_preview":
        return ["en", image, model, "512p", 16, 16, 50, 9.0, True]
    form = [image, "猫转头", "", "", "512p", 8, 8, 3, 9.0, 1, model, "ddim", None, "rules", True]
    return ["en", None, *form] if fn == "submit" else ["en", *form]


def hostile_paths(server, finished_job, tmp_path):
    elsewhere = tmp_path / "elsewhere" / "secret.png"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(png())
    upload = next((server.home / "uploads").glob(f"{finished_job['id']}.*"))
    return {"passwd": "/etc/passwd", "another-folder": elsewhere, "another-job-upload": upload, "job-database": server.home / "i2v.sqlite"}


@pytest.mark.parametrize("with_token", [False, True], ids=["open", "token"])
@pytest.mark.parametrize("fn", ["plan_preview", "submit"])
def test_ui_functions_refuse_files_the_client_did_not_upload(request, server, finished_job, tmp_path, fn, with_token):
    target = request.getfixturevalue("token_server") if with_token else server
    headers = {"Authorization": "Bearer s3cret"} if with_token else {}
    with httpx.Client(base_url=target.url, timeout=30) as http:
        if with_token:
            assert http.post("/login", data={"username": "me", "password": "s3cret"}).status_code == 200
        jobs_before = http.get("/api/v1/jobs", headers=headers).json()["total"]
        for name, path in hostile_paths(server, finished_job, tmp_path).items():
            event, stream = gradio_call(http, fn, ui_inputs(fn, file_data(path), str(target.model)))
            assert event == "error", (name, stream)
            assert "not uploaded by a user" in stream and str(target.home / "gradio-cache") not in stream, stream
        assert http.get("/api/v1/jobs", headers=headers).json()["total"] == jobs_before
    cached = [p.name for p in (target.home / "gradio-cache").rglob("*") if p.is_file()]
    assert not {"passwd", "secret.png", "i2v.sqlite"} & set(cached) and not any(finished_job["id"] in name for name in cached)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x.png", "https://example.com/cat.png", "HTTP://169.254.169.254/latest"])
def test_ui_refuses_files_named_by_url_without_fetching_them(client, url):
    started = client.post("/gradio_api/call/plan_preview", json={"data": ui_inputs("plan_preview", file_data(url), "")})
    assert_error_body(started, 422, "invalid_input", "not named by URL")


def test_ui_refine_has_the_prompt_limit(client):
    event, stream = gradio_call(client, "refine_preview", ["en", "猫" * 2001, "rules"])
    assert event == "error" and "the limit is 2000" in stream and len(stream) < 1000


def test_ui_accepts_what_the_client_uploaded(client, server):
    uploaded = client.post("/gradio_api/upload", files={"files": ("cat.png", png(), "image/png")})
    assert uploaded.status_code == 200, uploaded.text
    # The page names a local model by its folder's name, never its path.
    event, stream = gradio_call(client, "plan_preview", ui_inputs("plan_preview", file_data(uploaded.json()[0]), server.model.name))
    assert event == "complete" and "Memory plan" in stream, stream


def test_ui_preview_camera_runs_the_same_job_on_camera_preview(client, server):
    uploaded = client.post("/gradio_api/upload", files={"files": ("cat.png", png(), "image/png")}).json()[0]
    inputs = ui_inputs("preview_camera", file_data(uploaded), server.model.name)  # the button overrides the picked model
    inputs[2] = "镜头向左平移"
    event, stream = gradio_call(client, "preview_camera", inputs)
    assert event == "complete", stream
    job = client.get("/api/v1/jobs").json()["jobs"][0]
    assert job["request"]["model"] == "camera-preview" and job["state"] == "succeeded", job
    assert job["refined_prompt"]["tags"] == ["pan_left"]
    # The form's size, length and rate carried over (8 frames at 8 fps, 512p); its steps, guidance and
    # scheduler, which a preview does not take, left behind.
    settings = {key: job["request"].get(key) for key in ("resolution", "num_frames", "fps", "steps", "guidance_scale", "scheduler")}
    assert settings == {"resolution": "512p", "num_frames": 8, "fps": 8, "steps": None, "guidance_scale": None, "scheduler": None}


def test_ui_upload_route_has_the_api_byte_limit(client):
    response = client.post("/gradio_api/upload", files={"files": ("big.png", b"\x89PNG" + b"\0" * (LIMIT + 300_000), "image/png")})
    assert_error_body(response, 413, "upload_too_large", f"{LIMIT}")


def test_file_route_serves_only_gradio_cache_and_clips(client, server, finished_job):
    outputs = server.home / "outputs"
    upload = next((server.home / "uploads").glob(f"{finished_job['id']}.*"))
    hostile = ["/etc/passwd", server.home / "i2v.sqlite", upload, "/proc/self/environ", outputs / f"{finished_job['id']}.json",
               f"/proc/self/cwd/{outputs / (finished_job['id'] + '.json')}", f"{outputs}/../i2v.sqlite",
               "https://example.com/relay-me.png", "http://127.0.0.1:9/x"]
    for path in hostile:
        for prefix in ("/gradio_api/file=", "/file="):
            assert client.get(f"{prefix}{path}").status_code == 403, (prefix, path)
    assert client.get(f"/gradio_api/file={outputs / (finished_job['id'] + '.mp4')}").status_code == 200


# -- 2. hostile inputs through the REST API --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1, 20000), (20000, 1), (9000, 1000)], ids=["1x20000", "20000x1", "9:1"])
def test_extreme_aspect_ratio_is_refused_at_upload(client, size):
    response = submit(client, image=flat_png(*size))
    body = assert_error_body(response, 422, "invalid_input", "aspect ratio", "the limit is 8:1")
    assert body["errors"][0]["field"] == "image"


def test_deeply_nested_request_part_is_422(client):
    response = client.post("/api/v1/jobs", files={"image": ("p.png", png(), "image/png")}, data={"request": "[" * 100_000})
    body = assert_error_body(response, 422, "invalid_input", "nests JSON")
    assert body["errors"][0]["field"] == "request"
    deep_json = client.post("/api/v1/refine", content="[" * 100_000, headers={"content-type": "application/json"})
    assert_error_body(deep_json, 400, "bad_request", "parsing the body")
    not_json = client.post("/api/v1/refine", content="{nope", headers={"content-type": "application/json"})
    assert assert_error_body(not_json, 422, "invalid_input", "not valid JSON")["errors"][0]["field"] == "body"


def test_huge_offset_is_422_not_500(client):
    for offset in ("99999999999999999999", "780712509968041508864", "1000000001"):
        assert_error_body(client.get(f"/api/v1/jobs?offset={offset}"), 422, "invalid_input", "offset")


@pytest.mark.parametrize("model", ["/etc", "../../", "someone/any-hub-model", "ali-vilab/i2vgen-xl"])
def test_models_the_server_does_not_offer_are_refused_with_the_list(client, server, model):
    body = assert_error_body(submit(client, {**SMALL, "model": model}), 422, "model_not_allowed", "not offered", str(server.model))
    assert body["errors"][0]["field"] == "model"
    assert "/etc" not in json.dumps(client.get("/api/v1/models").json())


def test_a_failed_load_keeps_the_serving_model(client, server, broken_model):
    serving = submit(client, SMALL).json()  # whatever ran before, the tiny model serves now
    assert wait_for(client, serving["id"], lambda j: j["state"] in ("failed", "succeeded"))["state"] == "succeeded"
    assert client.get("/api/v1/health").json()["model_loaded"] == str(server.model)
    job = submit(client, {**SMALL, "model": str(broken_model)})
    assert job.status_code == 202, job.text
    failed = wait_for(client, job.json()["id"], lambda j: j["state"] in ("failed", "succeeded"))
    assert failed["state"] == "failed" and failed["error"]
    assert client.get("/api/v1/health").json()["model_loaded"] == str(server.model)
    again = submit(client, SMALL).json()
    assert wait_for(client, again["id"], lambda j: j["state"] in ("failed", "succeeded"))["state"] == "succeeded"


def raw_request(server, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes as they are (httpx would fix the Content-Length) and read the status line and body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(head + body)
        reply = b""
        while chunk := connection.recv(65536):
            reply += chunk
    status = int(reply.split(b" ", 2)[1])
    return status, reply.split(b"\r\n\r\n", 1)[1]


def test_oversized_body_is_refused_by_content_length_before_reading(server):
    head = (
        b"POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 209715200\r\nConnection: close\r\n\r\n"
    )
    status, body = raw_request(server, head, b"--b\r\n")
    assert status == 413 and b"209715200 bytes" in body and f"at most {LIMIT} bytes".encode() in body


def test_ui_calls_have_the_same_body_limit(server, client):
    head = (
        b"POST /gradio_api/call/refine_preview HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2147483648\r\nConnection: close\r\n\r\n"
    )
    status, body = raw_request(server, head, b'{"data": ["')
    assert status == 413 and b"2147483648 bytes" in body

    def endless_json():
        yield b'{"data": ["'
        for _ in range(100 * LIMIT // 65536):
            yield "猫".encode() * 21845

    response = client.post("/gradio_api/call/refine_preview", content=endless_json(), headers={"content-type": "application/json"})
    assert_error_body(response, 413, "upload_too_large")


def test_chunked_body_stops_at_the_limit(client):
    sent = 0

    def chunks():
        nonlocal sent
        yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="p.png"\r\nContent-Type: image/png\r\n\r\n'
        while sent < 50 * LIMIT:
            sent += 65536
            yield b"x" * 65536

    response = client.post("/api/v1/jobs", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert_error_body(response, 413, "upload_too_large", "limit")
    assert sent < 50 * LIMIT  # the server answered and closed long before the client was done


def test_error_bodies_do_not_echo_the_whole_input(client):
    text = "猫" * 2001
    body = assert_error_body(client.post("/api/v1/refine", json={"text": text}), 422, "invalid_input", "text")
    assert len(json.dumps(body, ensure_ascii=False)) < 600 and text not in json.dumps(body, ensure_ascii=False)
    for fields in ({**SMALL, "resolution": "z" * 100_000}, {**SMALL, "k" * 100_000: 1}, {**SMALL, "model": "m" * 100_000}):
        response = submit(client, fields)
        assert response.status_code == 422 and len(response.text) < 1500, response.text[:300]


def test_responses_name_no_server_paths(client, server, finished_job):
    home = str(server.home)
    view = client.get(f"/api/v1/jobs/{finished_job['id']}").json()
    metadata = client.get(view["metadata_url"]).json()
    assert "image" not in view["request"] and home not in json.dumps(view) and home not in json.dumps(metadata)
    assert metadata["output"]["url"] == view["video_url"]
    image = client.get(view["image_url"])
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    page = client.get("/api/v1/jobs").json()
    assert home not in json.dumps(page)


def test_404_409_and_bad_multipart_use_the_error_shape(client, finished_job):
    assert_error_body(client.get("/api/v1/jobs/nope"), 404, "job_not_found", "no job")
    assert_error_body(client.post(f"/api/v1/jobs/{finished_job['id']}/cancel"), 409, "job_state", "succeeded")
    bad = client.post("/api/v1/jobs", content=b"--x\r\nnot multipart", headers={"content-type": "multipart/form-data; boundary=zz"})
    assert_error_body(bad, 400, "bad_request")
    assert_error_body(client.get("/api/v1/nope"), 404, "not_found", "no API route")
    assert_error_body(client.get("/api/v1/jobs/"), 404, "not_found")
    wrong_method = client.put("/api/v1/jobs")
    assert_error_body(wrong_method, 405, "method_not_allowed")
    assert "POST" in wrong_method.headers["allow"] and "GET" in wrong_method.headers["allow"]


# -- the token, the docs and CORS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_server(tmp_path_factory, tiny_model):
    home = tmp_path_factory.mktemp("token-home")
    env = {"I2V_API_TOKEN": "s3cret", "GRADIO_TEMP_DIR": str(home / "gradio-cache"), "I2V_CORS_ORIGINS": "https://studio.example"}
    process = ServerProcess(home, tiny_model, env=env, health_headers={"Authorization": "Bearer s3cret"}).start()
    yield process
    process.stop()


def test_docs_and_schema_need_the_token_when_one_is_set(token_server):
    with httpx.Client(base_url=token_server.url, timeout=30) as http:
        for path in ("/docs", "/redoc", "/openapi.json", "/api/v1/jobs"):
            assert_error_body(http.get(path), 401, "unauthorized", "token")
            assert http.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200, path
        assert http.get("/openapi.json", headers={"Authorization": "Bearer wrong"}).status_code == 401
        # Not from a cookie: it would ride along on cross-site requests.
        assert http.get("/api/v1/jobs", cookies={"i2v_token": "s3cret"}).status_code == 401
        assert_error_body(http.get("/api/v1/nope"), 401, "unauthorized")


def test_cors_answers_only_configured_origins(token_server):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    with httpx.Client(base_url=token_server.url, timeout=30) as http:
        evil = http.options("/api/v1/jobs", headers={"Origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in evil.headers
        good = http.options("/api/v1/jobs", headers={"Origin": "https://studio.example", **preflight})
        assert good.headers.get("access-control-allow-origin") == "https://studio.example"


def test_ui_with_a_token_needs_login(token_server):
    with httpx.Client(base_url=token_server.url, timeout=30) as http:
        for fn in ("plan_preview", "submit", "refine_preview"):
            assert http.post(f"/gradio_api/call/{fn}", json={"data": ui_inputs(fn, file_data("/etc/passwd"), "")}).status_code == 401
        assert http.post("/gradio_api/upload", files={"files": ("p.png", png(), "image/png")}).status_code == 401
        assert http.post("/login", data={"username": "me", "password": "wrong"}).status_code == 400
        assert http.post("/login", data={"username": "me", "password": "s3cret"}).status_code == 200
        assert http.get("/gradio_api/file=/etc/passwd").status_code == 403


# -- 3. a full disk -------------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A real 48 MiB file system (tmpfs) for the data folder; skipped where this process may not mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'not root'}); the full-disk test needs one")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_answers_507_leaves_nothing_and_recovers(small_disk, tiny_model):
    server = ServerProcess(small_disk, tiny_model, env={"I2V_MIN_FREE_BYTES": str(4 * 2**20)}).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            filler = small_disk / "filler.bin"
            free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
            with open(filler, "wb") as handle:
                handle.write(b"\0" * (free - 2**20))
            uploads_before = sorted(p.name for p in (small_disk / "uploads").glob("*")) if (small_disk / "uploads").exists() else []
            body = assert_error_body(submit(http), 507, "storage_full", "data folder is full", "MiB free")
            assert "nothing was stored" in body["detail"]
            assert http.get("/api/v1/jobs").json()["total"] == 0
            uploads_after = sorted(p.name for p in (small_disk / "uploads").glob("*")) if (small_disk / "uploads").exists() else []
            assert uploads_after == uploads_before
            filler.unlink()
            job = submit(http)
            assert job.status_code == 202, job.text
            assert wait_for(http, job.json()["id"], lambda j: j["state"] in ("succeeded", "failed"))["state"] == "succeeded"
    finally:
        server.stop()
