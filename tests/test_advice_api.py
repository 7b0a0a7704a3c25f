"""REST: POST /api/v1/assess and POST /api/v1/jobs/{id}/troubleshoot, in process against the real app (embedded
queue, the model-free camera-preview model, so a job finishes in well under a second)."""

from __future__ import annotations

import io
import json

import pytest
from fake_llm import FakeLLM
from fastapi.testclient import TestClient
from helpers import make_photo, wait_for_job

from i2v.advisor.troubleshoot import SYMPTOMS

MODEL = "camera-preview"


def png(width: int = 320, height: int = 256) -> bytes:
    buffer = io.BytesIO()
    make_photo(width, height).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from i2v.jobs.config import ServiceSettings
    from i2v.web.app import create_app

    patch = pytest.MonkeyPatch()
    patch.setenv("I2V_MODEL", MODEL)
    app = create_app(ServiceSettings(home=tmp_path_factory.mktemp("advice-home"), max_upload_bytes=400_000), ui=False)
    with TestClient(app, base_url="http://127.0.0.1") as http:  # a Host the loopback server answers to
        http.service = app.state.service
        yield http
    patch.undo()


def assess(client, image: bytes, **form):
    return client.post("/api/v1/assess", files={"image": ("photo.png", image, "image/png")}, data=form)


def test_assess_judges_the_image_and_recommends_settings_with_reasons(client):
    answer = assess(client, png(), text="镜头向左平移", model=MODEL)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["assessment"]["source"] == "offline" and body["assessment"]["suitability"] == 5
    assert body["refined"]["tags"] == ["pan_left"]
    recommendation = body["recommendation"]
    assert recommendation["preset"] == "fast" and "no GPU" in recommendation["preset_reason"]  # the CPU here
    assert all(setting["reason"] for setting in recommendation["settings"])
    assert body["request_fields"]["resolution"] == recommendation["resolution"] == "256p"  # a 320×256 image
    assert body["advice"]["recommendation"] == {"preset": "fast", "applied": False, "fields": sorted(body["request_fields"])}
    bare = assess(client, png(200, 150)).json()
    assert "small" in {warning["code"] for warning in bare["assessment"]["warnings"]} and bare["refined"] is None


@pytest.mark.parametrize(
    ("image", "form", "status", "code", "field"),
    [
        (b"not an image at all", {}, 422, "invalid_input", "image"),
        (b"\x89PNG" + b"0" * 500_000, {}, 413, "upload_too_large", None),
        (None, {"model": "someone/else"}, 422, "model_not_allowed", "model"),
        (None, {"refiner": "gpt"}, 422, "invalid_input", "refiner"),
        (None, {"text": "x" * 2001}, 422, "invalid_input", "text"),
    ],
    ids=["not-an-image", "too-large", "model-not-offered", "unknown-refiner", "text-too-long"],
)
def test_assess_refuses_hostile_uploads_like_plan(client, image, form, status, code, field):
    answer = assess(client, png() if image is None else image, **form)
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["code"] == code and (field is None or field in {problem["field"] for problem in body["errors"]})


def test_get_on_assess_is_405_with_allow(client):
    answer = client.get("/api/v1/assess")
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"


def test_troubleshoot_proposes_and_queues_the_next_run_recorded_as_coming_from_the_job(client):
    submitted = client.post(
        "/api/v1/jobs", files={"image": ("photo.png", png(), "image/png")},
        data={"request": json.dumps({"prompt": "pan left", "num_frames": 8, "resolution": "512p", "seed": 5})},
    ).json()
    done = wait_for_job(client, submitted["id"], lambda job: job["state"] in ("succeeded", "failed"), timeout=60)
    assert done["state"] == "succeeded", done
    url = f"/api/v1/jobs/{done['id']}/troubleshoot"
    proposal = client.post(url, json={"symptom": "flicker"}).json()["proposal"]
    assert {change["field"] for change in proposal["changes"]} == {"resolution", "num_frames"}
    assert proposal["request"]["seed"] == 5 and proposal["seed"] == "same"
    answer = client.post(url, json={"symptom": "out_of_memory", "seed": "new", "queue": True})
    assert answer.status_code == 200, answer.text
    queued = answer.json()["job"]
    step = queued["request"]["advice"]["troubleshooting"][-1]
    assert (step["from_job"], step["symptom"], step["seed"]) == (done["id"], "out_of_memory", "new")
    # "new": the proposal names no seed, so the job drew its own when it was accepted (and shows it).
    assert queued["request"]["allow_degrade"] is True and isinstance(queued["request"]["seed"], int) and queued["request"]["seed"] != 5
    with FakeLLM() as server, pytest.MonkeyPatch.context() as patch:
        server.scripted["rewrite"] = json.dumps({"prompt": "The camera pans slowly and steadily to the left."})
        for name, value in (("PRESET", "openai"), ("BASE_URL", server.base_url), ("MODEL", "rewrite"), ("API_KEY", "x")):
            patch.setenv(f"I2V_LLM_{name}", value)
        rewritten = client.post(url, json={"symptom": "stiff", "llm": True}).json()["proposal"]
    assert rewritten["request"]["prompt"] == "The camera pans slowly and steadily to the left."
    finished = wait_for_job(client, queued["id"], lambda job: job["state"] in ("succeeded", "failed"), timeout=60)
    metadata = client.get(f"/api/v1/jobs/{finished['id']}/metadata").json()
    assert metadata["advice"]["troubleshooting"][-1]["from_job"] == done["id"]


