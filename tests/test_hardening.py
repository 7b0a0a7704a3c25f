"""A hostile client against a real `i2v serve` over HTTP: the Gradio UI's file inputs, hostile sizes and shapes,
models by name, body limits, error bodies, server paths, the token, CORS and a full disk."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from helpers import SMALL_JOB, ServerProcess, submit_job as submit, wait_for_job as wait_for
from helpers import png_bomb, png_bytes as png
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


def last_data(stream: str):
    """The payload of a call's last event (its outputs, or its error and title)."""
    return json.loads([line for line in stream.splitlines() if line.startswith("data: ")][-1].removeprefix("data: "))


def file_data(path) -> dict:
    return {"path": str(path), "meta": {"_type": "gradio.FileData"}}


def ui_inputs(fn: str, image: dict, model: str, **changes) -> list:
    """The page's inputs for `fn`: its language first, then (for submit) the advisor's record, then the form by name
    (`changes` set fields) in the order the page passes it."""
    from i2v.web.ui_actions import FORM_FIELDS

    form = dict(image=image, prompt="猫转头", refined="", negative_prompt="", resolution="512p", num_frames=8, fps=8, steps=3,
                guidance_scale=9.0, seed=1, model=model, scheduler="ddim", cache=None, refiner="rules", allow_degrade=True)
    values = [{**form, **changes}[name] for name in FORM_FIELDS]
    return ["en", None, *values] if fn == "submit" else ["en", *values]


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
            started = http.post(f"/gradio_api/call/{fn}", json={"data": ui_inputs(fn, file_data(path), str(target.model))})
            assert_error_body(started, 422, "invalid_input", "files must be uploaded through the UI first")
            assert str(path) not in started.text and str(target.home) not in started.text, started.text
        assert http.get("/api/v1/jobs", headers=headers).json()["total"] == jobs_before
    cached = [p.name for p in (target.home / "gradio-cache").rglob("*") if p.is_file()]
    assert not {"passwd", "secret.png", "i2v.sqlite"} & set(cached) and not any(finished_job["id"] in name for name in cached)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x.png", "https://example.com/cat.png", "HTTP://169.254.169.254/latest"])
def test_ui_refuses_files_named_by_url_without_fetching_them(client, url):
    started = client.post("/gradio_api/call/plan_preview", json={"data": ui_inputs("plan_preview", file_data(url), "")})
    assert_error_body(started, 422, "invalid_input", "not named by URL")


def test_ui_refuses_images_inlined_as_data_urls(client):
    """Gradio decodes a data: URL itself, whatever its size, before any check of ours."""
    import base64

    inline = {**file_data("bomb.png"), "url": "data:image/png;base64," + base64.b64encode(png_bomb(3000, 3000)).decode()}
    started = client.post("/gradio_api/call/check_image", json={"data": ["en", inline, ""]})
    assert_error_body(started, 422, "invalid_input", "not named by URL")


def test_ui_refine_has_the_prompt_limit(client, server):
    event, stream = gradio_call(client, "refine_preview", ["en", "猫" * 2001, "rules", server.model.name])
    assert event == "error" and "the limit is 2000" in stream and len(stream) < 1000


def test_ui_accepts_what_the_client_uploaded(client, server):
    uploaded = client.post("/gradio_api/upload", files={"files": ("cat.png", png(), "image/png")})
    assert uploaded.status_code == 200, uploaded.text
    # The page names a local model by its folder's name, never its path.
    event, stream = gradio_call(client, "plan_preview", ui_inputs("plan_preview", file_data(uploaded.json()[0]), server.model.name))
    assert event == "complete" and "Memory plan" in stream, stream


def test_ui_preview_camera_runs_the_same_job_on_camera_preview(client, server):
    uploaded = client.post("/gradio_api/upload", files={"files": ("cat.png", png(), "image/png")}).json()[0]
    inputs = ui_inputs("preview_camera", file_data(uploaded), server.model.name, prompt="镜头向左平移")  # the button overrides the model
    event, stream = gradio_call(client, "preview_camera", inputs)
    assert event == "complete", stream
    newest = client.get("/api/v1/jobs").json()["jobs"][0]["id"]  # the call queues the job; the page then follows it
    job = wait_for(client, newest, lambda j: j["state"] not in ("queued", "running"))
    assert job["request"]["model"] == "camera-preview" and job["state"] == "succeeded", job
    assert job["refined_prompt"]["tags"] == ["pan_left"]
    # The form's size, length and rate carried over (8 frames at 8 fps, 512p); its steps, guidance and
    # scheduler, which a preview does not take, left behind.
    settings = {key: job["request"].get(key) for key in ("resolution", "num_frames", "fps", "steps", "guidance_scale", "scheduler")}
    assert settings == {"resolution": "512p", "num_frames": 8, "fps": 8, "steps": None, "guidance_scale": None, "scheduler": None}


