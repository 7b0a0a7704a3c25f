import re

import pytest
from pydantic import ValidationError

from i2v.errors import InvalidInputError
from i2v.models.camera_preview.spec import SPEC as CAMERA_PREVIEW
from i2v.models.i2vgenxl.spec import NEGATIVE_PROMPT
from i2v.models.i2vgenxl.spec import SPEC as I2VGENXL
from i2v.models.registry import DEFAULT_MODEL, spec_for
from i2v.models.spec import FrameRule
from i2v.request import GenerationRequest, describe_validation_error

XL = "ali-vilab/i2vgen-xl"
PREVIEW = "camera-preview"
#: How the model's messages name it: by its label (a local folder's path is never echoed).
XL_LABEL = I2VGENXL.label
PREVIEW_LABEL = CAMERA_PREVIEW.label
#: Every field whose value, when left out, is the model's own.
MODEL_FIELDS = ("negative_prompt", "resolution", "num_frames", "fps", "motion_fps", "steps", "guidance_scale", "scheduler")


def make(**fields):
    return GenerationRequest(image="photo.png", prompt="a cat turning its head", **fields)


#: The image a request is resolved for where its size does not matter.
IMAGE = (1280, 704)


def size_of(spec, request, image_size) -> tuple[int, int]:
    """(width, height) the spec resolves `request` to on an image of `image_size`."""
    plan = spec.resolve(request, image_size)
    return plan.width, plan.height


def error_for(**fields) -> str:
    """The request's own (model-neutral) validation error."""
    with pytest.raises(ValidationError) as info:
        make(**fields)
    return describe_validation_error(info.value)


def refused(spec, **fields) -> InvalidInputError:
    """The error `spec.check` (and so `spec.resolve`) raises for a request the model cannot take."""
    request = make(**fields)
    with pytest.raises(InvalidInputError) as info:
        spec.check(request)
    with pytest.raises(InvalidInputError) as resolving:
        spec.resolve(request, IMAGE)
    assert resolving.value.problems == info.value.problems
    error = info.value
    assert str(error) == "; ".join(f"{field}: {message}" for field, message in error.problems)
    return error


def spec_error_for(spec=I2VGENXL, **fields) -> str:
    return str(refused(spec, **fields))


def test_the_specs_are_the_registered_ones():
    assert spec_for(XL) is I2VGENXL and spec_for(PREVIEW) is CAMERA_PREVIEW
    assert DEFAULT_MODEL == XL


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_frames", 7, f"must be between 8 and 32 for {XL_LABEL} (nearest: 8), got 7"),
        ("num_frames", 33, f"must be between 8 and 32 for {XL_LABEL} (nearest: 32), got 33"),
        ("fps", 3, f"must be between 4 and 30 for {XL_LABEL}, got 3"),
        ("fps", 31, f"must be between 4 and 30 for {XL_LABEL}, got 31"),
        ("steps", 101, f"must be between 1 and 100 for {XL_LABEL}, got 101"),
        ("guidance_scale", 0.5, f"must be between 1 and 20 for {XL_LABEL}, got 0.5"),
        ("guidance_scale", 20.5, f"must be between 1 and 20 for {XL_LABEL}, got 20.5"),
        ("motion_fps", 3, f"must be between 4 and 30 for {XL_LABEL}, got 3"),
        ("motion_fps", 40, f"must be between 4 and 30 for {XL_LABEL}, got 40"),
    ],
)
def test_out_of_range_names_field_range_and_value(field, value, message):
    """The model's rule (from its spec) names the field, what is allowed and the value given."""
    make(**{field: value})  # within the request's envelope: only the model refuses it
    error = refused(I2VGENXL, **{field: value})
    assert error.problems == [(field, message)]
    assert str(error) == f"{field}: {message}"


@pytest.mark.parametrize(
    ("field", "value", "low", "high"),
    [
        ("num_frames", 0, 1, 1024),
        ("num_frames", 1025, 1, 1024),
        ("fps", 0, 1, 240),
        ("fps", 241, 1, 240),
        ("steps", 0, 1, 1000),
        ("steps", 1001, 1, 1000),
        ("guidance_scale", -0.5, 0.0, 100.0),
        ("guidance_scale", 100.5, 0.0, 100.0),
        ("motion_fps", 0, 1, 240),
        ("motion_fps", 241, 1, 240),
    ],
)
def test_outside_every_models_envelope_names_field_range_and_value(field, value, low, high):
    message = error_for(**{field: value})
    assert message == f"{field}: must be between {low} and {high} for any model (each model narrows this: `i2v models list`), got {value!r}"


