"""Image-aware recommendations: size at the image's aspect ratio, presets and tags, warnings about the image."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import make_photo
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from i2v.advisor.recommend import image_stats, image_warnings, recommend
from i2v.models.i2vgenxl.spec import SPEC
from i2v.request import GenerationRequest

PHOTO = make_photo(512, 384)


def page_of_text() -> Image.Image:
    page = Image.new("RGB", (800, 600), "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=28)
    for line in range(15):
        draw.text((20, 10 + line * 38), "Lorem ipsum dolor sit amet, consectetur", fill=(20, 20, 20), font=font)
    return page


@pytest.mark.parametrize("preset", list(SPEC.tiers))
def test_sizes_follow_the_image_aspect_in_multiples_of_64(preset):
    wide = recommend(make_photo(1280, 704), preset)
    assert wide.width % 64 == 0 and wide.height % 64 == 0 and wide.width > wide.height
    assert wide.width / wide.height == pytest.approx(1280 / 704, rel=0.12)
    request = SPEC.apply(GenerationRequest(image="photo.png", prompt="a cat", **wide.request_fields()))
    assert request.target_size(SPEC, 1280, 704) == (wide.width, wide.height)


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
    assert recommend(PHOTO, "standard", ["static_camera"]).guidance_scale == 9.0
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
    assert any("text" in warning for warning in image_warnings(page_of_text()))
    squares = ((np.indices((512, 512)).sum(0) // 32 % 2) * 255).astype(np.uint8)
    assert not any("text" in warning for warning in image_warnings(Image.fromarray(squares).convert("RGB")))
    stats = image_stats(page_of_text())
    assert stats.edge_density > 0.08 and stats.two_tone > 0.7
