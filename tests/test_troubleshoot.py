"""The troubleshooter: each symptom row proposes a next request the model accepts, with one reason per change,
keeps or redraws the seed as the row says, and records the chain it came from."""

from __future__ import annotations

import json

import pytest
from fake_llm import FakeLLM

from i2v.advice_record import SYMPTOM_NAMES
from i2v.advisor.troubleshoot import SYMPTOMS, propose
from i2v.errors import InvalidInputError
from i2v.models.registry import spec_for
from i2v.refine.llm import LLMSettings
from i2v.request import GenerationRequest

I2VGENXL = "ali-vilab/i2vgen-xl"
WAN = "wan2.2-ti2v-5b"
PREVIEW = "camera-preview"
PROMPT = "a cat turning its head. The sun shines."
RUN = GenerationRequest(image="cat.jpg", prompt=PROMPT, model=I2VGENXL, seed=42)
STIFF, VISIBLE = f"{PROMPT[:-1]}, smooth, continuous, natural motion", f"{PROMPT[:-1]}, clearly visible, pronounced motion"
STATIC, KEEPS = f"{PROMPT[:-1]}, static camera, fixed shot", f"{PROMPT[:-1]}, the subject keeps its appearance"
LEAD = "a cat turning its head, clearly visible"

#: Model -> symptom -> {field: value after} for RUN's prompt at each model's defaults. Guidance and steps move
#: relative to the model's own default (I2VGen-XL 9 -> 11, Wan 2.2 5 -> 6; 50 -> 60 steps); a model without a
#: setting gets no change to it (camera-preview: no guidance, steps or negative prompt).
EXPECTED = {
    I2VGENXL: {
        "stiff": {"guidance_scale": 11.0, "steps": 60, "prompt": STIFF},
        "flicker": {"resolution": "256p", "num_frames": 12},
        "prompt_ignored": {"guidance_scale": 11.0, "prompt": LEAD},
        "wrong_camera": {"prompt": STATIC, "guidance_scale": 10.0},
        "too_slow": {"steps": 25, "scheduler": "dpmpp", "resolution": "256p"},
        "subject_changed": {"motion_fps": 8, "prompt": KEEPS},
        "out_of_memory": {"resolution": "256p", "num_frames": 12, "allow_degrade": True},
        "too_little_motion": {"guidance_scale": 11.0, "prompt": VISIBLE},
        "blurry": {"steps": 60, "resolution": "768p"},
    },
    WAN: {
        "stiff": {"guidance_scale": 6.0, "steps": 60, "prompt": STIFF},
        "flicker": {"resolution": "480p", "num_frames": 89},
        "prompt_ignored": {"guidance_scale": 6.0, "prompt": LEAD},
        "wrong_camera": {"prompt": STATIC, "guidance_scale": 5.5},
        "too_slow": {"steps": 30, "resolution": "480p", "cache": "first-block"},
        "subject_changed": {"prompt": KEEPS},
        "out_of_memory": {"resolution": "480p", "num_frames": 89, "allow_degrade": True},
        "too_little_motion": {"guidance_scale": 6.0, "prompt": VISIBLE},
        "blurry": {"steps": 60},
    },
    PREVIEW: {
        "stiff": {"prompt": STIFF},
        "flicker": {"resolution": "256p", "num_frames": 12},
        "prompt_ignored": {"prompt": LEAD},
        "wrong_camera": {"prompt": STATIC},
        "too_slow": {"resolution": "256p"},
        "subject_changed": {"prompt": KEEPS},
        "out_of_memory": {"resolution": "256p", "num_frames": 12, "allow_degrade": True},
        "too_little_motion": {"prompt": VISIBLE},
        "blurry": {"resolution": "768p"},
    },
}


def test_every_row_is_tested_for_every_model():
    assert all(set(rows) == set(SYMPTOMS) for rows in EXPECTED.values())


def test_the_advice_record_knows_each_symptom_of_the_table():
    """A request's troubleshooting step is validated against the record's names (on the ground floor, below the
    advisor): they are the table's rows, in its order, so a new row cannot be refused by the records."""
    assert SYMPTOM_NAMES == tuple(SYMPTOMS)


@pytest.mark.parametrize(("model", "symptom"), [(model, symptom) for model in EXPECTED for symptom in SYMPTOMS])
def test_each_row_proposes_a_request_the_model_accepts(model, symptom):
    proposal = propose(RUN.model_copy(update={"model": model}), symptom, from_job="abc123")
    changed = {change.field: change.after for change in proposal.changes if change.field != "negative_prompt"}
    assert changed == EXPECTED[model][symptom]  # exactly these: nothing a model lacks, nothing another model's number
    assert all(change.reason and change.before != change.after for change in proposal.changes)
    spec = spec_for(model)
    proposed = GenerationRequest(image="cat.jpg", **proposal.request)
    request = spec.resolve(proposed, (1280, 704)).as_request(proposed)
    for field, value in EXPECTED[model][symptom].items():
        assert getattr(request, field) == value
    if spec.guidance is not None and "guidance_scale" in changed:
        assert spec.guidance.default < changed["guidance_scale"] <= spec.guidance.default * 1.25
    row = SYMPTOMS[symptom]
    assert proposal.seed == row.seed and (request.seed == 42) == (row.seed == "same")
    step = request.advice.troubleshooting[-1]
    assert (step.from_job, step.symptom, step.seed) == ("abc123", symptom, row.seed) and step.changes == proposal.changes


def test_a_camera_move_named_in_chinese_is_kept():
    proposal = propose(GenerationRequest(image="x.png", prompt="镜头向左平移，猫转头", model=I2VGENXL), "wrong_camera")
    assert {change.field for change in proposal.changes} == {"guidance_scale"}  # no "static camera", no "pan" forbidden
    assert any("already names a camera move" in note for note in proposal.notes)