def test_seed_out_of_range_names_field_range_and_value():
    # The seed has no per-model rule, so its message does not send the user to the models' ranges.
    assert error_for(seed=-1) == "seed: must be between 0 and 4294967295, got -1"
    assert error_for(seed=2**32) == "seed: must be between 0 and 4294967295, got 4294967296"


def test_size_errors_are_specific():
    assert spec_error_for(width=100, height=64) == f"width: must be a multiple of 8 for {XL_LABEL}; 64 is best for this model, got 100"
    assert "got 100" in spec_error_for(width=100, height=64)
    assert spec_error_for(width=32, height=64) == f"width: must be between 64 and 2048 for {XL_LABEL}, got 32"
    assert spec_error_for(width=64, height=4096) == f"height: must be between 64 and 2048 for {XL_LABEL}, got 4096"
    assert "give both width and height" in error_for(width=64)
    # camera-preview's own grid: even sides are enough.
    assert CAMERA_PREVIEW.resolve(make(model=PREVIEW, width=100, height=66), IMAGE).width == 100
    assert spec_error_for(CAMERA_PREVIEW, model=PREVIEW, width=101, height=66) == f"width: must be a multiple of 2 for {CAMERA_PREVIEW.label}, got 101"


def test_empty_prompt_and_unknown_choices():
    with pytest.raises(ValidationError) as info:
        GenerationRequest(image="p.png", prompt="   ")
    assert "prompt" in describe_validation_error(info.value) and "empty" in describe_validation_error(info.value)
    assert "resolution: must be one of" in spec_error_for(resolution="4k") and "'4k'" in spec_error_for(resolution="4k")
    assert spec_error_for(resolution="4k") == f"resolution: must be one of 256p, 512p, 768p, 1024p for {XL_LABEL}, got '4k'"
    assert "scheduler: must be one of" in spec_error_for(scheduler="euler")
    assert "colour: is not a setting" in error_for(colour="red")


def test_seed_drawn_once_and_kept():
    request = make()
    assert request.seed is None
    seeded = request.with_seed()
    assert 0 <= seeded.seed <= 2**32 - 1
    assert seeded.with_seed().seed == seeded.seed
    assert make(seed=5).with_seed().seed == 5
    assert len({make().with_seed().seed for _ in range(5)}) > 1  # drawn at random, not a fixed default


def test_model_defaults_to_env(monkeypatch):
    monkeypatch.delenv("I2V_MODEL", raising=False)
    assert make().model == DEFAULT_MODEL
    monkeypatch.setenv("I2V_MODEL", "/models/mine")
    assert make().model == "/models/mine"


def test_motion_fps_defaults_within_trained_range():
    assert I2VGENXL.motion_fps.trained == (8, 16)
    assert I2VGENXL.motion_fps_for(24, None) == 16
    assert I2VGENXL.motion_fps_for(4, None) == 8
    assert I2VGENXL.motion_fps_for(12, None) == 12
    assert I2VGENXL.motion_fps_for(24, 6) == 6
    # In the resolved plan motion_fps is concrete.
    assert I2VGENXL.resolve(make(fps=24), IMAGE).motion_fps == 16
    assert I2VGENXL.resolve(make(fps=4), IMAGE).motion_fps == 8
    assert I2VGENXL.resolve(make(fps=12), IMAGE).motion_fps == 12
    assert I2VGENXL.resolve(make(fps=24, motion_fps=6), IMAGE).motion_fps == 6
    assert I2VGENXL.resolve(make(), IMAGE).motion_fps == 16  # from the model's default fps
    # A model without motion conditioning has none.
    assert CAMERA_PREVIEW.motion_fps_for(24, None) is None
    assert CAMERA_PREVIEW.resolve(make(model=PREVIEW, fps=24), IMAGE).motion_fps is None


