"""Load a user's image safely: format sniffing, pixel limits, EXIF orientation, colour modes."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from i2v.errors import InvalidInputError

SUPPORTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP")  # camera MPO files open through JPEG
#: Guard against decompression bombs; `I2V_MAX_IMAGE_PIXELS` raises it.
DEFAULT_MAX_PIXELS = 50_000_000
MIN_USEFUL_SIDE = 256
#: Longer side over shorter side beyond which an image is refused: the cover crop would keep a sliver of it,
#: and scaling its short side up to the frame would allocate without bound (a 1×20000 PNG is a few hundred bytes).
MAX_IMAGE_ASPECT = 8.0
_pillow_guard_lock = threading.Lock()


def max_image_pixels() -> int:
    raw = os.environ.get("I2V_MAX_IMAGE_PIXELS")
    return int(raw) if raw else DEFAULT_MAX_PIXELS


@dataclass
class LoadedImage:
    image: Image.Image
    sha256: str
    source_format: str
    source_size: tuple[int, int]
    warnings: list[str] = field(default_factory=list)


def load_image(source: str | Path | bytes, *, name: str | None = None) -> LoadedImage:
    """Decode `source` (a path or raw bytes) to an upright 8-bit RGB image, or raise InvalidInputError saying why."""
    if isinstance(source, bytes):
        data, label = source, name or "uploaded image"
    else:
        path = Path(source).expanduser()
        label = name or str(path)
        if not path.exists():
            raise InvalidInputError(f"image not found: {label}", field="image")
        if path.is_dir():
            raise InvalidInputError(f"image path is a folder, not a file: {label}", field="image")
        data = path.read_bytes()
    if not data:
        raise InvalidInputError(f"image file is empty (0 bytes): {label}", field="image")

    limit = max_image_pixels()
    try:
        image = _open_header(data)
        width, height = image.size
        if width * height > limit:
            raise InvalidInputError(
                f"image is {width}×{height} = {width * height / 1e6:.3g} megapixels, over the "
                f"{limit / 1e6:.3g} MP limit: downscale it (the model works at about 1 MP), "
                "or raise I2V_MAX_IMAGE_PIXELS",
                field="image",
            )
        aspect = max(width, height) / max(min(width, height), 1)
        if aspect > MAX_IMAGE_ASPECT:
            raise InvalidInputError(
                f"image is {width}×{height}, an aspect ratio of {aspect:.4g}:1; the limit is {MAX_IMAGE_ASPECT:g}:1 "
                "(video frames are at most 2:1, so almost all of it would be cropped away): crop it closer to the frame you want",
                field="image",
            )
        image.load()
    except UnidentifiedImageError:
        raise InvalidInputError(f"not a supported image: {label} (expected PNG, JPEG, WebP or BMP)", field="image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidInputError(f"image file is truncated or corrupt: {label} ({exc})", field="image") from None

    source_format = image.format or "unknown"
    source_size = image.size
    image = _to_rgb(ImageOps.exif_transpose(image))
    notes = []
    if min(image.size) < MIN_USEFUL_SIDE:
        notes.append(
            f"image is only {image.width}×{image.height}: below {MIN_USEFUL_SIDE} px the model has little "
            "detail to animate and the result will look soft"
        )
    return LoadedImage(
        image=image,
        sha256=hashlib.sha256(data).hexdigest(),
        source_format=source_format,
        source_size=source_size,
        warnings=notes,
    )


def _open_header(data: bytes) -> Image.Image:
    """Parse the header only. Pillow's own bomb guard is lifted here because ours (above) runs on the size
    before any pixel is decoded, and gives the user the dimensions."""
    with _pillow_guard_lock, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(io.BytesIO(data), formats=list(SUPPORTED_FORMATS))
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _to_rgb(image: Image.Image) -> Image.Image:
    """Flatten alpha onto white, and bring palette, grayscale, 16-bit and CMYK images to 8-bit RGB."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda value: value / 256).convert("L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB") if image.mode != "RGB" else image


def cover_crop(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale `image` to cover `size` (box filter), then crop the centre: the reference pipelines' "wide crop".

    The arithmetic follows the original implementation, so our conditioning matches the reference, with one
    deliberate difference: where the reference's floor rounding leaves the scaled image a pixel short of the
    frame (200×140 → 140×91, say) it crops past the edge and paints a black line into the conditioning image;
    we scale to at least the frame instead. The crop is applied as the source box of the resize: only the kept
    region is ever scaled, so memory stays at one output frame whatever the image's shape.
    """
    target_w, target_h = size
    scale = min(image.width / target_w, image.height / target_h)
    full_w, full_h = max(round(image.width // scale), target_w), max(round(image.height // scale), target_h)
    left = (full_w - target_w) // 2
    top = (full_h - target_h) // 2
    x_ratio, y_ratio = image.width / full_w, image.height / full_h
    box = (left * x_ratio, top * y_ratio, (left + target_w) * x_ratio, (top + target_h) * y_ratio)
    return image.resize((target_w, target_h), resample=Image.BOX, box=box)
