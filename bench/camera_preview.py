"""Time per frame of the camera-preview renderer, on the CPU, for the shapes users pick.

Straight moves (pan, tilt, zoom) take the bicubic-resize path; dolly, orbit and handheld the perspective
transform; a still camera resamples once and copies. The source is a 1920×1280 synthetic photo, so every
shape downscales. PIL and this renderer use one core; pin it with `taskset -c 0` to be sure.

Run: python bench/camera_preview.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from PIL import Image

from i2v.models.camera_preview.render import describe_motion, render_camera

SHAPES = [(512, 512, 16), (1280, 704, 49)]
MOVES = [["pan_left", "zoom_in"], ["dolly_in"], ["orbit_left", "handheld"], ["static_camera"]]


def source(width: int = 1920, height: int = 1280) -> Image.Image:
    """Gradients with band-limited noise: detail everywhere, like a photo, without shipping one."""
    y, x = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(0).integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    detail = np.asarray(Image.fromarray(noise).resize((width, height), Image.BICUBIC), dtype=float)
    base = np.stack([255 * x / width, 255 * y / height, np.full(x.shape, 128.0)], axis=-1)
    return Image.fromarray(np.clip(0.6 * base + 0.4 * detail, 0, 255).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs per row")
    args = parser.parse_args()
    image = source()
    print(f"{'width×height×frames':>20}  {'ms/frame':>9}  {'clip s':>7}  camera")
    for width, height, frames in SHAPES:
        for tags in MOVES:
            best = min(_timed(image, tags, width, height, frames) for _ in range(args.repeats))
            print(f"{f'{width}×{height}×{frames}':>20}  {1000 * best / frames:9.1f}  {best:7.2f}  {describe_motion(tags)}")


def _timed(image: Image.Image, tags: list[str], width: int, height: int, frames: int) -> float:
    started = time.perf_counter()
    render_camera(image, tags, width=width, height=height, num_frames=frames, seed=0)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
