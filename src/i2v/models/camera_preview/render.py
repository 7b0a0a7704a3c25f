"""The camera motion named by the refiner's tags, rendered over the still image without a model.

Each frame is a window onto the image, resampled to the output size. The camera path is built in the units of
the first frame (height 2, width 2 × aspect), then the whole path is scaled down just enough to fit inside the
image, so the window never leaves it and nothing outside the image is ever sampled. That fit is the margin each
move costs: a move that travels t frame widths (or heights) beyond the first frame needs the widest frame to
show 1/(1 + t) of the image, and moves combine by the union of their windows:

| tag | what the camera does, at strength 1 and normal tempo | the widest frame shows |
|---|---|---|
| pan_left / pan_right | the window slides 20 % of the frame width (content moves right / left) | 1/1.2 of the width |
| tilt_up / tilt_down | the window slides 15 % of the frame height (content moves down / up) | 1/1.15 of the height |
| zoom_in / zoom_out | the framing narrows / widens 1.35×, evenly in log scale | all / 1/1.35 of it |
| dolly_in / dolly_out | a 1.3× zoom plus a keystone: the bottom edge (the ground, nearer) grows 6 % more | all / 1/(1.3 × 1.06) |
| orbit_left / orbit_right | a 10 % slide (the background moves left / right) and a 10 % yaw: the near side grows | 1/1.1 of the height |
| handheld | a seeded smooth sway: ±1.2 % shift, ±0.25° roll, ±0.5 % scale | about 1/1.025 |
| static_camera, or no camera tag | nothing moves: every frame is the image's centre box, box-filtered to size | all of it |

Tempo scales the travel and the pace of the handheld sway, not its size: slow_motion ×0.5, fast_motion ×1.6,
timelapse ×2 (they multiply); `strength` scales all travel and the sway's size. Opposite tags cancel (pan_left
+ pan_right is no pan); static_camera wins over every move. With loop the camera goes out and comes back on a
cosine (ease out and back) that is periodic in the clip length: frame F would equal frame 0, so a player
repeating the clip shows no seam and no doubled frame. Without loop, progress follows smoothstep, so the motion
starts and ends at rest.

The image is first cut to the output aspect (the largest centred box) and box-filtered to the resolution at
which the narrowest window maps one image pixel to one output pixel, or kept at its own resolution if that is
less: then the frames are upscaled (soft, but never outside the image). `i2v.media.images.cover_crop` is not
used for this: its reference arithmetic floors the scaled size and pads a black line for about half of all
sizes (e.g. 200×140 to 140×91), and a black edge is exactly what this renderer must never show.

When every window of a clip is an upright rectangle (pan, tilt, zoom), each frame is a bicubic resize of its
box, antialiased when it shrinks; when any is tilted or a trapezoid (handheld roll, dolly, orbit), every frame is
a bilinear perspective transform, so the sharpness never changes mid-clip. Not PIL's bicubic transform: its
cubic (a = -1) misplaces content by up to 0.09 px with the sub-pixel phase, a shimmer in slow moves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from i2v.errors import GenerationCancelled

PAN = 0.20
TILT = 0.15
ZOOM = 1.35
DOLLY_ZOOM = 1.30
DOLLY_KEYSTONE = 0.06
ORBIT_SLIDE = 0.10
ORBIT_YAW = 0.10
#: Handheld sway amplitudes: shift as a fraction of the frame height, roll in radians, scale as a fraction.
HANDHELD_SHIFT = 0.012
HANDHELD_ROLL = math.radians(0.25)
HANDHELD_SCALE = 0.005
#: Handheld sway periods, in frames at normal tempo: slow enough to read as a hand, not a vibration.
HANDHELD_PERIODS = (10.0, 40.0)
TEMPO = {"slow_motion": 0.5, "fast_motion": 1.6, "timelapse": 2.0}

#: Each directional tag as (axis, sign), so opposite tags cancel.
_MOVES = {
    "pan_left": ("pan", -1), "pan_right": ("pan", 1),
    "tilt_up": ("tilt", -1), "tilt_down": ("tilt", 1),
    "zoom_in": ("zoom", 1), "zoom_out": ("zoom", -1),
    "dolly_in": ("dolly", 1), "dolly_out": ("dolly", -1),
    "orbit_left": ("orbit", -1), "orbit_right": ("orbit", 1),
}
#: How describe_motion words each axis and sign: (third person, participle).
_WORDS = {
    ("pan", -1): ("pans left", "panning left"), ("pan", 1): ("pans right", "panning right"),
    ("tilt", -1): ("tilts up", "tilting up"), ("tilt", 1): ("tilts down", "tilting down"),
    ("zoom", 1): ("zooms in", "zooming in"), ("zoom", -1): ("zooms out", "zooming out"),
    ("dolly", 1): ("dollies in", "dollying in"), ("dolly", -1): ("dollies out", "dollying out"),
    ("orbit", -1): ("orbits left", "orbiting left"), ("orbit", 1): ("orbits right", "orbiting right"),
}
_HANDHELD_WORDS = ("sways like a handheld camera", "swaying like a handheld camera")


@dataclass(frozen=True)
class _Motion:
    """What the tags ask of the camera: a net sign per axis, the sway, the tempo factor and whether it loops."""

    axes: dict[str, int]
    handheld: bool
    tempo: float
    loop: bool

    @property
    def still(self) -> bool:
        return not self.axes and not self.handheld


def _motion(tags: Sequence[str]) -> _Motion:
    """Read the tags; unknown ones are ignored, so a grown vocabulary never breaks a preview."""
    given = set(tags)
    tempo = math.prod(factor for tag, factor in TEMPO.items() if tag in given)
    if "static_camera" in given:
        return _Motion(axes={}, handheld=False, tempo=tempo, loop="loop" in given)
    sums: dict[str, int] = {}
    for tag in given & _MOVES.keys():
        axis, sign = _MOVES[tag]
        sums[axis] = sums.get(axis, 0) + sign
    axes = {axis: sign for axis, sign in sums.items() if sign}
    return _Motion(axes=axes, handheld="handheld" in given, tempo=tempo, loop="loop" in given)


def describe_motion(tags: Sequence[str]) -> str:
    """What the camera does, in a short English phrase for metadata and the UI: "pans left while zooming in, slowly"."""
    motion = _motion(tags)
    if motion.still:
        return "holds still"
    moves = [_WORDS[axis, sign] for axis in ("pan", "tilt", "zoom", "dolly", "orbit")
             if (sign := motion.axes.get(axis))]
    if motion.handheld:
        moves.append(_HANDHELD_WORDS)
    text = moves[0][0]
    if len(moves) > 1:
        participles = [participle for _, participle in moves[1:]]
        text += " while " + (", ".join(participles[:-1]) + " and " if len(participles) > 1 else "") + participles[-1]
    if motion.axes and motion.tempo != 1:
        text += ", slowly" if motion.tempo < 1 else ", as a timelapse" if "timelapse" in tags else ", quickly"
    if motion.axes and motion.loop:
        text += ", then back to the start (loops)"
    return text


def render_camera(
    image: Image.Image,
    tags: Sequence[str],
    *,
    width: int,
    height: int,
    num_frames: int,
    seed: int,
    strength: float = 1.0,
    cancelled: Callable[[], bool] | None = None,
    on_frame: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Render the camera motion of `tags` over `image`: uint8 frames, num_frames × height × width × 3.

    `seed` drives only the handheld sway (same seed, same frames); every other move is deterministic.
    `strength` scales all travel (0 is a still camera). `cancelled` is polled before each frame and stops the
    render with GenerationCancelled(frames done, total); `on_frame(done, total)` follows each frame.
    """
    if width < 1 or height < 1 or num_frames < 1:
        raise ValueError(f"need a positive size and frame count, got {width}×{height}×{num_frames}")
    if not math.isfinite(strength) or strength < 0:
        raise ValueError(f"strength must be a finite number ≥ 0, got {strength}")
    image = image if image.mode == "RGB" else image.convert("RGB")
    motion = _motion(tags)

    # 1. The window's corners per frame, in first-frame units, then fitted inside the image (normalised to ±1).
    aspect = width / height
    corners = _camera_path(motion, num_frames, aspect, strength, seed)
    quads, narrowest = _fit_inside(corners, aspect)

    # 2. The image's centred box at the output aspect, as sharp as the narrowest window needs and the image allows.
    most = min(image.width / width, image.height / height)
    factor = min(1 / narrowest, most)
    stage_size = (max(round(width * factor), 1), max(round(height * factor), 1))
    box = ((image.width - width * most) / 2, (image.height - height * most) / 2)
    stage = image.resize(stage_size, Image.BOX, box=(*box, box[0] + width * most, box[1] + height * most))
    quads_px = (quads + 1) / 2 * np.array(stage_size, dtype=float)

    # 3. One resampling per frame, with one filter for the whole clip; a repeated window is copied, not resampled.
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    target = np.array([(0, 0), (width, 0), (width, height), (0, height)], dtype=float)
    upright = all(_is_upright_rectangle(quad) for quad in quads_px)
    for index in range(num_frames):
        if cancelled is not None and cancelled():
            raise GenerationCancelled(index, num_frames)
        quad = quads_px[index]
        if index and np.array_equal(quad, quads_px[index - 1]):
            frames[index] = frames[index - 1]
        elif upright:
            frames[index] = np.asarray(stage.resize((width, height), Image.BICUBIC, box=(*quad[0], *quad[2])))
        else:
            coefficients = _homography(target, quad)
            frames[index] = np.asarray(stage.transform((width, height), Image.PERSPECTIVE, coefficients, Image.BILINEAR))
        if on_frame is not None:
            on_frame(index + 1, num_frames)
    return frames