@pytest.mark.parametrize("fn", ["check_image", "plan_preview", "submit", "preview_camera"])
def test_ui_refuses_an_oversized_image_as_the_api_does(client, server, fn):
    """A 164 KB grayscale PNG of 13000×13000: refused from its header like the REST routes refuse it, with the same
    words (bench/ui_oversize.py measures that Gradio no longer decodes it first)."""
    bomb = png_bomb()
    api = assert_error_body(submit(client, image=bomb), 422, "invalid_input")["detail"]
    uploaded = client.post("/gradio_api/upload", files={"files": ("bomb.png", bomb, "image/png")}).json()[0]
    jobs_before = client.get("/api/v1/jobs").json()["total"]
    inputs = ["en", file_data(uploaded), server.model.name] if fn == "check_image" else ui_inputs(fn, file_data(uploaded), server.model.name)
    event, stream = gradio_call(client, fn, inputs)
    message = last_data(stream)["error"]
    assert event == "error" and "13000×13000 = 169 megapixels, over the 50 MP limit" in message, stream
    assert message == f"This image cannot be used: {api}" and "Traceback" not in stream and len(stream) < 1000, stream
    assert client.get("/api/v1/jobs").json()["total"] == jobs_before


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
        assert client.get(f"/gradio_api/file={path}").status_code == 403, path
    assert client.get(f"/gradio_api/file={outputs / (finished_job['id'] + '.mp4')}").status_code == 200
    assert client.get(f"/gradio_api/file={outputs / (finished_job['id'] + '.jpg')}").status_code == 200


def gradio_routes(tmp_path, monkeypatch):
    """The mounted app's route table as the installed Gradio builds it, and i2v's whole app."""
    import gradio as gr

    from i2v.jobs.config import ServiceSettings
    from i2v.web.app import create_app
    from i2v.web.security import route_table

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setenv("I2V_MODEL", "camera-preview")
    app = create_app(ServiceSettings(home=tmp_path))
    mounted = next(route.app for route in app.routes if isinstance(getattr(route, "app", None), gr.routes.App))
    return app, mounted, route_table(mounted)


def test_every_gradio_route_is_read_and_either_allowed_or_refused(tmp_path, monkeypatch):
    """A Gradio upgrade that adds a route (a new spelling of a file route, say) fails here until someone has read
    it and listed it; until then the guard refuses it."""
    from i2v.web.security import ALLOWED_ROUTES, REFUSED_ROUTES, SERVABLE_ROUTE

    _, _, table = gradio_routes(tmp_path, monkeypatch)
    listed = set().union(*ALLOWED_ROUTES.values()) | set(REFUSED_ROUTES) | {SERVABLE_ROUTE}
    templates = {template for template, _, _ in table}
    shadowed = {"/openapi.json"}  # FastAPI's own schema route of the Gradio app: i2v's token-guarded one answers first
    unread = sorted(templates - listed - shadowed)
    assert not unread, f"Gradio routes i2v has not classified (add each to ALLOWED_ROUTES or REFUSED_ROUTES): {unread}"
    assert len(templates) > 50 and SERVABLE_ROUTE in templates, sorted(templates)  # the walk saw Gradio's whole table
    file_like = {t for t in templates if re.search(r"file|proxy|asset|stream|path|record|component", t, re.I)}
    allowed = set().union(*ALLOWED_ROUTES.values())
    assert file_like & allowed <= ALLOWED_ROUTES["gradio's own frontend files"] | {"/gradio_api/upload_progress"}, file_like & allowed


