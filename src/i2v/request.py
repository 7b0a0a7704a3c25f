"""`GenerationRequest`: the one typed description of a job, validated at every edge and passed inward unchanged."""

from __future__ import annotations

import math
import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_MODEL = "ali-vilab/i2vgen-xl"
DEFAULT_NEGATIVE_PROMPT = (
    "Distorted, discontinuous, Ugly, blurry, low resolution, motionless, static, disfigured, "
    "disconnected limbs, Ugly faces, incomplete arms"
)
#: Preset name -> side of the square with the same pixel count ("512p" = as many pixels as 512x512).
RESOLUTION_PRESETS = {"256p": 256, "512p": 512, "768p": 768, "1024p": 1024}
#: target_fps values the model saw in training (clips sampled at 8 or 16 fps).
MOTION_FPS_RANGE = (8, 16)
MAX_SEED = 2**32 - 1
#: Longest prompt (and negative prompt) accepted anywhere: CLI, API, UI.
MAX_PROMPT_CHARS = 2000
#: How much of a client's own value an error message quotes back.
ECHO_CHARS = 80
#: Aspect ratios further from square than this lose content to the wide crop; we clamp the preset there.
MAX_ASPECT = 2.0

Resolution = Literal["256p", "512p", "768p", "1024p"]
Scheduler = Literal["ddim", "dpmpp"]
Refiner = Literal["rules", "llm", "none"]


def default_model() -> str:
    """`I2V_MODEL` overrides the default model everywhere (CLI, API, server)."""
    return os.environ.get("I2V_MODEL") or DEFAULT_MODEL


class GenerationRequest(BaseModel):
    """Everything that decides a clip. Field names are shared by the CLI, the REST API and the job store."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    image: Path = Field(description="Path of the still image to animate (PNG, JPEG, WebP or BMP).")
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="What should move, and how.")
    negative_prompt: str = Field(default=DEFAULT_NEGATIVE_PROMPT, max_length=MAX_PROMPT_CHARS)
    resolution: Resolution = Field(default="512p", description="Size preset; keeps the image's aspect ratio.")
    width: int | None = Field(default=None, ge=64, le=2048, description="Explicit width, multiple of 8; overrides the preset.")
    height: int | None = Field(default=None, ge=64, le=2048, description="Explicit height, multiple of 8; overrides the preset.")
    num_frames: int = Field(default=16, ge=8, le=32, description="Frames to generate; 16 is the validated length.")
    fps: int = Field(default=16, ge=4, le=30, description="Playback frame rate of the written video.")
    motion_fps: int | None = Field(
        default=None, ge=4, le=30,
        description="fps conditioning the model embeds (how fast motion is); defaults to fps clamped to 8-16.",
    )
    steps: int = Field(default=50, ge=1, le=100, description="Denoising steps; under 10 quality suffers.")
    guidance_scale: float = Field(default=9.0, ge=1.0, le=20.0, description="Classifier-free guidance strength.")
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED, description="Random when absent; always recorded.")
    model: str = Field(default_factory=default_model, min_length=1, description="Hub id or local folder.")
    scheduler: Scheduler = Field(default="ddim", description="ddim (reference) or dpmpp (DPM-Solver++).")
    allow_degrade: bool = Field(
        default=False,
        description="Let the advisor lower frames or resolution you set, if that is the only way to fit in memory.",
    )
    refiner: Refiner = Field(
        default="rules", description="rules (offline), llm (OpenAI-compatible endpoint) or none (use the prompt as typed)."
    )

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("prompt is empty: describe the motion you want, e.g. 'a cat turning its head'")
        return value

    @field_validator("negative_prompt")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_8(cls, value: int | None) -> int | None:
        if value is not None and value % 8:
            raise ValueError(f"must be a multiple of 8 (64 is best for this model), got {value}")
        return value

    @model_validator(mode="after")
    def _width_and_height_together(self) -> GenerationRequest:
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height, or neither (then the resolution preset decides)")
        return self

    @property
    def effective_motion_fps(self) -> int:
        if self.motion_fps is not None:
            return self.motion_fps
        low, high = MOTION_FPS_RANGE
        return min(max(self.fps, low), high)

    def with_seed(self) -> GenerationRequest:
        """The same request with a concrete seed, drawn at random when none was given, so it can be recorded."""
        if self.seed is not None:
            return self
        return self.model_copy(update={"seed": secrets.randbelow(MAX_SEED + 1)})

    def warnings(self) -> list[str]:
        notes = []
        if self.steps < 10:
            notes.append(f"steps={self.steps}: under 10 steps quality suffers badly (DDIM degrades below 50)")
        if self.num_frames > 16:
            notes.append(f"num_frames={self.num_frames}: the model was validated at 16; motion may stop after frame 16")
        return notes

    def target_size(self, image_width: int, image_height: int) -> tuple[int, int]:
        """(width, height) to generate at: explicit size, or the preset's pixel count at the image's aspect ratio.

        Sides are multiples of 64 (the model's natural grid); aspect is clamped to 2:1 so the wide crop keeps
        most of the image.
        """
        if self.width is not None and self.height is not None:
            return self.width, self.height
        side = RESOLUTION_PRESETS[self.resolution]
        aspect = min(max(image_width / image_height, 1 / MAX_ASPECT), MAX_ASPECT)
        area = side * side
        width = max(64, round(math.sqrt(area * aspect) / 64) * 64)
        height = max(64, round(math.sqrt(area / aspect) / 64) * 64)
        return width, height


def echo(value: object) -> str:
    """A client's value quoted in an error message, cut short: errors never send a large input back."""
    text = repr(value)
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + "…"


def describe_validation_error(error: ValidationError) -> str:
    """One line per bad field, naming the field, what is allowed and the value given."""
    return "; ".join(f"{field}: {message}" for field, message in validation_messages(error))


def validation_messages(error: ValidationError) -> list[tuple[str, str]]:
    """(field, message) for each problem, the message naming what is allowed and the value given."""
    lines = []
    for item in error.errors():
        field = (".".join(str(part) for part in item["loc"]) or "request")[:ECHO_CHARS]
        message = item["msg"].removeprefix("Value error, ")
        value = item.get("input")
        ctx = item.get("ctx") or {}
        kind = item["type"]
        if kind in {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}:
            low, high = _field_range(field)
            message = f"must be between {low} and {high}, got {echo(value)}" if low is not None else f"{message}, got {echo(value)}"
        elif kind == "literal_error":
            message = f"must be one of {ctx.get('expected')}, got {echo(value)}"
        elif kind == "extra_forbidden":
            message = "is not a setting of GenerationRequest"
        elif kind == "missing":
            message = "is required"
        elif kind in {"string_too_short"} and field == "prompt":
            message = "prompt is empty: describe the motion you want, e.g. 'a cat turning its head'"
        elif kind.endswith("_parsing") or kind.endswith("_type"):
            message = f"{message}, got {echo(value)}"
        lines.append((field, message))
    return lines


def _field_range(field: str) -> tuple[object, object]:
    info = GenerationRequest.model_fields.get(field)
    if info is None:
        return None, None
    low = high = None
    for meta in info.metadata:
        low = getattr(meta, "ge", low)
        high = getattr(meta, "le", high)
    return low, high