def _progress(motion: _Motion, num_frames: int) -> np.ndarray:
    """How far along its path the camera is at each frame, 0 to 1: smoothstep, or out and back for a loop."""
    if motion.loop:
        return (1 - np.cos(2 * np.pi * np.arange(num_frames) / num_frames)) / 2
    t = np.arange(num_frames) / max(num_frames - 1, 1)
    return t * t * (3 - 2 * t)


def _camera_path(motion: _Motion, num_frames: int, aspect: float, strength: float, seed: int) -> np.ndarray:
    """The window's corners (top-left, top-right, bottom-right, bottom-left) per frame: F × 4 × 2, in units where
    the first frame is the rectangle ±aspect × ±1 (y down)."""
    p = _progress(motion, num_frames)[:, None]
    travel = strength * motion.tempo
    axes = motion.axes
    x = np.array([-aspect, aspect, aspect, -aspect])[None, :].repeat(num_frames, 0)
    y = np.array([-1.0, -1.0, 1.0, 1.0])[None, :].repeat(num_frames, 0)

    # 1. Perspective: dolly narrows the bottom edge (the nearer ground grows faster), orbit shortens the near side.
    keystone = axes.get("dolly", 0) * DOLLY_KEYSTONE * travel * p
    x = x * np.where(y > 0, 1 - keystone, 1.0)
    yaw = axes.get("orbit", 0) * ORBIT_YAW * travel * p
    y = y * np.where(x < 0, 1 + yaw, 1 - yaw)

    # 2. Roll, scale and shift: the handheld sway plus the travel of zoom, dolly, pan, tilt and orbit.
    sway = _handheld_sway(num_frames, motion, strength, seed) if motion.handheld else np.zeros((num_frames, 4))
    roll = sway[:, 0:1] * HANDHELD_ROLL
    x, y = x * np.cos(roll) - y * np.sin(roll), x * np.sin(roll) + y * np.cos(roll)
    log_zoom = axes.get("zoom", 0) * math.log(ZOOM) + axes.get("dolly", 0) * math.log(DOLLY_ZOOM)
    scale = np.exp(-log_zoom * travel * p) * (1 + sway[:, 1:2] * HANDHELD_SCALE)
    slide = axes.get("pan", 0) * PAN - axes.get("orbit", 0) * ORBIT_SLIDE
    x = x * scale + 2 * aspect * slide * travel * p + 2 * HANDHELD_SHIFT * sway[:, 2:3]
    y = y * scale + 2 * axes.get("tilt", 0) * TILT * travel * p + 2 * HANDHELD_SHIFT * sway[:, 3:4]
    return np.stack([x, y], axis=-1)