def test_a_route_a_gradio_upgrade_adds_is_refused_until_listed(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    app, mounted, _ = gradio_routes(tmp_path, monkeypatch)
    secret = tmp_path / "secret.txt"
    secret.write_text("server secret")
    mounted.add_api_route("/gradio_api/file_v2/{path:path}", lambda path: Path(path).read_text())  # a new spelling
    with TestClient(app, base_url="http://127.0.0.1") as http:
        response = http.get(f"/gradio_api/file_v2/{secret}")
    assert_error_body(response, 403, "forbidden", "the UI serves only")


def concrete(template: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, template)


def test_refused_gradio_routes_answer_403_with_one_line(server, client):
    from i2v.web.security import REFUSED_ROUTES

    for template in REFUSED_ROUTES:
        for method in ("GET", "POST"):
            response = client.request(method, concrete(template, "x"), json={"data": []})
            assert_error_body(response, 403, "forbidden", "the UI serves only")


def test_hostile_spellings_of_the_file_routes_get_nothing(server, finished_job):
    """As an attacker sends them, byte for byte (httpx would tidy `..` and `//` away): double slashes,
    percent-encoding, `..`, remote URLs (a listener counts whether the server fetched them) and the metadata."""
    import http.server
    import threading
    from urllib.parse import quote

    fetched = []

    class Listener(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            fetched.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"relayed")

        def log_message(self, *args):
            pass

    listener = http.server.HTTPServer(("127.0.0.1", 0), Listener)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    remote = f"http://127.0.0.1:{listener.server_port}/x.png"
    home, outputs, job = str(server.home), server.home / "outputs", finished_job["id"]
    metadata = f"{outputs}/{job}.json"
    spellings = [
        f"/gradio_api/file//{metadata}", f"/gradio_api/file/{metadata}", f"/gradio_api/file/{quote(metadata, safe='')}",
        f"/gradio_api/file={metadata}", f"/gradio_api/file={quote(metadata, safe='')}", f"/gradio_api/file=/{metadata}",
        f"/gradio_api/file={outputs}/../i2v.sqlite", f"/gradio_api/file={outputs}/%2e%2e/i2v.sqlite",
        f"/gradio_api/file={home}/gradio-cache/../i2v.sqlite", f"/gradio_api/file={outputs}/{job}.mp4/../{job}.json",
        f"/gradio_api/file/{outputs}/{job}.mp4", f"/gradio_api/file={remote}", f"/gradio_api/file/{remote}",
        f"/gradio_api/file={quote(remote, safe='')}", f"/gradio_api/file=//127.0.0.1:{listener.server_port}/x.png",
        f"/gradio_api/proxy={remote}", f"//gradio_api/file={metadata}", f"/gradio_api//file={metadata}",
        f"/gradio_api%2Ffile={metadata}", f"/gradio_api/file%3D{metadata}", f"/static/../../../..{metadata}",
        f"/assets/%2e%2e/%2e%2e/%2e%2e/%2e%2e{metadata}", "/gradio_api/file=/etc/passwd",
    ]
    try:
        for spelling in spellings:
            for method in (b"GET", b"HEAD"):
                head = method + b" " + spelling.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                status, body = raw_request(server, head)
                assert status in (403, 404, 405), (spelling, method, status, body[:200])
                assert home.encode() not in body and b"relayed" not in body and b'"request"' not in body, (spelling, body[:300])
        assert fetched == [], fetched
    finally:
        listener.shutdown()
    # The clip itself still plays.
    status, body = raw_request(server, f"GET /gradio_api/file={outputs}/{job}.mp4 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    assert status == 200 and len(body) > 1000


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
    assert client.get("/api/v1/health").json()["model_loaded"] == server.model.name  # by name: no server path
    job = submit(client, {**SMALL, "model": str(broken_model)})
    assert job.status_code == 202, job.text
    failed = wait_for(client, job.json()["id"], lambda j: j["state"] in ("failed", "succeeded"))
    assert failed["state"] == "failed" and failed["error"]
    assert client.get("/api/v1/health").json()["model_loaded"] == server.model.name
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


def test_health_and_the_workers_panel_name_models_not_folders(client, server, finished_job):
    health = client.get("/api/v1/health").json()
    assert health["model_loaded"] == server.model.name and str(server.home) not in json.dumps(health), health
    assert str(server.model.parent) not in json.dumps(health)
    for lang in ("en", "zh-CN"):
        event, stream = gradio_call(client, "workers", [lang])
        panel = last_data(stream)[0]
        assert event == "complete" and server.model.name in panel and str(server.model.parent) not in panel, panel


HOSTILE_VALUES = {  # what a crafted call sends in place of what the page offers, by form field
    "frames NaN": {"num_frames": float("nan")}, "frames infinite": {"num_frames": float("inf")}, "frames text": {"num_frames": "many"},
    "fps a list": {"fps": [1]}, "steps a dict": {"steps": {"a": 1}}, "guidance text": {"guidance_scale": "<"},
    "seed text": {"seed": "x"}, "seed NaN": {"seed": float("nan")}, "resolution a number": {"resolution": 5},
}


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_ui_answers_hostile_values_with_its_own_line(client, server, lang):
    """No Python exception's text ("cannot convert float NaN to integer", "'<' not supported between …"), no
    traceback, no server path: the page's own line in its language, or Gradio's own refusal of the input (bare, or
    its range check's "Value … is greater than maximum value …")."""
    from i2v.web.ui_text import lang_of, tr

    uploaded = client.post("/gradio_api/upload", files={"files": ("cat.png", png(), "image/png")}).json()[0]
    jobs_before = client.get("/api/v1/jobs").json()["total"]
    for name, changes in HOSTILE_VALUES.items():
        for fn in ("submit", "preview_camera", "plan_preview"):
            inputs = ui_inputs(fn, file_data(uploaded), server.model.name, **changes)
            inputs[0] = lang
            started = client.post(f"/gradio_api/call/{fn}", content=json.dumps({"data": inputs}), headers={"content-type": "application/json"})
            stream = client.get(f"/gradio_api/call/{fn}/{started.json()['event_id']}", timeout=60).text
            error = last_data(stream).get("error") if "event: error" in stream else stream
            gradios_own = isinstance(error, str) and error.startswith(("Value ", "Value:"))  # its range and choice checks
            assert error in (None, tr(lang_of(lang), "err.server")) or gradios_own, (name, fn, stream)
            assert not re.search(r"NaN to integer|not supported between|invalid literal|Original error|has no attribute", stream), stream
            assert str(server.home) not in stream and "Traceback" not in stream, (name, stream)
    assert client.get("/api/v1/jobs").json()["total"] == jobs_before


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
            assert http.post(f"/gradio_api/call/{fn}", json={"data": ui_inputs(fn, None, "")}).status_code == 401
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
