"""Image-aware recommendations: size at the image's aspect ratio, presets and tags, warnings about the image."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_photo, text_page
from PIL import Image, ImageFilter

from i2v.advisor.recommend import advise, image_stats, image_warnings, recommend
from i2v.models.i2vgenxl.spec import SPEC
from i2v.request import GenerationRequest

PHOTO = make_photo(512, 384)




@pytest.mark.parametrize("preset", list(SPEC.tiers))
def test_sizes_follow_the_image_aspect_in_multiples_of_64(preset):
    wide = recommend(make_photo(1280, 704), preset)
    assert wide.width % 64 == 0 and wide.height % 64 == 0 and wide.width > wide.height
    assert wide.width / wide.height == pytest.approx(1280 / 704, rel=0.12)
    plan = SPEC.resolve(GenerationRequest(image="photo.png", prompt="a cat", **wide.request_fields()), (1280, 704))
    assert (plan.width, plan.height) == (wide.width, wide.height)


def test_quality_is_near_the_training_shape_and_presets_scale_up():
    sizes = {name: recommend(make_photo(1280, 704), name) for name in SPEC.tiers}
    assert (sizes["quality"].width, sizes["quality"].height) == (1408, 768)
    assert sizes["fast"].width < sizes["standard"].width < sizes["quality"].width
    assert sizes["fast"].steps < sizes["standard"].steps < sizes["quality"].steps
    assert sizes["fast"].scheduler == "dpmpp"


def test_tags_adjust_the_preset():
    slow = recommend(PHOTO, "standard", ["slow_motion", "pan_left"])
    assert (slow.num_frames, slow.fps, slow.motion_fps) == (24, 8, 8)
    assert any("slow_motion" in reason for reason in slow.reasons)
    # static_camera keeps the model's default guidance (which no tag changes either), and says so: the reason
    # is what only the tag gives, in the recommendation and in the advice's guidance setting.
    static, plain = recommend(PHOTO, "standard", ["static_camera"]), recommend(PHOTO, "standard")
    assert static.guidance_scale == plain.guidance_scale == SPEC.guidance.default
    assert any(reason.startswith("static_camera:") for reason in static.reasons)
    assert not any("static_camera" in reason for reason in plain.reasons)
    advised, untagged = ({setting.field: setting.reason for setting in advise(PHOTO, tags, preset="standard").settings}
                         for tags in (["static_camera"], []))
    assert advised["guidance_scale"].startswith("static_camera:") and untagged["guidance_scale"] == "the model's default"
    assert recommend(PHOTO, "standard", ["not_a_tag"]).num_frames == SPEC.frames.default
    with pytest.raises(ValueError, match="preset must be one of"):
        recommend(PHOTO, "turbo")


def test_a_clean_photo_gets_no_warnings():
    assert image_warnings(PHOTO) == []


def test_small_blurred_flat_and_portrait_images_are_flagged():
    assert any("under 256 px" in warning for warning in image_warnings(make_photo(200, 150)))
    assert any("blurred" in warning for warning in image_warnings(PHOTO.filter(ImageFilter.GaussianBlur(4))))
    flat = Image.fromarray((np.asarray(PHOTO) * 0.08 + 110).astype(np.uint8))
    assert any("low contrast" in warning for warning in image_warnings(flat))
    assert any("portrait" in warning for warning in image_warnings(make_photo(384, 512)))
    assert any("cuts off its edges" in warning for warning in image_warnings(make_photo(900, 300)))


def test_a_page_of_text_is_flagged_but_a_checkerboard_is_not():
    assert any("text" in warning for warning in image_warnings(text_page()))
    squares = ((np.indices((512, 512)).sum(0) // 32 % 2) * 255).astype(np.uint8)
    assert not any("text" in warning for warning in image_warnings(Image.fromarray(squares).convert("RGB")))
    stats = image_stats(text_page())
    assert stats.edge_density > 0.08 and stats.two_tone > 0.7


# -- advise: the preset and each setting chosen, with a reason ----------------------------------------------------


def test_advise_caps_the_size_at_what_a_small_image_can_fill_and_gives_each_setting_a_reason():
    from i2v.advisor.recommend import advise

    small = advise(make_photo(451, 300), ["slow_motion"])
    assert small.preset == "standard" and "no device" in small.preset_reason
    assert small.resolution == "512p" and (small.width, small.height) == (640, 448)
    why = {setting.field: setting.reason for setting in small.settings}
    assert "small image (451×300): 512p is the largest that keeps detail" in why["resolution"]
    assert "768p would upscale it 4.4×" in why["resolution"]
    assert why["num_frames"].startswith("slow_motion") and small.num_frames == 24
    assert why["steps"] == "the standard preset's 50 steps (the model's reference count)" and why["guidance_scale"] == "the model's default"
    large = advise(make_photo(1600, 900))
    assert large.resolution == "768p" and {setting.field for setting in large.settings} >= {"resolution", "steps", "scheduler"}


def test_advise_picks_the_preset_from_the_device_and_the_image():
    from i2v.advisor.assess import assess
    from i2v.advisor.device import DeviceInfo, GiB
    from i2v.advisor.recommend import advise

    cpu = DeviceInfo(kind="cpu", name="cpu", total_bytes=16 * GiB, free_bytes=16 * GiB, source="system")
    assert advise(PHOTO, device=cpu).preset == "fast"
    big = DeviceInfo(kind="cuda", name="RTX 4090", total_bytes=24 * GiB, free_bytes=23 * GiB, capability=(8, 9), bf16=True)
    quality = advise(make_photo(1600, 900), device=big)
    assert quality.preset == "quality" and "fits on RTX 4090" in quality.preset_reason
    tiny_card = DeviceInfo(kind="cuda", name="small card", total_bytes=2 * GiB, free_bytes=2 * GiB, capability=(7, 5))
    assert advise(make_photo(1600, 900), device=tiny_card).preset == "fast"
    blurred = PHOTO.filter(ImageFilter.GaussianBlur(6)).resize((200, 150))
    trial = advise(blurred, device=big, assessment=assess(blurred, spec=SPEC))
    assert trial.preset == "fast" and "try a quick run first" in trial.preset_reason
    assert any("blurred" in warning for warning in trial.warnings)


def test_apply_fills_only_what_the_user_left_out_unless_told_to_override():
    from i2v.advisor.recommend import advise

    advice = advise(make_photo(1600, 900))
    mine = GenerationRequest(image="photo.png", prompt="a cat", steps=30, width=512, height=320)
    applied = advice.apply(mine)
    assert (applied.steps, applied.width, applied.resolution) == (30, 512, None)
    assert applied.scheduler == advice.scheduler and applied.num_frames == advice.num_frames
    assert applied.advice.recommendation.preset == "standard" and "steps" not in applied.advice.recommendation.fields
    assert "scheduler" in applied.model_fields_set
    forced = advice.apply(mine, override=True)
    assert (forced.steps, forced.width, forced.resolution) == (advice.steps, None, advice.resolution)
    SPEC.check(forced)


def test_reasons_describe_the_settings_recommended_not_the_tier_they_came_from():
    from pathlib import Path

    from i2v.advisor.device import probe_device
    from i2v.advisor.recommend import advise

    with Image.open(Path(__file__).parent.parent / "examples" / "cat.jpg") as opened:
        cat = opened.convert("RGB")
    wan = advise(cat, model="wan2.2-ti2v-5b", device=probe_device(None, "24GiB"))
    reasons = {setting.field: setting.reason for setting in wan.settings}
    assert wan.resolution == "480p" and reasons["resolution"].startswith("small image")
    assert "720p" not in reasons["steps"] and "50 steps" in reasons["steps"]  # the quality tier says 720p; 480p is used
    assert not any("720p" in reason for field, reason in reasons.items() if field != "resolution")


def test_the_image_is_measured_once_for_the_chosen_model(monkeypatch):
    from i2v.advisor import assess as assess_module
    from i2v.advisor.device import probe_device
    from i2v.advisor.recommend import advise

    measured, crops = [], []
    real_measure, real_blockiness = assess_module.measure, assess_module.blockiness
    monkeypatch.setattr(assess_module, "measure", lambda image, spec=None: measured.append(spec.label) or real_measure(image, spec))
    monkeypatch.setattr(assess_module, "blockiness", lambda image: crops.append(1) or real_blockiness(image))
    advise(PHOTO, model="wan2.2-ti2v-5b", device=probe_device(None, "80GiB"))
    recommendation = recommend(PHOTO, "fast", model="wan2.2-ti2v-5b")
    assert len(crops) == 2 and [label.split()[0] for label in measured] == ["Wan", "Wan"]  # one each, Wan's spec
    assert recommendation.model == "wan2.2-ti2v-5b" and recommendation.warnings == []
