"""Settings from the image itself: a size at its aspect ratio, a preset, tempo tags, and warnings about images
the model will animate badly (tiny, blurred, flat, or a page of text)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from i2v.refine.base import settings_hint_for

PresetName = Literal["fast", "standard", "quality"]
MIN_SIDE = 256
#: Variance of the Laplacian (0-255 grey, long side scaled to ANALYSIS_SIDE) under which an image reads as soft.
BLUR_THRESHOLD = 30.0
#: 2nd-98th percentile luminance spread (0-255) under which an image is nearly flat.
CONTRAST_THRESHOLD = 40.0
ANALYSIS_SIDE = 512


class Recommendation(BaseModel):
    """Request settings for this image; `request_fields()` feeds GenerationRequest directly."""

    model_config = ConfigDict(extra="forbid")

    preset: PresetName
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

    def request_fields(self) -> dict:
        """Settings for GenerationRequest (the size as a preset, so the request keeps the image's aspect)."""
        return self.model_dump(include=_REQUEST_FIELDS)


_REQUEST_FIELDS = {"resolution", "num_frames", "steps", "guidance_scale", "fps", "motion_fps", "scheduler"}


class ImageStats(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int
    height: int
    sharpness: float  # variance of the Laplacian
    contrast: float  # 2nd-98th percentile luminance spread, 0-255
    edge_density: float  # share of pixels on a strong edge
    two_tone: float  # share of pixels near the commonest grey level and near the commonest one far from it


def recommend(
    image: Image.Image, preset: PresetName = "standard", tags: list[str] | None = None, *, model: str | None = None
) -> Recommendation:
    """The model's `preset` tier at the image's aspect ratio, adjusted by refiner tags (slow_motion: more frames
    played slower, ...) through the same hints the refiner gives, kept within the model's spec, with warnings
    about the image."""
    from i2v.models.registry import spec_for
    from i2v.request import default_model

    model = model or default_model()
    spec = spec_for(model)
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
    width, height = spec.size.target(tier.resolution, *image.size)
    return Recommendation(
        preset=preset, model=model, width=width, height=height, reasons=reasons,
        warnings=image_warnings(image, max_aspect=spec.size.max_aspect), **fields,
    )


def image_warnings(image: Image.Image, *, max_aspect: float = 2.0) -> list[str]:
    """Plain-English warnings about what will hurt the video. Heuristics, cheap and numpy-only (see image_stats)."""
    stats = image_stats(image)
    warnings = []
    if min(stats.width, stats.height) < MIN_SIDE:
        warnings.append(
            f"the image is {stats.width}×{stats.height}: under {MIN_SIDE} px on a side the model invents the detail; "
            "use a larger original"
        )
    aspect = stats.width / stats.height
    if aspect > max_aspect or aspect < 1 / max_aspect:
        warnings.append(
            f"the image is {max(aspect, 1 / aspect):.1f}:1; the crop to at most {max_aspect:g}:1 cuts off its edges"
        )
    elif aspect < 1:
        warnings.append("portrait images were not in the model's training; expect weaker motion than in landscape")
    if stats.sharpness < BLUR_THRESHOLD:
        warnings.append(
            f"the image looks blurred (sharpness {stats.sharpness:.0f} < {BLUR_THRESHOLD:.0f}); the video will be soft"
        )
    if stats.contrast < CONTRAST_THRESHOLD:
        warnings.append(f"the image has very low contrast ({stats.contrast:.0f}/255); motion will be hard to see")
    if looks_like_text(stats):
        warnings.append("the image looks mostly like text or a document; the model animates scenes, and text will warp")
    return warnings


def image_stats(image: Image.Image) -> ImageStats:
    """Measures on the grey image, long side scaled to ANALYSIS_SIDE so thresholds do not depend on resolution."""
    grey = image.convert("L")
    if max(grey.size) > ANALYSIS_SIDE:
        grey.thumbnail((ANALYSIS_SIDE, ANALYSIS_SIDE), Image.BILINEAR)
    pixels = np.asarray(grey, dtype=np.float64)
    if min(pixels.shape) < 3:
        return ImageStats(
            width=image.width, height=image.height, sharpness=0.0, contrast=0.0, edge_density=0.0, two_tone=0.0
        )
    laplacian = (
        pixels[:-2, 1:-1] + pixels[2:, 1:-1] + pixels[1:-1, :-2] + pixels[1:-1, 2:] - 4 * pixels[1:-1, 1:-1]
    )
    low, high = np.percentile(pixels, [2, 98])
    gradient = np.hypot(np.diff(pixels, axis=1)[:-1], np.diff(pixels, axis=0)[:, :-1])
    histogram = np.histogram(pixels, bins=16, range=(0, 256))[0] / pixels.size
    first = int(np.argmax(histogram))
    second = max((level for level in range(16) if abs(level - first) >= 4), key=lambda level: histogram[level])
    two_tone = sum(float(histogram[max(0, mode - 1) : mode + 2].sum()) for mode in (first, second))
    return ImageStats(
        width=image.width, height=image.height, sharpness=float(laplacian.var()), contrast=float(high - low),
        edge_density=float((gradient > 48).mean()), two_tone=two_tone,
    )


def looks_like_text(stats: ImageStats) -> bool:
    """Many sharp edges on two well separated grey levels: pages, slides, screenshots of text.

    Limits: this sees ink on paper, not words. It misses text laid over a photo (signs, captions, memes), flags
    line art, diagrams and some UI screenshots, and can fire on high-contrast patterns such as barcodes.
    """
    return stats.edge_density > 0.08 and stats.two_tone > 0.7
