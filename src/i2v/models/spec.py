"""`ModelSpec`: what a request may ask of one model, declared by its backend and nowhere else.

`GenerationRequest` is model-neutral: a setting left out means "this model's default". The spec fills those in
and checks every value against the model's own rules (frame counts such as 8-32 or 4k+1, the size grid,
schedulers, whether guidance or a negative prompt exist at all), with messages that say what is allowed. The CLI's
options, the UI's sliders, `i2v models list --json` and `GET /api/v1/models` are all read from it.

This module imports nothing heavy (no torch, no diffusers): validating a request must stay cheap.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from i2v.errors import InvalidInputError
from i2v.limits import echo
from i2v.models.plan import REQUEST_FIELDS, RunPlan

if TYPE_CHECKING:
    from i2v.request import GenerationRequest


#: The step-cache setting every model with caches offers, and its default: no cache, the reference frames.
CACHE_OFF = "off"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Range(_Frozen):
    @model_validator(mode="after")
    def _default_within(self):
        if not self.min <= self.default <= self.max:
            raise ValueError(f"the default {self.default} is outside {self.min}-{self.max}")
        return self


class IntRange(_Range):
    min: int
    max: int
    default: int


class FloatRange(_Range):
    min: float
    max: float
    default: float


class FrameRule(_Frozen):
    """Frame counts `offset + k·step` from `min` to `max`: 8-32 is (step 1), Wan's 4k+1 is (step 4, offset 1)."""

    min: int
    max: int
    default: int
    step: int = 1
    offset: int = 0
    #: Frames the model was trained or validated at; more may lose motion (a warning, not an error).
    validated: int | None = None

    @model_validator(mode="after")
    def _default_allowed(self) -> FrameRule:
        if not self.allowed(self.default):
            raise ValueError(f"the default {self.default} frames is not a count this rule allows ({self.describe()})")
        return self

    def allowed(self, frames: int) -> bool:
        return self.min <= frames <= self.max and (frames - self.offset) % self.step == 0

    def nearest(self, frames: int) -> list[int]:
        """The valid counts closest to `frames`, below and above (one value when it is valid or at a bound)."""
        clamped = min(max(frames, self.min), self.max)
        below = clamped - (clamped - self.offset) % self.step
        above = below if below == clamped else below + self.step
        return sorted({value for value in (below, above) if self.min <= value <= self.max})

    def describe(self) -> str:
        if self.step == 1:
            return f"between {self.min} and {self.max}"
        rule = f"{self.step}k+{self.offset}" if self.offset else f"a multiple of {self.step}"
        return f"{rule} between {self.min} and {self.max}"

    def values(self) -> list[int]:
        return [value for value in range(self.min, self.max + 1) if self.allowed(value)]


class SizeRule(_Frozen):
    """Explicit sizes on a `multiple` grid within [min_side, max_side]; resolution presets keep the image's aspect
    ratio, clamped to `max_aspect`, and round each side to `grid`."""

    multiple: int
    grid: int
    min_side: int
    max_side: int
    max_aspect: float
    #: Preset name -> side of the square with the same pixel count ("512p": as many pixels as 512×512).
    presets: dict[str, int]
    default_preset: str
    #: What a size off the grid costs, for the message ("64 is best for this model").
    hint: str = ""

    @model_validator(mode="after")
    def _default_is_a_preset(self) -> SizeRule:
        if self.default_preset not in self.presets:
            raise ValueError(f"the default preset {self.default_preset!r} is not one of {list(self.presets)}")
        if self.grid < 1 or self.multiple < 1 or self.min_side > self.max_side:
            raise ValueError("the grid and the multiple must be at least 1, and min_side at most max_side")
        return self

    def target(self, preset: str, image_width: int, image_height: int) -> tuple[int, int]:
        """(width, height) for `preset` at the image's aspect ratio, clamped to `max_aspect`, on the grid."""
        side = self.presets[preset]
        aspect = min(max(image_width / image_height, 1 / self.max_aspect), self.max_aspect)
        area = side * side
        width = max(self.grid, round(math.sqrt(area * aspect) / self.grid) * self.grid)
        height = max(self.grid, round(math.sqrt(area / aspect) / self.grid) * self.grid)
        return min(width, self.max_side), min(height, self.max_side)

    def smaller(self, width: int, height: int) -> tuple[int, int] | None:
        """The next preset down from `width`×`height`, at its aspect ratio and rounded as the presets are; None
        when no preset is smaller (the advisor's "lower resolution" rung)."""
        area = width * height
        for name, side in sorted(self.presets.items(), key=lambda item: -item[1]):
            if side * side < area * 0.9:
                lower = self.target(name, width, height)
                return lower if lower[0] * lower[1] < area else None
        return None


