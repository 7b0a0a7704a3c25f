"""The HTTP edge against a real `i2v serve`, probed as a web page the user visits would: cross-site posts
(CSRF), a foreign Host (DNS rebinding), framing, slow clients holding connections, guessing the token at the
login, and HEAD on the file routes. Each hostile request is refused with its one line and changes nothing; the
legitimate form of the same request still works."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from helpers import SMALL_JOB, ServerProcess, eventually, png_bytes, submit_accepted, wait_for_job
from test_hardening import assert_error_body

CORS = "https://studio.example"
ALLOWED = "i2v.internal"
EVIL = "https://evil.example"
TOKEN = "s3cret-edge"
MAX_CONNECTIONS = 16
#: Big enough that a cancel sent right after the submit finds it queued or running.
SLOW_JOB = {"prompt": "waves", "width": 256, "height": 256, "num_frames": 32, "steps": 4, "fps": 8}


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model):
    home = tmp_path_factory.mktemp("edge-home")
    env = {"GRADIO_TEMP_DIR": str(home / "gradio-cache"), "I2V_CORS_ORIGINS": CORS, "I2V_ALLOWED_HOSTS": ALLOWED,
           "I2V_MAX_CONNECTIONS": str(MAX_CONNECTIONS)}
    process = ServerProcess(home, tiny_model, env=env).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def token_server(tmp_path_factory, tiny_model):
    """Bound beyond loopback, as a token allows: any Host is accepted there (no I2V_ALLOWED_HOSTS)."""
    home = tmp_path_factory.mktemp("edge-token-home")
    env = {"I2V_API_TOKEN": TOKEN, "GRADIO_TEMP_DIR": str(home / "gradio-cache")}
    process = ServerProcess(home, tiny_model, env=env, args=("--host", "0.0.0.0"), health_headers={"Authorization": f"Bearer {TOKEN}"})
    yield process.start()
    process.stop()


def total(client) -> int:
    return client.get("/api/v1/jobs").json()["total"]


def files(folder) -> list[str]:
    return sorted(path.name for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


def finished(client, fields=SMALL_JOB) -> dict:
    return wait_for_job(client, submit_accepted(client, fields), lambda job: job["state"] not in ("queued", "running"))


# -- 3. cross-site requests ------------------------------------------------------------------------------------------


def cross_site(server) -> dict[str, dict]:
    other_local_page = f"http://127.0.0.1:{server.port + 1 if server.port < 65535 else 1}"
    return {"origin": {"Origin": EVIL}, "referer": {"Referer": f"{EVIL}/cats.html"}, "opaque": {"Origin": "null"}, "empty-origin": {"Origin": ""},
            "other-local-port": {"Origin": other_local_page}, "other-loopback-name": {"Origin": f"http://localhost:{server.port}"}}


def test_cross_site_submit_is_refused_and_stores_nothing(server, client):
    before, uploads = total(client), files(server.home / "uploads")
    for name, headers in cross_site(server).items():
        response = client.post("/api/v1/jobs", files={"image": ("p.png", png_bytes(64, 64), "image/png")},
                               data={"request": json.dumps(SMALL_JOB)}, headers=headers)
        body = assert_error_body(response, 403, "cross_site", "refused a request from the page at", "I2V_CORS_ORIGINS")
        assert "\n" not in body["detail"] and len(body["detail"]) < 200, (name, body)
    for route in ("/api/v1/plan", "/api/v1/assess"):
        form = {"image": ("p.png", png_bytes(64, 64), "image/png")}
        assert_error_body(client.post(route, files=form, data={"request": "{}"}, headers={"Origin": EVIL}), 403, "cross_site")
    assert_error_body(client.post("/api/v1/refine", content='{"text": "x"}', headers={"Origin": EVIL, "content-type": "text/plain"}),
                      403, "cross_site")
    assert total(client) == before and files(server.home / "uploads") == uploads
    # The same request from the CLI (no Origin), from the server's own page, and from a listed origin.
    own = {"Origin": server.url}
    for headers in ({}, own, {"Referer": f"{server.url}/?view=1"}, {"Origin": CORS}, {"Origin": f"http://localhost:{server.port}", "Host": f"localhost:{server.port}"}):
        response = client.post("/api/v1/jobs", files={"image": ("p.png", png_bytes(64, 64), "image/png")},
                               data={"request": json.dumps(SMALL_JOB)}, headers=headers)
        assert response.status_code == 202, (headers, response.text)
    assert total(client) == before + 5
    # Reading is not state-changing: CORS, not this rule, keeps another site from reading the answer.
    read = client.get("/api/v1/jobs", headers={"Origin": EVIL})
    assert read.status_code == 200 and "access-control-allow-origin" not in read.headers


def test_cross_site_cancel_and_delete_change_nothing(server, client):
    running = submit_accepted(client, SLOW_JOB)
    refused = client.post(f"/api/v1/jobs/{running}/cancel", data={"x": "1"}, headers={"Origin": EVIL})
    assert_error_body(refused, 403, "cross_site", "evil.example")
    assert wait_for_job(client, running, lambda job: job["state"] not in ("queued", "running"))["state"] == "succeeded"
    assert_error_body(client.delete(f"/api/v1/jobs/{running}", headers={"Referer": f"{EVIL}/x"}), 403, "cross_site")
    assert client.get(f"/api/v1/jobs/{running}/video").status_code == 200
    # From the server's own page: the cancel lands, the delete removes the job and its clip.
    cancelled = submit_accepted(client, SLOW_JOB)
    assert client.post(f"/api/v1/jobs/{cancelled}/cancel", headers={"Origin": server.url}).status_code == 202
    assert wait_for_job(client, cancelled, lambda job: job["state"] not in ("queued", "running"))["state"] in ("cancelled", "succeeded")
    assert client.delete(f"/api/v1/jobs/{running}", headers={"Origin": server.url}).status_code == 204
    assert client.get(f"/api/v1/jobs/{running}").status_code == 404
    assert not list((server.home / "outputs").glob(f"{running}.*"))


def test_cross_site_ui_calls_are_refused(server, client):
    cache = server.home / "gradio-cache"
    before, cached = total(client), files(cache)
    upload = client.post("/gradio_api/upload", files={"files": ("p.png", png_bytes(), "image/png")}, headers={"Origin": EVIL})
    assert_error_body(upload, 403, "cross_site")
    call = client.post("/gradio_api/call/refine_preview", json={"data": ["en", "猫转头", "rules"]}, headers={"Origin": EVIL})
    assert_error_body(call, 403, "cross_site")
    join = client.post("/gradio_api/queue/join", json={"data": [], "fn_index": 0, "session_hash": "x"}, headers={"Referer": f"{EVIL}/"})
    assert_error_body(join, 403, "cross_site")
    assert total(client) == before and files(cache) == cached
    own = {"Origin": server.url}
    assert client.post("/gradio_api/upload", files={"files": ("p.png", png_bytes(), "image/png")}, headers=own).status_code == 200
    started = client.post("/gradio_api/call/refine_preview", json={"data": ["en", "猫转头", "rules"]}, headers=own)
    assert started.status_code == 200 and started.json()["event_id"]


# -- 4. DNS rebinding: the Host header -------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:7860", "127.0.0.1.attacker.example", "localhost.evil",
                                  "i2v.internal.evil", "[::2]", "bad host"])
def test_foreign_host_is_refused_before_anything(server, client, host):
    before = total(client)
    for method, path in (("GET", "/api/v1/jobs"), ("GET", "/config"), ("GET", "/"), ("POST", "/api/v1/jobs")):
        response = client.request(method, path, headers={"Host": host}, **({"files": {"image": ("p.png", png_bytes(), "image/png")},
                                  "data": {"request": json.dumps(SMALL_JOB)}} if method == "POST" else {}))
        body = assert_error_body(response, 421, "host_not_allowed", "does not answer to the host", "I2V_ALLOWED_HOSTS")
        assert len(body["detail"]) < 200 and "jobs" not in response.text
    # A rebinding page is same-origin with itself, so its Origin matches its Host: the Host rule refuses it first.
    hostile = client.post("/api/v1/jobs", files={"image": ("p.png", png_bytes(), "image/png")}, data={"request": json.dumps(SMALL_JOB)},
                          headers={"Host": host, "Origin": f"http://{host}"})
    assert hostile.status_code == 421
    assert total(client) == before


def test_loopback_names_and_allowed_hosts_are_served(server, client):
    for host in (f"127.0.0.1:{server.port}", "127.0.0.1", f"localhost:{server.port}", "LOCALHOST:1", f"[::1]:{server.port}",
                 "localhost.", ALLOWED, f"{ALLOWED}:8443"):
        assert client.get("/api/v1/jobs", headers={"Host": host}).status_code == 200, host
    config = client.get("/config", headers={"Host": f"{ALLOWED}:8443"})
    assert config.status_code == 200 and "attacker" not in config.text
    # Own origin is judged against the allowed Host: a page served as i2v.internal may post to it.
    own = {"Host": f"{ALLOWED}:8443", "Origin": f"http://{ALLOWED}:8443"}
    response = client.post("/api/v1/jobs", files={"image": ("p.png", png_bytes(64, 64), "image/png")},
                           data={"request": json.dumps(SMALL_JOB)}, headers=own)
    assert response.status_code == 202, response.text
    # Behind a TLS proxy the page is https on 443 and the Host carries no port.
    proxied = client.post("/api/v1/jobs/nope/cancel", headers={"Host": ALLOWED, "Origin": f"https://{ALLOWED}"})
    assert_error_body(proxied, 404, "job_not_found")


def test_a_token_server_beyond_loopback_accepts_any_host(token_server):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=token_server.url, timeout=30) as http:
        assert http.get("/api/v1/jobs", headers={**auth, "Host": "gpu-box.lan:7860"}).status_code == 200
        assert_error_body(http.get("/api/v1/jobs", headers={"Host": "gpu-box.lan:7860"}), 401, "unauthorized")
        # Cross-site posts are refused there too, token or not.
        refused = http.post("/api/v1/jobs/nope/cancel", headers={**auth, "Host": "gpu-box.lan:7860", "Origin": EVIL})
        assert_error_body(refused, 403, "cross_site")
        own = http.post("/api/v1/jobs/nope/cancel", headers={**auth, "Host": "gpu-box.lan:7860", "Origin": "http://gpu-box.lan:7860"})
        assert_error_body(own, 404, "job_not_found")


def test_allowed_hosts_narrow_a_non_loopback_bind(tmp_path):
    """In process: the rule set for `--host 0.0.0.0` with I2V_ALLOWED_HOSTS (loopback names, the listed ones)."""
    from fastapi.testclient import TestClient

    from i2v.jobs.config import ServiceSettings
    from i2v.web.app import create_app

    settings = ServiceSettings(home=tmp_path, api_token=TOKEN, allowed_hosts="gpu-box.lan")
    with TestClient(create_app(settings, ui=False, bind="0.0.0.0"), base_url="http://gpu-box.lan") as http:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert http.get("/api/v1/jobs", headers=auth).status_code == 200
        assert http.get("/api/v1/jobs", headers={**auth, "Host": "localhost:7860"}).status_code == 200
        assert_error_body(http.get("/api/v1/jobs", headers={**auth, "Host": "other.lan"}), 421, "host_not_allowed", "I2V_ALLOWED_HOSTS")


# -- 7. security headers ---------------------------------------------------------------------------------------------


def test_every_answer_carries_the_security_headers(server, client):
    clip = finished(client)
    outputs = server.home / "outputs"
    answers = {
        "ui": client.get("/"), "config": client.get("/config"), "api": client.get("/api/v1/health"), "docs": client.get("/docs"),
        "404": client.get("/api/v1/nope"), "clip": client.get(f"/api/v1/jobs/{clip['id']}/video"),
        "ui-file": client.get(f"/gradio_api/file={outputs / (clip['id'] + '.mp4')}"),
        "host-refusal": client.get("/", headers={"Host": "attacker.example"}),
        "origin-refusal": client.post("/api/v1/jobs", headers={"Origin": EVIL}),
    }
    for name, response in answers.items():
        assert response.status_code < 500, (name, response.status_code)
        assert response.headers.get("x-frame-options") == "DENY", name
        assert response.headers.get("content-security-policy") == "frame-ancestors 'none'", name
        assert response.headers.get("x-content-type-options") == "nosniff", name
        assert response.headers.get("referrer-policy") == "same-origin", name
        assert len(response.headers.get_list("x-frame-options")) == 1, name


# -- 10. slow clients ------------------------------------------------------------------------------------------------


def test_half_sent_requests_cannot_hold_more_than_the_connection_limit(server, client):
    before = total(client)
    held = []
    try:
        for _ in range(MAX_CONNECTIONS + 4):
            connection = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            connection.sendall(b"POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n")
            held.append(connection)
        with httpx.Client(base_url=server.url, timeout=10) as fresh:
            refused = eventually(lambda: (answer := fresh.get("/api/v1/health")).status_code == 503 and answer)
            assert "Service Unavailable" in refused.text
    finally:
        for connection in held:
            connection.close()
    with httpx.Client(base_url=server.url, timeout=10) as fresh:
        assert eventually(lambda: fresh.get("/api/v1/health").status_code == 200)
    assert total(client) == before


# -- 11. guessing the token ------------------------------------------------------------------------------------------


def from_address(address: str) -> dict:
    """uvicorn takes the client address from X-Forwarded-For when the peer is a local proxy (127.0.0.1)."""
    return {"X-Forwarded-For": address}


def test_wrong_logins_are_rate_limited_per_address(token_server):
    with httpx.Client(base_url=token_server.url, timeout=30) as http:
        guesser = from_address("203.0.113.7")
        for attempt in range(5):
            wrong = http.post("/login", data={"username": "me", "password": f"guess{attempt}"}, headers=guesser)
            assert wrong.status_code == 400, wrong.text
        for password in ("guess5", TOKEN):  # locked out: even the right password is not tried
            locked = http.post("/login", data={"username": "me", "password": password}, headers=guesser)
            body = assert_error_body(locked, 429, "too_many_attempts", "too many wrong tokens", "try again in")
            assert 1 <= int(locked.headers["retry-after"]) <= 60 and f"in {locked.headers['retry-after']} s" in body["detail"]
            assert "set-cookie" not in locked.headers
        assert_error_body(http.get("/api/v1/jobs", headers={**guesser, "Authorization": f"Bearer {TOKEN}"}), 429, "too_many_attempts")
        # Another address is not locked out, logs in, and gets cookies that stay home on cross-site requests.
        user = from_address("203.0.113.8")
        login = http.post("/login", data={"username": "me", "password": TOKEN}, headers=user)
        assert login.status_code == 200, login.text
        cookies = login.headers.get_list("set-cookie")
        assert cookies and all("samesite=lax" in cookie.lower() for cookie in cookies), cookies
        assert http.get("/api/v1/jobs", headers={**user, "Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_wrong_bearer_tokens_are_rate_limited_too(token_server):
    with httpx.Client(base_url=token_server.url, timeout=30) as http:
        guesser = from_address("203.0.113.9")
        for attempt in range(5):
            assert_error_body(http.get("/api/v1/jobs", headers={**guesser, "Authorization": f"Bearer guess{attempt}"}), 401, "unauthorized")
        locked = http.post("/api/v1/jobs/x/cancel", headers={**guesser, "Authorization": f"Bearer {TOKEN}"})
        assert_error_body(locked, 429, "too_many_attempts")
        assert int(locked.headers["retry-after"]) >= 1
        # No credentials at all is not a guess: a page without the token still gets its 401.
        assert_error_body(http.get("/api/v1/jobs", headers=guesser), 401, "unauthorized")


# -- 12. HEAD on the file routes -------------------------------------------------------------------------------------


def test_head_on_the_file_routes(server, client):
    clip = finished(client)
    for what in ("video", "thumbnail", "image"):
        got = client.get(f"/api/v1/jobs/{clip['id']}/{what}")
        head = client.head(f"/api/v1/jobs/{clip['id']}/{what}")
        assert head.status_code == 200 and head.content == b"", what
        assert head.headers["content-length"] == str(len(got.content)) and head.headers["content-type"] == got.headers["content-type"]
    assert client.head("/api/v1/jobs/nope/video").status_code == 404
    ui_file = f"/gradio_api/file={server.home / 'outputs' / (clip['id'] + '.mp4')}"
    head = client.head(ui_file)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(client.get(ui_file).content))
    assert client.head("/gradio_api/file=/etc/passwd").status_code == 403
    assert set(client.get("/openapi.json").json()["paths"]["/api/v1/jobs/{job_id}/video"]) == {"get"}  # the contract is unchanged


def test_head_needs_the_token_where_get_does(token_server):
    with httpx.Client(base_url=token_server.url, timeout=30) as http:
        assert http.head("/api/v1/jobs/nope/video").status_code == 401
        assert http.head("/api/v1/jobs/nope/video", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
