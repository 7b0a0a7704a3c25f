"""`GenerationRequest`: the one typed description of a job, validated at every edge and passed inward unchanged."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from i2v.advice_record import AdviceRecord
from i2v.limits import ECHO_CHARS, MAX_PROMPT_CHARS, echo

MAX_SEED = 2**32 - 1

Refiner = Literal["rules", "llm", "none"]
#: Fields whose allowed values and default each model's spec decides; the request only bounds them loosely.
MODEL_FIELDS = frozenset(
    {
        "negative_prompt", "resolution", "width", "height", "num_frames", "fps", "motion_fps", "steps", "guidance_scale",
        "scheduler", "cache",
    }
)


def default_model() -> str:
    """`I2V_MODEL` overrides the default model everywhere (CLI, API, server)."""
    from i2v.models.registry import DEFAULT_MODEL

    return os.environ.get("I2V_MODEL") or DEFAULT_MODEL


class GenerationRequest(BaseModel):
    """Everything that decides a clip. Field names are shared by the CLI, the REST API and the job store."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    image: Path = Field(description="Path of the still image to animate (PNG, JPEG, WebP or BMP).")
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="What should move, and how.")
    model: str = Field(default_factory=default_model, min_length=1, max_length=512, description="Model name (see /api/v1/models).")
    # The bounds below only keep hostile values out; each model's spec narrows them (`i2v models list`), and
    # a field left out takes the model's default.
    negative_prompt: str | None = Field(
        default=None, max_length=MAX_PROMPT_CHARS, description="What to avoid; the model's own default when absent."
    )
    resolution: str | None = Field(
        default=None, max_length=16, description="Size preset of the model (e.g. 512p); keeps the image's aspect ratio."
    )
    width: int | None = Field(default=None, ge=16, le=8192, description="Explicit width on the model's grid; overrides the preset.")
    height: int | None = Field(default=None, ge=16, le=8192, description="Explicit height on the model's grid; overrides the preset.")
    num_frames: int | None = Field(default=None, ge=1, le=1024, description="Frames to generate; the model's rule decides which counts.")
    fps: int | None = Field(default=None, ge=1, le=240, description="Playback frame rate of the written video.")
    motion_fps: int | None = Field(
        default=None, ge=1, le=240,
        description="fps conditioning the model embeds (how fast motion is), for models that have it; defaults from fps.",
    )
    steps: int | None = Field(default=None, ge=1, le=1000, description="Denoising steps.")
    guidance_scale: float | None = Field(default=None, ge=0.0, le=100.0, description="Classifier-free guidance strength.")
    scheduler: str | None = Field(default=None, max_length=32, description="Sampler, one the model offers.")
    cache: str | None = Field(
        default=None, max_length=32,
        description="Step cache, one the model offers (off by default): faster, with frames slightly different from an uncached run.",
    )
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED, description="Random when absent; always recorded.")
    allow_degrade: bool = Field(
        default=False,
        description="Let the advisor lower frames or resolution you set, if that is the only way to fit in memory.",
    )
    refiner: Refiner = Field(
        default="rules", description="rules (offline), llm (OpenAI-compatible endpoint) or none (use the prompt as typed)."
    )
    advice: AdviceRecord | None = Field(
        default=None,
        description="What the advisor contributed (assessment, applied recommendation, troubleshooting chain); recorded, never acted on.",
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
    def _strip(cls, value: str | None) -> str | None:
        return value.strip() if value is not None else None

    @model_validator(mode="after")
    def _width_and_height_together(self) -> GenerationRequest:
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height, or neither (then the resolution preset decides)")
        return self

    def with_seed(self) -> GenerationRequest:
        """The same request with a concrete seed, drawn at random when none was given, so it can be recorded."""
        if self.seed is not None:
            return self
        return self.model_copy(update={"seed": secrets.randbelow(MAX_SEED + 1)})


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
            if low is None:
                message = f"{message}, got {echo(value)}"
            elif field in MODEL_FIELDS:
                message = f"must be between {low} and {high} for any model (each model narrows this: `i2v models list`), got {echo(value)}"
            else:
                message = f"must be between {low} and {high}, got {echo(value)}"
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