@pytest.mark.parametrize(
    ("resolution", "image_size", "expected"),
    [
        ("512p", (1280, 704), (704, 384)),  # landscape keeps its shape
        ("1024p", (1280, 704), (1408, 768)),
        ("512p", (500, 500), (512, 512)),
        ("512p", (427, 640), (448, 640)),  # portrait stays portrait
        ("256p", (4000, 1000), (384, 192)),  # 4:1 is clamped to 2:1
    ],
)
def test_presets_keep_aspect_on_a_64_grid(resolution, image_size, expected):
    width, height = size_of(I2VGENXL, make(resolution=resolution), image_size)
    assert (width, height) == expected
    assert width % 64 == 0 and height % 64 == 0
    assert I2VGENXL.size.target(resolution, *image_size) == expected


def test_preset_follows_the_models_own_grid_and_aspect():
    assert size_of(I2VGENXL, make(), (1280, 704)) == I2VGENXL.size.target(I2VGENXL.size.default_preset, 1280, 704)
    # camera-preview: a 16-px grid and up to 8:1, so 4:1 is kept.
    assert size_of(CAMERA_PREVIEW, make(model=PREVIEW, resolution="256p"), (4000, 1000)) == (512, 128)
    assert size_of(CAMERA_PREVIEW, make(model=PREVIEW), (1280, 704)) == (688, 384)


def test_explicit_size_overrides_preset():
    assert size_of(I2VGENXL, make(width=72, height=64, resolution="1024p"), (1000, 100)) == (72, 64)


def test_warnings_for_few_steps_and_long_clips():
    assert any("under 10 steps" in note for note in I2VGENXL.warnings(make(steps=3)))
    assert any("16" in note for note in I2VGENXL.warnings(make(num_frames=24)))
    assert I2VGENXL.warnings(make()) == []
    assert I2VGENXL.warnings(I2VGENXL.resolve(make(), IMAGE)) == []  # the model's own defaults cost nothing
    assert CAMERA_PREVIEW.warnings(make(model=PREVIEW, num_frames=240)) == []


# --- spec.resolve --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [I2VGENXL, CAMERA_PREVIEW], ids=["i2vgenxl", "camera-preview"])
def test_resolve_fills_in_the_models_defaults(spec):
    model = XL if spec is I2VGENXL else PREVIEW
    request = make(model=model)
    assert all(getattr(request, field) is None for field in MODEL_FIELDS)  # the request itself is model-neutral
    applied = spec.resolve(request, IMAGE)
    assert applied.resolution == spec.size.default_preset
    assert applied.num_frames == spec.frames.default
    assert applied.fps == spec.fps.default
    assert applied.steps == (spec.steps.default if spec.steps else None)
    assert applied.guidance_scale == (spec.guidance.default if spec.guidance else None)
    assert applied.scheduler == spec.default_scheduler
    assert applied.negative_prompt == spec.negative_prompt
    assert applied.motion_fps == spec.motion_fps_for(spec.fps.default, None)
    assert {field: getattr(applied, field) for field in spec.defaults()} == spec.defaults()
    assert applied.prompt == request.prompt and applied.backend == spec.backend and applied.seed is not None  # drawn
    assert all(getattr(request, field) is None for field in MODEL_FIELDS)  # the request given is not changed


def test_resolve_fills_in_i2vgenxl_defaults():
    applied = I2VGENXL.resolve(make(), IMAGE)
    assert (applied.resolution, applied.num_frames, applied.fps, applied.motion_fps) == ("512p", 16, 16, 16)
    assert (applied.steps, applied.guidance_scale, applied.scheduler) == (50, 9.0, "ddim")
    assert applied.negative_prompt == NEGATIVE_PROMPT


def test_resolve_fills_in_camera_preview_defaults():
    applied = CAMERA_PREVIEW.resolve(make(model=PREVIEW), IMAGE)
    assert (applied.resolution, applied.num_frames, applied.fps) == ("512p", 16, 16)
    assert (applied.steps, applied.guidance_scale, applied.scheduler, applied.negative_prompt, applied.motion_fps) == (
        None, None, None, None, None,
    )


