"""Image assessment: the offline figures on images built here, and the vision LLM's judgement against a real
local server speaking the OpenAI protocol (good JSON, bad JSON, timeout, a model without vision, the cache)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from fake_llm import FakeLLM
from helpers import make_photo, text_page
from PIL import Image, ImageDraw, ImageFilter

from i2v.advisor.assess import (
    BLOCKINESS_THRESHOLD,
    BLUR_THRESHOLD,
    GREY_THRESHOLD,
    assess,
    measure,
)
from i2v.models.registry import spec_for
from i2v.refine.cache import RefinementCache
from i2v.refine.llm import LLMSettings

I2VGENXL = spec_for("ali-vilab/i2vgen-xl")


def scene(width: int = 640, height: int = 427, seed: int = 1) -> Image.Image:
    """A photo-like picture with detail at every scale: shapes with hard edges over a smooth background."""
    rng = np.random.default_rng(seed)
    picture = make_photo(width, height, seed)
    draw = ImageDraw.Draw(picture)
    for _ in range(60):
        x, y = rng.integers(0, width), rng.integers(0, height)
        size = int(rng.integers(4, 40))
        draw.ellipse((x, y, x + size, y + size), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return picture


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def poster() -> Image.Image:
    return text_page(900, 600, "GRAND OPENING SALE  50% OFF ALL ITEMS", size=30, pitch=41)


def codes(assessment) -> set[str]:
    return {warning.code for warning in assessment.warnings}


def test_a_clean_sharp_photo_gets_no_warnings_and_a_top_score():
    result = assess(scene(), spec=I2VGENXL)
    assert codes(result) == set() and result.suitability == 5 and result.source == "offline"
    assert result.judgement is None and result.notes == []
    assert result.measurements.blockiness < 1.1 and result.measurements.colourfulness > GREY_THRESHOLD


def test_blur_lowers_sharpness_below_the_threshold():
    sharp = measure(scene(), I2VGENXL).sharpness
    blurred = assess(scene().filter(ImageFilter.GaussianBlur(3)), spec=I2VGENXL)
    assert sharp > 4 * BLUR_THRESHOLD and blurred.measurements.sharpness < BLUR_THRESHOLD / 4
    assert "blurred" in codes(blurred) and blurred.suitability == 3


def test_heavy_jpeg_compression_shows_as_block_artefacts():
    clean = measure(scene(), I2VGENXL).blockiness
    light = measure(jpeg(scene(), 90), I2VGENXL).blockiness
    heavy = assess(jpeg(scene(), 10), spec=I2VGENXL)
    assert clean < 1.1 and light < BLOCKINESS_THRESHOLD < heavy.measurements.blockiness
    assert "compressed" in codes(heavy)
    assert "compressed" not in codes(assess(jpeg(scene(), 90), spec=I2VGENXL))


def test_tiny_images_are_flagged_and_large_ones_measured_on_a_small_copy():
    tiny = assess(scene(200, 150), spec=I2VGENXL)
    assert "small" in codes(tiny) and tiny.measurements.upscale > 4
    large = scene().resize((4000, 2667), Image.BILINEAR)
    figures = measure(large, I2VGENXL)
    assert (figures.width, figures.height) == (4000, 2667) and figures.upscale < 0.05
    # Measured on a downscaled copy: the 640 px picture upscaled to 4000 px (which softens it) still reads sharp.
    assert measure(scene(), I2VGENXL).sharpness > figures.sharpness > 2 * BLUR_THRESHOLD
    assert codes(assess(large, spec=I2VGENXL)) == set()


def test_a_text_poster_is_flagged_and_grey_images_read_as_colourless():
    result = assess(poster(), spec=I2VGENXL)
    assert result.measurements.text_like and "text" in codes(result)
    assert result.measurements.colourfulness < GREY_THRESHOLD and "grey" in codes(result)
    assert result.suitability <= 3
    grey_photo = assess(scene().convert("L"), spec=I2VGENXL)
    assert codes(grey_photo) == {"grey"} and grey_photo.suitability == 5  # a fair input: a note, not a penalty
    assert "black and white" in grey_photo.warnings[0].message


@pytest.mark.parametrize("dither", [Image.Dither.FLOYDSTEINBERG, Image.Dither.NONE], ids=["dithered", "plain"])
def test_a_palette_image_is_measured_as_the_photo_it_shows(dither):
    from pathlib import Path

    with Image.open(Path(__file__).parent.parent / "examples" / "cat.jpg") as photo:
        palette = photo.convert("P", dither=dither)  # the web palette: dithering is pixel-scale noise (was read as text)
    result = assess(palette, spec=I2VGENXL)
    assert codes(result) == set() and result.suitability == 5
    assert not result.measurements.text_like and "text" in codes(assess(poster().convert("P"), spec=I2VGENXL))


def test_aspect_beyond_the_models_clamp_says_how_much_is_cut():
    wide = assess(scene(1200, 300), spec=I2VGENXL)
    assert wide.measurements.crop_share == pytest.approx(0.5)
    assert any(w.code == "aspect" and "50%" in w.message for w in wide.warnings)
    assert "portrait" in codes(assess(scene(427, 640), spec=I2VGENXL))


# -- the vision LLM ------------------------------------------------------------------------------------------

JUDGEMENT = {"subject": "a crowd at a concert", "people": 12, "animals": 0, "text_present": False, "style": "photo",
             "suitability": 2, "reason": "many overlapping people"}


@pytest.fixture(scope="module")
def server():
    with FakeLLM() as fake:
        fake.scripted["judge-good"] = json.dumps(JUDGEMENT)
        fake.scripted["judge-schema"] = json.dumps({**JUDGEMENT, "suitability": 9})
        yield fake


def settings(server, model: str, **extra) -> LLMSettings:
    return LLMSettings(preset="openai", base_url=server.base_url, model=model, api_key="test", vision=True, **extra)


def test_the_llm_judgement_is_validated_warned_on_and_cached(server, tmp_path):
    cache = RefinementCache(tmp_path / "cache.sqlite")
    result = assess(scene(), spec=I2VGENXL, llm=settings(server, "judge-good"), cache=cache)
    assert result.judgement is not None and result.judgement.people == 12
    assert result.source == "llm:openai/judge-good" and result.suitability == 2
    assert {"several_people", "low_suitability"} <= codes(result)
    assert any("crop to one person" in warning.message for warning in result.warnings)
    sent = server.requests[-1]["messages"][1]["content"]
    assert any(part["type"] == "image_url" for part in sent)
    calls = server.calls_by_model["judge-good"]
    again = assess(scene(), spec=I2VGENXL, llm=settings(server, "judge-good"), cache=cache)
    assert again.judgement == result.judgement and server.calls_by_model["judge-good"] == calls
    assert result.summary()["warnings"][:1] == ["several_people"]


@pytest.mark.parametrize(
    ("model", "why"),
    [("badjson", "not valid JSON"), ("judge-schema", "did not fit the schema"), ("slow", "within 0.5 s")],
)
def test_a_failed_judgement_leaves_the_offline_figures_with_a_note(server, model, why):
    result = assess(scene(), spec=I2VGENXL, llm=settings(server, model, timeout=0.5))
    assert result.judgement is None and result.source == "offline" and result.suitability == 5
    assert len(result.notes) == 1 and why in result.notes[0]


def test_a_model_without_vision_is_not_asked(server):
    calls = sum(server.calls_by_model.values())
    blind = LLMSettings(preset="openai", base_url=server.base_url, model="judge-good", api_key="x", vision=False)
    result = assess(scene(), spec=I2VGENXL, llm=blind)
    assert result.judgement is None and "does not take images" in result.notes[0]
    assert sum(server.calls_by_model.values()) == calls