def test_a_specific_prompt_keeps_the_subjects_action():
    prompt = "A cat sits by the window. It slowly turns its head to the left. The curtains are blue."
    proposal = propose(GenerationRequest(image="x.png", prompt=prompt, model=I2VGENXL), "prompt_ignored")
    assert proposal.request["prompt"] == "A cat sits by the window. It slowly turns its head to the left, clearly visible"


def test_an_unknown_model_is_named_not_sent_to_the_default_models_download():
    with pytest.raises(InvalidInputError, match="'nope-model' is unknown here") as raised:
        propose({"request": {"prompt": "a cat", "model": "nope-model"}}, "flicker")
    assert "models pull" not in str(raised.value) and raised.value.field == "model"


def test_negative_prompt_rows_add_their_terms_once():
    flicker = propose(RUN, "flicker")
    negative = flicker.request["negative_prompt"]
    assert negative.endswith("flicker, jitter, flashing") and negative.startswith(spec_for(I2VGENXL).negative_prompt)
    again = propose({"request": flicker.request, "seed": 42}, "flicker")
    assert "negative_prompt" not in {change.field for change in again.changes}
    camera = propose(GenerationRequest(image="x.png", prompt="pan left over the sea", model=I2VGENXL), "wrong_camera")
    assert {change.field for change in camera.changes} == {"guidance_scale"}  # the user asked for a pan: keep it
    assert any("already names a camera move" in note for note in camera.notes)


def test_the_chain_grows_and_a_clips_metadata_is_a_valid_origin():
    first = propose(RUN, "stiff", from_job="job1")
    metadata = {"request": {**first.request, "image": "/data/uploads/job2.png"}, "seed": 42}
    second = propose(metadata, "flicker", from_clip="cat-42.json", seed="new")
    chain = second.request["advice"]["troubleshooting"]
    assert [(s["from_job"], s["from_clip"], s["symptom"]) for s in chain] == [("job1", None, "stiff"), (None, "cat-42.json", "flicker")]
    assert "seed" not in second.request and second.seed == "new" and "image" not in second.request
    assert second.request["steps"] == 60  # what the first proposal changed is kept


def test_bounds_and_models_without_a_setting_are_noted_not_broken():
    top = GenerationRequest(image="x.png", prompt="a cat", model=I2VGENXL, guidance_scale=20.0, steps=100, resolution="256p")
    proposal = propose(top, "stiff")
    assert {change.field for change in proposal.changes} == {"prompt"}
    assert any("guidance is already 20" in note for note in proposal.notes)
    assert any("smallest preset" in note for note in propose(top, "out_of_memory").notes)
    preview = propose(GenerationRequest(image="x.png", prompt="waves", model="camera-preview"), "stiff")
    assert {change.field for change in preview.changes} == {"prompt"}
    assert any("takes no guidance" in note for note in preview.notes)
    assert any("seed is not known" in note for note in preview.notes)


def test_blurry_does_not_size_up_past_what_the_image_can_fill():
    proposal = propose(RUN, "blurry", image_size=(451, 300))
    assert "resolution" not in {change.field for change in proposal.changes}
    assert any("too few pixels for 768p" in note for note in proposal.notes)


def test_an_unknown_symptom_names_the_valid_ones():
    with pytest.raises(InvalidInputError, match="symptom must be one of stiff, flicker, .*blurry, got 'sad'"):
        propose(RUN, "sad")


def test_the_llm_may_rewrite_the_prompt_and_falls_back_with_a_note():
    with FakeLLM() as server:
        server.scripted["rewrite"] = json.dumps({"prompt": "A tabby cat slowly turns its head to the right, smooth and continuous."})
        settings = LLMSettings(preset="openai", base_url=server.base_url, model="rewrite", api_key="x", timeout=2)
        proposal = propose(RUN, "stiff", llm=settings)
        prompt = [change for change in proposal.changes if change.field == "prompt"]
        assert prompt[0].after.startswith("A tabby cat slowly") and "rewritten by the LLM" in prompt[0].reason
        assert "stiff or jerky" in server.requests[-1]["messages"][0]["content"]
        failed = propose(RUN, "stiff", llm=settings.model_copy(update={"model": "badjson"}))
        assert failed.request["prompt"].endswith("smooth, continuous, natural motion")
        assert any("LLM prompt rewrite not used: the reply was not valid JSON" in note for note in failed.notes)


def test_the_clip_metadata_records_assessment_recommendation_and_chain(tmp_path):
    from helpers import make_photo

    from i2v.generation import generate

    image = tmp_path / "photo.png"
    make_photo(320, 256).save(image)
    plain = generate(GenerationRequest(image=image, prompt="pan left", model="camera-preview", num_frames=4, resolution="256p"))
    advice = plain.metadata["advice"]
    assert advice["assessment"]["source"] == "offline" and advice["recommendation_applied"] is False
    assert advice["troubleshooting"] == []
    proposal = propose(GenerationRequest(image=image, prompt="pan left", model="camera-preview", num_frames=8, resolution="512p"),
                       "flicker", from_job="job1")
    next_run = generate(GenerationRequest(image=image, **proposal.request))
    chain = next_run.metadata["advice"]["troubleshooting"]
    assert chain[0]["from_job"] == "job1" and chain[0]["symptom"] == "flicker"
    assert {change["field"] for change in chain[0]["changes"]} == {"resolution", "num_frames"}
    assert next_run.metadata["request"]["advice"]["troubleshooting"] == chain
