import pytest
from pydantic import ValidationError

from i2v.request import DEFAULT_MODEL, GenerationRequest, describe_validation_error


def make(**fields):
    return GenerationRequest(image="photo.png", prompt="a cat turning its head", **fields)


def error_for(**fields) -> str:
    with pytest.raises(ValidationError) as info:
        make(**fields)
    return describe_validation_error(info.value)


@pytest.mark.parametrize(
    ("field", "value", "low", "high"),
    [
        ("num_frames", 7, 8, 32),
        ("num_frames", 33, 8, 32),
        ("fps", 3, 4, 30),
        ("fps", 31, 4, 30),
        ("steps", 0, 1, 100),
        ("steps", 101, 1, 100),
        ("guidance_scale", 0.5, 1.0, 20.0),
        ("guidance_scale", 20.5, 1.0, 20.0),
        ("seed", -1, 0, 2**32 - 1),
        ("motion_fps", 40, 4, 30),
    ],
)
def test_out_of_range_names_field_range_and_value(field, value, low, high):
    message = error_for(**{field: value})
    assert message == f"{field}: must be between {low} and {high}, got {value!r}"


def test_size_errors_are_specific():
    assert "width: must be a multiple of 8" in error_for(width=100, height=64)
    assert "got 100" in error_for(width=100, height=64)
    assert "width: must be between 64 and 2048, got 32" == error_for(width=32, height=64)
    assert "give both width and height" in error_for(width=64)


def test_empty_prompt_and_unknown_choices():
    with pytest.raises(ValidationError) as info:
        GenerationRequest(image="p.png", prompt="   ")
    assert "prompt" in describe_validation_error(info.value) and "empty" in describe_validation_error(info.value)
    assert "resolution: must be one of" in error_for(resolution="4k") and "'4k'" in error_for(resolution="4k")
    assert "scheduler: must be one of" in error_for(scheduler="euler")
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
    assert make(fps=24).effective_motion_fps == 16
    assert make(fps=4).effective_motion_fps == 8
    assert make(fps=12).effective_motion_fps == 12
    assert make(fps=24, motion_fps=6).effective_motion_fps == 6


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
    width, height = make(resolution=resolution).target_size(*image_size)
    assert (width, height) == expected
    assert width % 64 == 0 and height % 64 == 0


def test_explicit_size_overrides_preset():
    assert make(width=72, height=64, resolution="1024p").target_size(1000, 100) == (72, 64)


def test_warnings_for_few_steps_and_long_clips():
    assert any("under 10 steps" in note for note in make(steps=3).warnings())
    assert any("16" in note for note in make(num_frames=24).warnings())
    assert make().warnings() == []