@pytest.mark.parametrize("spec", [I2VGENXL, CAMERA_PREVIEW], ids=["i2vgenxl", "camera-preview"])
def test_resolve_remembers_what_the_user_set(spec):
    model = XL if spec is I2VGENXL else PREVIEW
    bare = make(model=model)
    assert spec.resolve(bare, IMAGE).user_set == set() and bare.model_fields_set == {"image", "prompt", "model"}
    chosen = make(model=model, num_frames=24, fps=8, resolution="256p", seed=3)
    applied = spec.resolve(chosen, IMAGE)
    assert {"num_frames", "fps", "resolution", "seed"} <= applied.user_set
    assert not {"steps", "guidance_scale", "scheduler", "negative_prompt", "motion_fps"} & applied.user_set
    assert (applied.num_frames, applied.fps, applied.resolution, applied.seed) == (24, 8, "256p", 3)
    assert applied.steps == (spec.steps.default if spec.steps else None)
    # The request the plan writes back resolves to the same plan: the defaults filled in are not mistaken for
    # the user's.
    written = applied.as_request(chosen)
    assert written.model_fields_set == chosen.model_fields_set
    again = spec.resolve(written, IMAGE)
    assert again == applied and again.user_set == applied.user_set


def test_a_field_sent_as_null_is_left_to_the_model():
    request = make(steps=None, num_frames=24)
    assert {"steps", "num_frames"} <= request.model_fields_set
    applied = I2VGENXL.resolve(request, IMAGE)
    assert applied.steps == I2VGENXL.steps.default and applied.num_frames == 24
    assert applied.user_set == {"num_frames"}  # null is the model's default, not a choice


def test_resolve_keeps_a_fully_set_request_as_given():
    request = make(
        negative_prompt="blurry", resolution="768p", num_frames=24, fps=8, motion_fps=8, steps=25, guidance_scale=7.5,
        scheduler="dpmpp", seed=1,
    )
    applied = I2VGENXL.resolve(request, IMAGE)
    written = applied.as_request(request)
    assert written == request and written.model_fields_set == request.model_fields_set
    assert I2VGENXL.resolve(make(fps=8), IMAGE).motion_fps == 8 and "motion_fps" not in I2VGENXL.resolve(make(fps=8), IMAGE).user_set


def test_resolve_refuses_40_frames_on_i2vgenxl_naming_the_rule_and_nearest():
    error = refused(I2VGENXL, num_frames=40)
    assert error.problems == [("num_frames", f"must be between 8 and 32 for {XL_LABEL} (nearest: 32), got 40")]
    assert str(error) == f"num_frames: must be between 8 and 32 for {XL_LABEL} (nearest: 32), got 40"
    # The same count is fine on a model that allows it.
    assert CAMERA_PREVIEW.resolve(make(model=PREVIEW, num_frames=40), IMAGE).num_frames == 40
    error = refused(CAMERA_PREVIEW, model=PREVIEW, num_frames=300)
    assert error.problems == [("num_frames", f"must be between 2 and 240 for {PREVIEW_LABEL} (nearest: 240), got 300")]


def test_resolve_names_the_model_by_its_label_or_the_name_it_is_told():
    assert (XL_LABEL, PREVIEW_LABEL) == ("I2VGen-XL", "Camera preview (instant, no model)")
    # A local folder's path is never echoed: the message names the model by its label.
    error = refused(I2VGENXL, model="/models/mine", num_frames=40)
    assert error.problems == [("num_frames", f"must be between 8 and 32 for {XL_LABEL} (nearest: 32), got 40")]
    assert "/models/mine" not in str(error)
    with pytest.raises(InvalidInputError) as info:
        I2VGENXL.resolve(make(num_frames=40), IMAGE, "my-xl")
    assert "for my-xl (nearest: 32)" in str(info.value)


def test_resolve_names_every_bad_field_at_once():
    error = refused(I2VGENXL, num_frames=40, width=100, height=64, scheduler="euler", steps=101)
    assert [field for field, _ in error.problems] == ["num_frames", "width", "steps", "scheduler"]
    assert dict(error.problems) == {
        "num_frames": f"must be between 8 and 32 for {XL_LABEL} (nearest: 32), got 40",
        "width": f"must be a multiple of 8 for {XL_LABEL}; 64 is best for this model, got 100",
        "steps": f"must be between 1 and 100 for {XL_LABEL}, got 101",
        "scheduler": f"must be one of ddim, dpmpp for {XL_LABEL}, got 'euler'",
    }


