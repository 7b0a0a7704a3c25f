"""What the web form sends: only the settings a model takes and the user changed, and a camera preview of any
model's form carried over to what the preview takes. In-process (the functions the page calls)."""

from __future__ import annotations

from i2v.models.camera_preview.spec import SPEC as CAMERA
from i2v.models.i2vgenxl.spec import SPEC as I2VGENXL
from i2v.models.wan22.spec import SPEC as WAN
from i2v.request import GenerationRequest
from i2v.web.ui_actions import carry_over, spec_controls, spec_fields


def form_at_defaults(spec):
    """The form as spec_controls draws it for `spec`, in spec_fields' argument order."""
    negative, resolution, frames, fps, steps, guidance, scheduler, cache = (c.get("value") for c in spec_controls(spec))
    return dict(negative=negative, resolution=resolution, frames=frames, fps=fps, steps=steps if steps is not None else 1,
                guidance=guidance if guidance is not None else 1.0, scheduler=scheduler, cache=cache)


def test_a_form_left_at_the_models_defaults_sends_no_settings():
    """Left to the model, the advisor may still lower frames or size to fit (the user fixed nothing)."""
    for spec in (I2VGENXL, WAN, CAMERA):
        assert spec_fields(spec, **form_at_defaults(spec)) == {}, spec.label


def test_only_what_the_user_changed_and_the_model_takes_is_sent():
    form = {**form_at_defaults(I2VGENXL), "frames": 24, "steps": 30, "scheduler": "dpmpp"}
    assert spec_fields(I2VGENXL, **form) == {"num_frames": 24, "steps": 30, "scheduler": "dpmpp"}
    # The same form values for camera-preview: it takes no steps, guidance, scheduler or negative prompt.
    assert spec_fields(CAMERA, **{**form, "negative": "blurry"}) == {"num_frames": 24}
    # A negative prompt other than the model's default is the user's.
    assert spec_fields(WAN, **{**form_at_defaults(WAN), "negative": "blurry"}) == {"negative_prompt": "blurry"}


def test_a_model_whose_spec_is_unknown_gets_every_setting():
    sent = spec_fields(None, **form_at_defaults(I2VGENXL))
    assert {"resolution", "num_frames", "fps", "steps", "guidance_scale", "scheduler", "negative_prompt"} <= set(sent)


def test_a_camera_preview_carries_any_models_form_over_to_what_it_takes():
    wan_form = {**WAN.defaults(), "cache": "pab", "steps": 40}
    carried = carry_over(wan_form, WAN, CAMERA)
    assert carried == {"resolution": "1024p", "num_frames": 121, "fps": 24}  # 720p ≈ 949² px: nearest is 1024p
    CAMERA.check(GenerationRequest(image="x.png", prompt="x", model="camera-preview", **carried))
    tiny = carry_over({"resolution": "480p", "num_frames": 1000, "fps": 1}, WAN, CAMERA)
    assert tiny == {"resolution": "512p", "num_frames": CAMERA.frames.max, "fps": CAMERA.fps.min}
    assert carry_over({}, WAN, CAMERA) == {}
