"""Settings from the image itself: a preset chosen from what the image shows and what the device can run, a size
at the image's aspect ratio that its pixels can fill, tempo from the refiner's tags, each setting with one reason,
and warnings about images the model will animate badly.

`recommend(image, preset, tags)` gives one tier as the model's spec declares it; `advise(image, tags, ...)` picks
the tier and adjusts it. Neither changes a request: `Recommendation.apply(request)` fills only what the user left
out (or everything, with `override=True`, for an "apply recommended settings" button).
"""

from __future__ import annotations

from typing import Any, Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from i2v.advice_record import AdviceRecord, RecommendationRecord
from i2v.advisor.assess import (
    ANALYSIS_SIDE,
    BLUR_THRESHOLD,
    CONTRAST_THRESHOLD,
    MIN_SIDE,
    ImageAssessment,
    ImageStats,
    assess,
    image_stats,
    image_warnings,
    looks_like_text,
)
from i2v.advisor.device import DeviceInfo, format_bytes
from i2v.advisor.plan import make_plan
from i2v.models.registry import spec_for
from i2v.refine.base import settings_hint_for
from i2v.request import GenerationRequest, default_model

__all__ = [
    "ANALYSIS_SIDE", "BLUR_THRESHOLD", "CONTRAST_THRESHOLD", "MIN_SIDE", "ImageStats", "Recommendation", "Setting",
    "advise", "image_stats", "image_warnings", "looks_like_text", "recommend",
]

TierName = Literal["fast", "standard", "quality"]
TIERS: tuple[TierName, ...] = ("fast", "standard", "quality")
#: A size preset may have at most this many times the image's pixels: past it the model invents the detail.
UPSCALE_LIMIT = 2.0
#: Longest predicted run for which the advisor picks a tier on a GPU (10 minutes).
TIME_BUDGET_SECONDS = 600.0
#: At or under this suitability (1-5) the advisor suggests a fast trial run first.
TRIAL_SUITABILITY = 2