class MotionRule(_Frozen):
    """fps conditioning the model embeds (how fast things move), distinct from the playback rate."""

    min: int
    max: int
    #: The values seen in training; the default is the playback fps clamped to this range.
    trained: tuple[int, int]

    @model_validator(mode="after")
    def _trained_within(self) -> MotionRule:
        low, high = self.trained
        if not self.min <= low <= high <= self.max:
            raise ValueError(f"the trained range {self.trained} is not within {self.min}-{self.max}")
        return self


class PromptBudget(_Frozen):
    """How much prompt the model reads: the refiner writes to this budget."""

    #: Tokens the text encoder reads; the rest is dropped silently. None: no text encoder.
    tokens: int | None
    #: Words the refiner aims for (at most). None: no limit.
    words: int | None
    #: Languages the text encoder understands well ("en"; "en,zh").
    languages: str = "en"
    #: How the refiner should write for it, for the LLM's system prompt.
    style: str = ""
    #: "short": one or two sentences (for text encoders that read few tokens); "detailed": a structured paragraph
    #: (subject, motion, camera, then the look the image already has), for text encoders that read hundreds.
    form: Literal["short", "detailed"] = "short"


class Tier(_Frozen):
    """One quality tier (fast / standard / quality) a model recommends; None keeps the model's default. The CLI's
    `--preset` and the advice records call a tier a preset (names users already type); in code it is a tier, the
    word "preset" kept for resolution presets and the LLM provider presets."""

    resolution: str
    steps: int | None = None
    scheduler: str | None = None
    note: str = ""