def test_resolve_refuses_steps_on_camera_preview_saying_it_does_not_denoise():
    assert CAMERA_PREVIEW.steps is None
    error = refused(CAMERA_PREVIEW, model=PREVIEW, steps=20)
    assert error.problems == [("steps", f"{PREVIEW_LABEL} has no steps: it does not denoise; leave steps out")]
    assert "does not denoise" in str(error) and str(error).startswith("steps: ")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("guidance_scale", 5.0, f"{PREVIEW_LABEL} has no guidance scale: it takes no guidance; leave guidance_scale out"),
        ("scheduler", "ddim", f"{PREVIEW_LABEL} has no scheduler to choose; leave scheduler out"),
        ("negative_prompt", "blurry", f"{PREVIEW_LABEL} takes no negative prompt; leave it out"),
        ("motion_fps", 8, f"{PREVIEW_LABEL} has no motion-speed conditioning; leave motion_fps out"),
    ],
)
def test_resolve_refuses_what_camera_preview_does_not_have(field, value, message):
    assert refused(CAMERA_PREVIEW, model=PREVIEW, **{field: value}).problems == [(field, message)]
    I2VGENXL.resolve(make(**{field: value}), IMAGE)  # all of which I2VGen-XL takes


def test_resolve_refuses_an_unknown_scheduler_listing_the_models_own():
    error = refused(I2VGENXL, scheduler="euler")
    assert error.problems == [("scheduler", f"must be one of ddim, dpmpp for {XL_LABEL}, got 'euler'")]
    assert "ddim" in str(error) and "dpmpp" in str(error)
    for scheduler in I2VGENXL.schedulers:
        assert I2VGENXL.resolve(make(scheduler=scheduler), IMAGE).scheduler == scheduler


def test_frame_rule_with_a_step_names_the_nearest_valid_counts():
    rule = FrameRule(min=5, max=121, default=121, step=4, offset=1)
    assert rule.describe() == "4k+1 between 5 and 121"
    assert rule.allowed(9) and rule.allowed(13) and rule.allowed(121) and rule.allowed(5)
    assert not rule.allowed(10) and not rule.allowed(1) and not rule.allowed(125)
    assert rule.nearest(10) == [9, 13]
    assert rule.nearest(9) == [9]
    assert rule.nearest(2) == [5] and rule.nearest(500) == [121]
    assert rule.values()[:3] == [5, 9, 13] and rule.values()[-1] == 121 and len(rule.values()) == 30
    spec = I2VGENXL.model_copy(update={"frames": rule})
    error = refused(spec, model="wan", num_frames=10)
    assert error.problems == [("num_frames", f"must be 4k+1 between 5 and 121 for {spec.label} (nearest: 9 or 13), got 10")]
    assert "9 or 13" in str(error)
    assert spec.resolve(make(model="wan", num_frames=13), IMAGE).num_frames == 13
    assert spec.resolve(make(model="wan"), IMAGE).num_frames == 121  # the rule's default
    multiple = FrameRule(min=8, max=64, default=16, step=8)
    assert multiple.describe() == "a multiple of 8 between 8 and 64" and multiple.nearest(20) == [16, 24]


def test_a_spec_that_contradicts_itself_is_refused_when_declared():
    """A model folder's spec is checked when it is written, not when a user's job trips over it."""
    from pydantic import ValidationError

    from i2v.models.spec import FrameRule, IntRange, MotionRule, SizeRule, Tier

    size = I2VGENXL.size.model_dump()
    for build, complaint in [
        (lambda: IntRange(min=4, max=30, default=99), "the default 99 is outside 4-30"),
        (lambda: FrameRule(min=5, max=121, default=10, step=4, offset=1), "the default 10 frames"),
        (lambda: SizeRule(**{**size, "default_preset": "720p"}), "the default preset '720p'"),
        (lambda: MotionRule(min=4, max=30, trained=(2, 16)), "the trained range (2, 16)"),
        (lambda: I2VGENXL.model_copy(update={}).model_validate(
            {**I2VGENXL.model_dump(), "tiers": {"fast": Tier(resolution="9000p")}}), "tier 'fast'"),
        (lambda: I2VGENXL.model_validate(
            {**I2VGENXL.model_dump(), "tiers": {"fast": Tier(resolution="512p", steps=5000)}}), "tier 'fast'"),
    ]:
        with pytest.raises(ValidationError, match=re.escape(complaint)):
            build()
    assert I2VGENXL.model_validate(I2VGENXL.model_dump()) == I2VGENXL  # the shipped specs pass their own checks