def test_troubleshoot_refuses_unknown_symptoms_jobs_and_unfinished_jobs(client):
    unknown = client.post("/api/v1/jobs/0123456789abcdef/troubleshoot", json={"symptom": "flicker"})
    assert unknown.status_code == 404 and unknown.json()["code"] == "job_not_found"
    service = client.service
    upload = service.settings.subfolder("uploads") / "waiting.png"
    upload.write_bytes(png())
    waiting = service.store.create({"prompt": "waves", "model": MODEL}, str(upload))
    busy = client.post(f"/api/v1/jobs/{waiting.id}/troubleshoot", json={"symptom": "flicker"})
    assert busy.status_code == 409 and busy.json()["code"] == "job_state"
    wrong = client.post(f"/api/v1/jobs/{waiting.id}/troubleshoot", json={"symptom": "sad"})
    assert wrong.status_code == 422 and all(f"'{name}'" in wrong.json()["detail"] for name in SYMPTOMS)
    extra = client.post(f"/api/v1/jobs/{waiting.id}/troubleshoot", json={"symptom": "flicker", "sudo": True})
    assert extra.status_code == 422
    garbage = client.post(f"/api/v1/jobs/{waiting.id}/troubleshoot", content=b"\x1dnI#o", headers={"content-type": "application/json"})
    assert garbage.status_code in (400, 422) and garbage.json()["code"] in ("bad_request", "invalid_input")


@pytest.mark.parametrize(
    ("body", "headers"),
    [(b"not json", {"content-type": "application/json"}), (b"[1, 2]", {"content-type": "application/json"}), (b"", {}),
     (b"--x\r\nContent-Disposition: form-data; name=\"symptom\"\r\n\r\nflicker\r\n--x--\r\n", {"content-type": "multipart/form-data; boundary=x"})],
    ids=["not-json", "a-list", "no-body", "multipart"],
)
def test_troubleshoot_names_the_body_when_it_is_not_a_json_object_as_documented(client, body, headers):
    answer = client.post("/api/v1/jobs/0123456789abcdef/troubleshoot", content=body, headers=headers)
    assert answer.status_code == 422 and answer.json()["code"] == "invalid_input", answer.text
    assert [problem["field"] for problem in answer.json()["errors"]] == ["body"]


def test_the_documents_list_only_what_each_route_answers(client):
    paths = client.get("/openapi.json").json()["paths"]
    troubleshoot = paths["/api/v1/jobs/{job_id}/troubleshoot"]["post"]["responses"]
    assert "not JSON" not in troubleshoot["400"]["description"] and "`body`" in troubleshoot["422"]["description"]
    assessing = paths["/api/v1/assess"]["post"]
    assert "503" not in assessing["responses"] and "503" in troubleshoot  # only the route that reads jobs
    form = client.get("/openapi.json").json()["components"]["schemas"][assessing["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].split("/")[-1]]
    assert "the last `image` part" in form["properties"]["image"]["description"]
    two = client.post("/api/v1/assess", files=[("image", ("a.png", png(), "image/png")), ("image", ("b.png", png(400, 300), "image/png"))])
    assert two.json()["assessment"]["measurements"]["width"] == 400  # as documented, like /plan and /jobs


def test_refine_documents_the_answers_it_gives_to_bodies_it_cannot_take(client):
    responses = client.get("/openapi.json").json()["paths"]["/api/v1/refine"]["post"]["responses"]
    not_json = client.post("/api/v1/refine", content=b"not json", headers={"content-type": "application/json"})
    assert not_json.status_code == 422 and not_json.json()["errors"][0]["field"] == "body" and "`body`" in responses["422"]["description"]
    deep = client.post("/api/v1/refine", content=b"[" * 5000 + b"]" * 5000, headers={"content-type": "application/json"})
    assert deep.status_code == 400 and "too deeply" in responses["400"]["description"] and "not JSON" not in responses["400"]["description"]


STEP = {"symptom": "flicker", "seed": "same", "changes": []}


@pytest.mark.parametrize(
    "advice",
    [
        {"troubleshooting": [{**STEP, "changes": [{"field": "prompt", "before": "x" * 2001, "after": "y", "reason": "r"}]}]},
        {"troubleshooting": [{**STEP, "symptom": "sad"}]},
        {"troubleshooting": [{**STEP, "from_job": "../../etc/passwd"}]},
        {"troubleshooting": [{**STEP, "changes": [{"field": "Prompt; rm", "before": 1, "after": 2, "reason": "r"}]}]},
        {"assessment": {"source": "offline", "suitability": 3, "warnings": ["x" * 100]}},
        {"recommendation": {"preset": "fast", "applied": True, "fields": ["a b"]}},
        {"troubleshooting": [{**STEP, "changes": [{"field": "prompt", "before": "x" * 2000, "after": "y" * 2000, "reason": "r"}] * 8}] * 2},
    ],
    ids=["long-before", "unknown-symptom", "job-id-path", "field-not-a-name", "warning-not-a-code", "field-list-junk", "over-32k-in-all"],
)
def test_a_hostile_advice_record_is_refused_at_submit(client, advice):
    answer = client.post(
        "/api/v1/jobs", files={"image": ("photo.png", png(), "image/png")},
        data={"request": json.dumps({"prompt": "waves", "advice": advice})},
    )
    assert answer.status_code == 422 and answer.json()["code"] == "invalid_input", answer.text[:300]
    assert all(problem["field"].startswith("advice") for problem in answer.json()["errors"])