def _handheld_sway(num_frames: int, motion: _Motion, strength: float, seed: int) -> np.ndarray:
    """Four smooth seeded signals in [-strength, strength] (roll, scale, x, y): each a sum of three sines with
    random periods and phases. Periods scale with the tempo; a loop gets whole cycles per clip, so it wraps."""
    rng = np.random.default_rng(seed)
    frames = np.arange(num_frames)[:, None, None]
    periods = rng.uniform(*HANDHELD_PERIODS, size=(4, 3)) / motion.tempo
    cycles_per_frame = 1 / periods
    if motion.loop:
        cycles_per_frame = np.maximum(np.round(cycles_per_frame * num_frames), 1) / num_frames
    phases = rng.uniform(0, 2 * np.pi, size=(4, 3))
    weights = rng.uniform(0.5, 1.0, size=(4, 3))
    waves = weights * np.sin(2 * np.pi * cycles_per_frame * frames + phases)
    return strength * waves.sum(axis=-1) / weights.sum(axis=-1)


def _fit_inside(corners: np.ndarray, aspect: float) -> tuple[np.ndarray, float]:
    """Scale and centre the whole path so every window lies inside the image (±1 on both axes), no larger than
    it, and return the fitted windows with the narrowest one's size as a fraction of the image."""
    low, high = corners.min(axis=(0, 1)), corners.max(axis=(0, 1))
    extent = np.array([2 * aspect, 2.0])
    fit = min(1.0, *(extent / (high - low)))
    fitted = (corners - (low + high) / 2) * fit / np.array([aspect, 1.0])
    edges = np.stack([
        np.linalg.norm(fitted[:, 1] - fitted[:, 0], axis=-1), np.linalg.norm(fitted[:, 2] - fitted[:, 3], axis=-1),
        np.linalg.norm(fitted[:, 3] - fitted[:, 0], axis=-1), np.linalg.norm(fitted[:, 2] - fitted[:, 1], axis=-1),
    ])
    return fitted, float(edges.min()) / 2


def _is_upright_rectangle(quad: np.ndarray) -> bool:
    """Whether the window (top-left, top-right, bottom-right, bottom-left) is an axis-aligned rectangle."""
    (left, top), (right, top_right), (right_bottom, bottom), (left_bottom, bottom_left) = quad
    return top == top_right and bottom == bottom_left and left == left_bottom and right == right_bottom


def _homography(target: np.ndarray, source: np.ndarray) -> tuple[float, ...]:
    """PIL's PERSPECTIVE coefficients (a..h) that send output point (x, y) to the image point
    ((a x + b y + c) / (g x + h y + 1), (d x + e y + f) / (g x + h y + 1)), solved from four corner pairs."""
    rows, values = [], []
    for (x, y), (u, v) in zip(target, source):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        values += [u, v]
    return tuple(np.linalg.solve(np.array(rows), np.array(values)))