class Setting(BaseModel):
    """One recommended request setting and why."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="The GenerationRequest field")
    value: Any
    reason: str


class Recommendation(BaseModel):
    """Request settings for this image; `request_fields()` feeds GenerationRequest directly."""

    model_config = ConfigDict(extra="forbid")

    preset: TierName
    model: str
    resolution: str
    width: int
    height: int
    num_frames: int
    steps: int | None = None
    guidance_scale: float | None = None
    fps: int
    motion_fps: int | None = None
    scheduler: str | None = None
    reasons: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    preset_reason: str = Field(default="", description="Why this preset")
    settings: list[Setting] = Field(default_factory=list, description="Each setting with one reason")

    def request_fields(self) -> dict:
        """Settings for GenerationRequest (the size as a preset, so the request keeps the image's aspect)."""
        return self.model_dump(include=_REQUEST_FIELDS, exclude_none=True)

    def apply(self, request: GenerationRequest, *, override: bool = False) -> GenerationRequest:
        """`request` with the recommended settings where the user left a setting out (all of them with
        `override`: the user's explicit "apply"), recorded in `advice`. The filled settings count as set."""
        given = request.model_dump(exclude_unset=True)
        given = {key: value for key, value in given.items() if value is not None}
        recommended = self.request_fields()
        if override:
            given.pop("width", None), given.pop("height", None)
            filled = recommended
        else:
            taken = set(given) | ({"resolution"} if "width" in given else set())
            filled = {key: value for key, value in recommended.items() if key not in taken}
        record = RecommendationRecord(preset=self.preset, applied=True, fields=sorted(filled))
        advice = (request.advice or AdviceRecord()).model_copy(update={"recommendation": record})
        return GenerationRequest.model_validate({**given, **filled, "advice": advice})


_REQUEST_FIELDS = {"resolution", "num_frames", "steps", "guidance_scale", "fps", "motion_fps", "scheduler"}


def recommend(
    image: Image.Image,
    preset: TierName = "standard",
    tags: list[str] | None = None,
    *,
    model: str | None = None,
    assessment: ImageAssessment | None = None,
) -> Recommendation:
    """The model's `preset` tier at the image's aspect ratio, adjusted by refiner tags (slow_motion: more frames
    played slower, ...) through the same hints the refiner gives, kept within the model's spec, with warnings
    about the image (from `assessment`, else the image measured once for this model)."""
    model = model or default_model()
    spec = spec_for(model)
    if assessment is None:
        assessment = assess(image, spec=spec)
    return _tier_settings(image.size, preset, tags, model, spec).model_copy(
        update={"warnings": [warning.message for warning in assessment.warnings]}
    )


def _tier_settings(size: tuple[int, int], preset: str, tags: list[str] | None, model: str, spec) -> Recommendation:
    """The tier's settings at the image's aspect ratio, adjusted by tags, without looking at the pixels."""
    if preset not in spec.tiers:
        raise ValueError(f"preset must be one of {', '.join(spec.tiers)}, got {preset!r}")
    tier = spec.tiers[preset]
    fields: dict = {key: value for key, value in spec.defaults().items() if key != "negative_prompt"}
    fields.update(tier.model_dump(exclude_none=True, exclude={"note"}))
    reasons = [f"{preset} preset: {tier.resolution}" + (f", {tier.note}" if tier.note else "")]
    hint = settings_hint_for(list(tags or []), spec)
    if hint is not None:
        wanted = hint.model_dump(exclude_none=True, exclude={"reason"})
        if spec.motion_fps is None:
            wanted.pop("motion_fps", None)
        if spec.guidance is None:
            wanted.pop("guidance_scale", None)
        if "num_frames" in wanted:
            wanted["num_frames"] = spec.frames.nearest(wanted["num_frames"])[-1]
        fields.update(wanted)
        reasons.append(hint.reason)
    width, height = spec.size.target(tier.resolution, *size)
    return Recommendation(preset=preset, model=model, width=width, height=height, reasons=reasons, **fields)




def advise(
    image: Image.Image,
    tags: list[str] | None = None,
    *,
    model: str | None = None,
    assessment: ImageAssessment | None = None,
    device: DeviceInfo | None = None,
    preset: TierName | None = None,
) -> Recommendation:
    """The preset and settings to use for this image: a tier chosen from the image's score and what `device` can
    run (None: no device known, the standard tier) unless `preset` names one, the size capped at what the
    image's pixels can fill, tempo from `tags`; every setting with one reason."""
    model = model or default_model()
    spec = spec_for(model)
    if assessment is None:
        assessment = assess(image, spec=spec)
    if preset is None:
        preset, preset_reason = _choose_tier(image, tags, model, spec, assessment, device)
    elif preset not in spec.tiers:
        raise ValueError(f"preset must be one of {', '.join(spec.tiers)}, got {preset!r}")
    else:
        preset_reason = f"{preset}: as asked"
    base = _tier_settings(image.size, preset, tags, model, spec)
    tier = spec.tiers[preset]
    fields = base.request_fields()
    reasons: dict[str, str] = {}
    resolution, size_reason = _size_for(image, tier.resolution, spec)
    if resolution != tier.resolution:
        fields["resolution"] = resolution
    width, height = spec.size.target(fields["resolution"], *image.size)
    reasons["resolution"] = f"{size_reason}; {width}×{height} at the image's aspect ratio"
    # Each reason speaks of its own setting only: a tier's note also names its size, which _size_for may change.
    hint = settings_hint_for(list(tags or []), spec)
    hinted = set(hint.model_dump(exclude_none=True, exclude={"reason"})) if hint else set()
    defaults = spec.defaults()
    for field in ("steps", "scheduler", "num_frames", "fps", "motion_fps", "guidance_scale"):
        if fields.get(field) is None:
            continue
        if field in hinted:
            reasons[field] = hint.reason  # type: ignore[union-attr]
        elif field == "steps" and tier.steps is not None:
            reference = " (the model's reference count)" if fields[field] == defaults.get(field) else ""
            reasons[field] = f"the {preset} preset's {fields[field]} steps{reference}"
        elif field == "scheduler" and tier.scheduler is not None:
            reasons[field] = f"the {preset} preset's sampler, {fields[field]}"
        elif field == "motion_fps":
            reasons[field] = "the playback rate clamped to the motion speeds the model was trained on"
        elif field == "num_frames" and spec.frames.validated == fields[field]:
            reasons[field] = "the length the model was validated at"
        elif fields[field] == defaults.get(field):
            reasons[field] = "the model's default"
        else:
            reasons[field] = f"the {preset} preset's {field.replace('_', ' ')}"
    settings = [Setting(field=field, value=fields[field], reason=reasons[field]) for field in reasons]
    return base.model_copy(update={
        "width": width, "height": height, "preset_reason": preset_reason, "settings": settings,
        "warnings": [warning.message for warning in assessment.warnings],
        "reasons": [preset_reason, *[f"{s.field}={s.value}: {s.reason}" for s in settings]],
        "resolution": fields["resolution"],
    })


def _size_for(image: Image.Image, wanted: str, spec) -> tuple[str, str]:
    """(preset, why): the tier's size unless it has over UPSCALE_LIMIT times the image's pixels; then the largest
    preset within that limit (the smallest preset when none is)."""
    pixels = image.width * image.height
    presets = sorted(spec.size.presets, key=spec.size.presets.get)
    fitting = [name for name in presets if spec.size.presets[name] ** 2 <= pixels * UPSCALE_LIMIT]
    largest = fitting[-1] if fitting else presets[0]
    if spec.size.presets[wanted] <= spec.size.presets[largest]:
        return wanted, "the preset's size"
    upscale = spec.size.presets[wanted] ** 2 / pixels
    if not fitting:
        return largest, (f"small image ({image.width}×{image.height}): even {largest}, the smallest size, upscales it "
                         f"{spec.size.presets[largest] ** 2 / pixels:.1f}×")
    return largest, (f"small image ({image.width}×{image.height}): {largest} is the largest that keeps detail "
                     f"({wanted} would upscale it {upscale:.1f}×)")


def _choose_tier(
    image: Image.Image, tags: list[str] | None, model: str, spec, assessment: ImageAssessment, device: DeviceInfo | None
) -> tuple[TierName, str]:
    if assessment.suitability <= TRIAL_SUITABILITY:
        how = "the vision model" if assessment.judgement else "the offline checks"
        return "fast", f"fast: {how} rate the image {assessment.suitability}/5; try a quick run first to see whether it animates"
    if device is None:
        return "standard", "standard: no device to plan for, so the model's reference settings"
    if device.kind == "cpu":
        return "fast", "fast: no GPU here; on the CPU every step takes minutes at real size, and fast has the fewest"
    from i2v.advisor.report import predicted_seconds  # here: the report's table brings rich, which advising never needs

    for name in reversed(TIERS):
        candidate = _tier_settings(image.size, name, tags, model, spec)
        size, _ = _size_for(image, candidate.resolution, spec)
        request = GenerationRequest(image="plan", prompt="plan", model=model, **{**candidate.request_fields(), "resolution": size})
        plan = make_plan(spec.resolve(request, image.size), device)
        seconds = predicted_seconds(plan, plan.estimate(), device)
        if plan.fits and seconds <= TIME_BUDGET_SECONDS:
            return name, (f"{name}: fits on {device.name} ({format_bytes(plan.predicted_peak_bytes)} of "
                          f"{format_bytes(plan.budget_bytes)}), about {_duration(seconds)}")
    return "fast", f"fast: nothing better fits on {device.name} within {_duration(TIME_BUDGET_SECONDS)}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
