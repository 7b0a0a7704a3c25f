"""Small images of a clip: the live preview while it is made (an animated WebP) and its thumbnail (a JPEG)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from i2v.media.files import atomic_path

#: The live preview: an animated WebP (every current browser shows one in <img>; a third of a GIF's bytes and ten
#: times faster to write with Pillow).
PREVIEW_MEDIA_TYPE = "image/webp"
PREVIEW_FPS = 8
#: A preview is a few dozen small frames; anything bigger that claims to be one is refused (Redis events).
PREVIEW_MAX_BYTES = 4 * 2**20
THUMBNAIL_SIDE = 256


def encode_preview(frames: np.ndarray, fps: int = PREVIEW_FPS) -> bytes:
    """uint8 F×H×W×3 frames as a looping animated WebP (a still one for a single frame)."""
    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="WEBP", save_all=len(images) > 1, append_images=images[1:],
                   duration=round(1000 / fps), loop=0, quality=70, method=0)
    return buffer.getvalue()


def write_preview(path: Path, data: bytes) -> None:
    """Atomically, so a reader gets the previous preview or the new one, never half of one."""
    with atomic_path(path) as temp:
        temp.write_bytes(data)


def write_thumbnail(frame: np.ndarray, path: Path) -> None:
    """A clip's first frame, at most THUMBNAIL_SIDE on a side, as a JPEG, atomically."""
    image = Image.fromarray(frame)
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    with atomic_path(path) as temp:
        image.save(temp, format="JPEG", quality=85)