class ModelSpec(_Frozen):
    """The single source of truth for what a request may ask of one model."""

    backend: str = Field(description="Backend that runs the model")
    label: str = Field(description="Name for people, as the UI shows it")
    description: str
    frames: FrameRule
    size: SizeRule
    fps: IntRange = Field(description="Playback frame rate of the written video; the default is the model's native rate")
    steps: IntRange | None = Field(description="Denoising steps; None: the model does not denoise")
    guidance: FloatRange | None = Field(description="Classifier-free guidance; None: the model takes none")
    schedulers: tuple[str, ...] = ()
    caches: tuple[str, ...] = Field(
        default=(),
        description="Step caches the model offers, \"off\" (the default) among them; empty: none to choose. A cache "
        "reuses or extrapolates work from earlier steps: faster, frames slightly different from an uncached run",
    )
    negative_prompt: str | None = Field(description="Default negative prompt; None: the model takes none")
    motion_fps: MotionRule | None = None
    prompt: PromptBudget
    #: Same seed, same frames.
    seeded: bool = True
    #: "fast", "standard", "quality": what the advisor recommends at each.
    tiers: dict[str, Tier] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _caches_can_be_off(self) -> ModelSpec:
        if self.caches and CACHE_OFF not in self.caches:
            raise ValueError(f"a model with step caches must offer {CACHE_OFF!r} (the default), got {self.caches}")
        return self

    @model_validator(mode="after")
    def _tiers_within_the_spec(self) -> ModelSpec:
        """A tier is a recommendation: it must be a request this spec accepts."""
        for name, tier in self.tiers.items():
            wrong = tier.resolution not in self.size.presets or (tier.steps is not None and (
                self.steps is None or not self.steps.min <= tier.steps <= self.steps.max
            )) or (tier.scheduler is not None and tier.scheduler not in self.schedulers)
            if wrong:
                raise ValueError(f"tier {name!r} asks for what this model cannot do: {tier}")
        return self

    @property
    def default_scheduler(self) -> str | None:
        return self.schedulers[0] if self.schedulers else None

    @property
    def default_cache(self) -> str | None:
        """The default cache: off for a model with step caches (a cache changes the frames, so one is only ever
        asked for), None for a model without."""
        return CACHE_OFF if self.caches else None

    def defaults(self) -> dict[str, object]:
        """The value each model-dependent request field takes when the user leaves it out."""
        return {
            "resolution": self.size.default_preset,
            "num_frames": self.frames.default,
            "fps": self.fps.default,
            "steps": self.steps.default if self.steps else None,
            "guidance_scale": self.guidance.default if self.guidance else None,
            "scheduler": self.default_scheduler,
            "negative_prompt": self.negative_prompt,
        }

    def motion_fps_for(self, fps: int, motion_fps: int | None) -> int | None:
        if self.motion_fps is None:
            return None
        if motion_fps is not None:
            return motion_fps
        low, high = self.motion_fps.trained
        return min(max(fps, low), high)

    def check(self, request: GenerationRequest, model: str | None = None) -> None:
        """Refuse a request this model cannot take: InvalidInputError naming every bad field and the model by its
        label (a local folder's path is never echoed). For an edge that must refuse before it has the image."""
        problems = self.problems(request, model or self.label)
        if problems:
            raise InvalidInputError(
                "; ".join(f"{field}: {message}" for field, message in problems), problems=problems,
            )

    def resolve(self, request: GenerationRequest, image_size: tuple[int, int], model: str | None = None) -> RunPlan:
        """The run `request` asks of this model on an image of `image_size`: checked (`check`), every setting it
        leaves out taken from the model's defaults, the size from its preset at the image's aspect ratio, the
        motion conditioning from fps, a seed drawn when none was given. The one place a model's rules are applied.

        The plan remembers which settings the user set (`user_set`; a field sent as null is the model's default
        too): the advisor may lower frames or size the user left to the model, never ones they set.
        """
        self.check(request, model)
        defaults = {**self.defaults(), "cache": self.default_cache}

        def given(field: str):
            value = getattr(request, field)
            return defaults[field] if value is None else value

        if request.width is not None and request.height is not None:
            width, height = request.width, request.height
        else:
            width, height = self.size.target(given("resolution"), *image_size)
        fps = given("fps")
        return RunPlan(
            backend=self.backend, prompt=request.prompt, negative_prompt=given("negative_prompt"),
            resolution=given("resolution"), width=width, height=height, num_frames=given("num_frames"), fps=fps,
            motion_fps=self.motion_fps_for(fps, request.motion_fps), steps=given("steps"),
            guidance_scale=given("guidance_scale"), scheduler=given("scheduler"), cache=given("cache"),
            seed=request.with_seed().seed,
            user_set=frozenset(
                field for field in REQUEST_FIELDS if field in request.model_fields_set and getattr(request, field) is not None
            ),
            allow_degrade=request.allow_degrade,
        )

    def problems(self, request: GenerationRequest, model: str) -> list[tuple[str, str]]:
        """(field, message) for each setting this model cannot take, each naming what it can."""
        found: list[tuple[str, str]] = []
        frames = request.num_frames
        if frames is not None and not self.frames.allowed(frames):
            nearest = " or ".join(str(value) for value in self.frames.nearest(frames))
            found.append(("num_frames", f"must be {self.frames.describe()} for {model} (nearest: {nearest}), got {frames}"))
        if request.resolution is not None and request.resolution not in self.size.presets:
            found.append(("resolution", f"must be one of {', '.join(self.size.presets)} for {model}, got {echo(request.resolution)}"))
        for field in ("width", "height"):
            value = getattr(request, field)
            if value is None:
                continue
            if not self.size.min_side <= value <= self.size.max_side:
                found.append((field, f"must be between {self.size.min_side} and {self.size.max_side} for {model}, got {value}"))
            elif value % self.size.multiple:
                hint = f"; {self.size.hint}" if self.size.hint else ""
                found.append((field, f"must be a multiple of {self.size.multiple} for {model}{hint}, got {value}"))
        if request.fps is not None and not self.fps.min <= request.fps <= self.fps.max:
            found.append(("fps", f"must be between {self.fps.min} and {self.fps.max} for {model}, got {request.fps}"))
        found += self._optional("steps", request.steps, self.steps, model, "it does not denoise")
        found += self._optional("guidance_scale", request.guidance_scale, self.guidance, model, "it takes no guidance")
        if request.scheduler is not None:
            if not self.schedulers:
                found.append(("scheduler", f"{model} has no scheduler to choose; leave scheduler out"))
            elif request.scheduler not in self.schedulers:
                found.append(("scheduler", f"must be one of {', '.join(self.schedulers)} for {model}, got {echo(request.scheduler)}"))
        if request.cache is not None:
            if not self.caches:
                found.append(("cache", f"{model} has no step cache to choose; leave cache out"))
            elif request.cache not in self.caches:
                found.append(("cache", f"must be one of {', '.join(self.caches)} for {model}, got {echo(request.cache)}"))
        if request.negative_prompt and self.negative_prompt is None:
            found.append(("negative_prompt", f"{model} takes no negative prompt; leave it out"))
        if request.motion_fps is not None:
            if self.motion_fps is None:
                found.append(("motion_fps", f"{model} has no motion-speed conditioning; leave motion_fps out"))
            elif not self.motion_fps.min <= request.motion_fps <= self.motion_fps.max:
                found.append(("motion_fps", f"must be between {self.motion_fps.min} and {self.motion_fps.max} for {model}, got {request.motion_fps}"))
        return found

    @staticmethod
    def _optional(field: str, value: float | None, allowed: IntRange | FloatRange | None, model: str, why: str):
        if value is None:
            return []
        if allowed is None:
            return [(field, f"{model} has no {field.replace('_', ' ')}: {why}; leave {field} out")]
        if not allowed.min <= value <= allowed.max:
            return [(field, f"must be between {allowed.min:g} and {allowed.max:g} for {model}, got {value:g}")]
        return []

    def warnings(self, request: GenerationRequest) -> list[str]:
        """Settings that are allowed but known to cost quality."""
        notes = []
        if self.steps is not None and request.steps is not None and request.steps < 10:
            notes.append(f"steps={request.steps}: under 10 steps quality suffers badly")
        validated = self.frames.validated
        if validated and request.num_frames is not None and request.num_frames > validated:
            notes.append(
                f"num_frames={request.num_frames}: the model was validated at {validated}; motion may stop after frame {validated}"
            )
        return notes
