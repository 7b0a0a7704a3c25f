"""The camera-preview renderer, judged by measuring its frames: shifts by phase correlation, zoom by matching a
magnified first frame to the last, and outside-the-image samples by the fill colour."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from i2v.errors import GenerationCancelled
from i2v.models.camera_preview.render import describe_motion, render_camera
from i2v.refine.base import CAMERA_TAGS, TAGS

WIDTH, HEIGHT = 96, 64


def texture(width: int = 2 * WIDTH, height: int = 2 * HEIGHT, seed: int = 0) -> Image.Image:
    """Band-limited colour noise: detail at every position, so shifts and scales have one clear answer."""
    coarse = np.random.default_rng(seed).integers(0, 256, (height // 4, width // 4, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((width, height), Image.BICUBIC)


def render(tags, num_frames: int = 24, **options) -> np.ndarray:
    options = {"width": WIDTH, "height": HEIGHT, "seed": 0, **options}
    return render_camera(texture(), tags, num_frames=num_frames, **options)


def shift(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """How far the content moved from `before` to `after`, (dx, dy) in pixels, by phase correlation: the whole
    pixels from the peak of the correlation surface, the fraction from the slope of the remaining phase over
    the low frequencies (weighted least squares), which unlike a parabola through the peak is unbiased."""
    window = np.outer(np.hanning(before.shape[0]), np.hanning(before.shape[1]))
    a, b = (frame.astype(float).mean(axis=-1) for frame in (before, after))
    cross = np.fft.fft2((b - b.mean()) * window) * np.conj(np.fft.fft2((a - a.mean()) * window))
    surface = np.fft.ifft2(cross / np.maximum(np.abs(cross), 1e-12)).real
    whole = [(p - n if p > n / 2 else p) for p, n in zip(np.unravel_index(np.argmax(surface), surface.shape), surface.shape)]
    fy, fx = np.meshgrid(np.fft.fftfreq(a.shape[0]), np.fft.fftfreq(a.shape[1]), indexing="ij")
    residual = np.angle(cross * np.exp(2j * np.pi * (fx * whole[1] + fy * whole[0])))
    low = (np.abs(fx) < 0.15) & (np.abs(fy) < 0.15) & ((fx != 0) | (fy != 0))
    weights = np.abs(cross[low])
    design = -2 * np.pi * np.stack([fx[low], fy[low]], axis=1) * weights[:, None]
    fraction = np.linalg.lstsq(design, residual[low] * weights, rcond=None)[0]
    return whole[1] + fraction[0], whole[0] + fraction[1]


def consecutive_shifts(frames: np.ndarray) -> np.ndarray:
    return np.array([shift(frames[i], frames[i + 1]) for i in range(len(frames) - 1)])


def best_zoom(wide: np.ndarray, close: np.ndarray, scales, shifts=(0.0,)) -> tuple[float, float]:
    """The (scale, dx) for which `wide`, magnified by scale about a point dx pixels right of its centre, looks
    most like `close` away from the borders."""
    image = Image.fromarray(wide)
    best = (np.inf, 0.0, 0.0)
    for scale in scales:
        for dx in shifts:
            to_wide = (1 / scale, 0, WIDTH / 2 + dx - WIDTH / 2 / scale, 0, 1 / scale, HEIGHT / 2 - HEIGHT / 2 / scale)
            magnified = np.asarray(image.transform((WIDTH, HEIGHT), Image.AFFINE, to_wide, Image.BICUBIC), dtype=float)
            error = np.mean((magnified[12:-12, 12:-12] - close[12:-12, 12:-12]) ** 2)
            best = min(best, (error, scale, dx))
    return best[1], best[2]


@pytest.mark.parametrize(("tag", "axis", "sign"), [
    ("pan_left", 0, 1), ("pan_right", 0, -1), ("tilt_up", 1, 1), ("tilt_down", 1, -1),
])
def test_pans_and_tilts_move_the_content_smoothly_the_right_way(tag, axis, sign):
    shifts = consecutive_shifts(render([tag]))
    along, across = shifts[:, axis] * sign, shifts[:, 1 - axis]
    assert (along > -0.05).all(), along
    assert np.abs(across).max() < 0.1, across
    travel = {0: 0.20 * WIDTH, 1: 0.15 * HEIGHT}[axis]
    assert along.sum() == pytest.approx(travel, rel=0.1)
    assert np.abs(np.diff(along)).max() < 0.35, along  # eased: no jumps between frame steps
    assert along[0] < 0.3 * along.max() and along[-1] < 0.3 * along.max()  # starts and ends gently


def test_zoom_in_magnifies_the_centre_and_zoom_out_the_opposite():
    scales = np.linspace(1.0, 1.7, 36)
    zoom_in = render(["zoom_in"], num_frames=8)
    assert best_zoom(zoom_in[0], zoom_in[-1], scales)[0] == pytest.approx(1.35, abs=0.04)
    zoom_out = render(["zoom_out"], num_frames=8)
    assert best_zoom(zoom_out[-1], zoom_out[0], scales)[0] == pytest.approx(1.35, abs=0.04)


def test_camera_tags_combine():
    frames = render(["pan_left", "zoom_in"], num_frames=8)
    scale, dx = best_zoom(frames[0], frames[-1], np.linspace(1.2, 1.5, 16), np.arange(-26.0, 0.0))
    assert scale == pytest.approx(1.35, abs=0.04)
    assert dx == pytest.approx(-0.20 * WIDTH, abs=2)  # the camera ends left of where it started


@pytest.mark.parametrize(("tag", "sign"), [("orbit_left", -1), ("orbit_right", 1)])
def test_orbit_slides_the_background_and_brings_one_side_nearer(tag, sign):
    """orbit_left: the content slides left and its left half stretches vertically (nearer) while the right
    half shrinks; orbit_right the mirror image. Measured per quadrant between the first and last frame."""
    first, last = render([tag], num_frames=6)[[0, -1]]
    def moved(row, column):
        rows, columns = slice(row * HEIGHT // 2, (row + 1) * HEIGHT // 2), slice(column * WIDTH // 2, (column + 1) * WIDTH // 2)
        return shift(first[rows, columns], last[rows, columns])
    assert sign * shift(first, last)[0] > 0.04 * WIDTH
    near, far = (0, 1) if tag == "orbit_left" else (1, 0)
    assert moved(0, near)[1] < -0.4 and moved(1, near)[1] > 0.4  # the near side grows
    assert moved(0, far)[1] > 0.3 and moved(1, far)[1] < -0.3  # the far side shrinks


@pytest.mark.parametrize("tags", [[], ["static_camera"], ["static_camera", "pan_left", "handheld"], ["pan_left", "pan_right"],
                                  ["slow_motion", "loop"]])
def test_a_still_camera_gives_identical_frames_of_the_whole_image(tags):
    frames = render(tags, num_frames=6)
    assert (frames == frames[0]).all()
    whole = np.asarray(texture().resize((WIDTH, HEIGHT), Image.BOX), dtype=float)
    assert np.abs(frames[0] - whole).mean() < 1


def test_handheld_is_reproducible_by_seed_and_sways_smoothly():
    first, again, other = (render(["handheld"], num_frames=16, seed=seed) for seed in (5, 5, 6))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    shifts = consecutive_shifts(first)
    assert np.abs(shifts).max() < 1.0 and np.abs(shifts).max() > 0.02


def test_loop_returns_to_the_start_without_a_seam():
    """Out and back, periodic in the clip length: the last frame is one small step before the first, the same
    step as from the first to the second (so the wrap is an ordinary step), and the middle is the far end."""
    frames = render(["pan_left", "loop"], num_frames=16)
    assert np.array_equal(frames[1], frames[-1])
    back = shift(frames[-1], frames[0])[0]
    assert -1 < back < -0.3
    assert shift(frames[0], frames[8])[0] == pytest.approx(0.20 * WIDTH, rel=0.05)
    assert all(shift(frames[0], frames[i])[0] < shift(frames[0], frames[8])[0] for i in (6, 7, 9, 10))


def test_tempo_scales_the_travel():
    def travel(*tempo):
        frames = render(["pan_left", *tempo], num_frames=10)
        return shift(frames[0], frames[-1])[0]
    normal = travel()
    assert travel("slow_motion") == pytest.approx(0.5 * normal, rel=0.1)
    assert travel("fast_motion") == pytest.approx(1.6 * normal, rel=0.1)


@pytest.mark.parametrize(("width", "height", "num_frames"), [(97, 63, 5), (31, 17, 2), (32, 24, 240)])
def test_shape_and_dtype(width, height, num_frames):
    frames = render(["pan_right", "handheld"], num_frames=num_frames, width=width, height=height)
    assert frames.shape == (num_frames, height, width, 3) and frames.dtype == np.uint8


@pytest.mark.parametrize("tags", [["pan_left", "zoom_out", "tilt_down"], ["dolly_out", "orbit_left", "handheld"],
                                  ["orbit_right", "dolly_in", "timelapse"], ["zoom_in", "tilt_up", "handheld", "loop"]])
@pytest.mark.parametrize(("source", "size"), [((200, 140), (97, 63)), ((90, 150), (120, 80))])
def test_no_frame_samples_outside_the_image(tags, source, size):
    """PIL fills what lies outside the image with black: on a white image, any black means the window left it.
    Sizes that do not divide evenly, upscaling (second case) and three times the usual travel included."""
    white = Image.new("RGB", source, "white")
    frames = render_camera(white, tags, width=size[0], height=size[1], num_frames=9, seed=1, strength=3.0)
    assert frames.min() == 255


def test_cancel_stops_after_exactly_the_frames_done_and_progress_counts_each_frame():
    done = []
    with pytest.raises(GenerationCancelled) as stopped:
        render(["pan_left"], num_frames=10, cancelled=lambda: len(done) == 4, on_frame=lambda i, n: done.append((i, n)))
    assert (stopped.value.step, stopped.value.total) == (4, 10)
    assert done == [(1, 10), (2, 10), (3, 10), (4, 10)]
    progress = []
    render(["zoom_in"], num_frames=7, on_frame=lambda i, n: progress.append((i, n)))
    assert progress == [(i, 7) for i in range(1, 8)]


def test_every_tag_of_the_vocabulary_has_its_effect():
    """A camera tag other than static_camera moves the camera; tempo and loop alone leave it still."""
    for tag in TAGS:
        frames = render([tag], num_frames=4)
        moves = not np.array_equal(frames[0], frames[-1])
        assert moves == (tag in CAMERA_TAGS and tag != "static_camera"), tag
        assert describe_motion([tag])


def test_describe_motion():
    assert describe_motion(["pan_left", "zoom_in", "slow_motion"]) == "pans left while zooming in, slowly"
    assert describe_motion(["zoom_out", "timelapse", "loop"]) == "zooms out, as a timelapse, then back to the start (loops)"
    assert describe_motion(["tilt_up", "orbit_right", "handheld"]) == (
        "tilts up while orbiting right and swaying like a handheld camera")
    for still in ([], ["static_camera", "pan_left"], ["pan_left", "pan_right"], ["fast_motion"]):
        assert describe_motion(still) == "holds still"


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        render(["pan_left"], num_frames=0)
    with pytest.raises(ValueError):
        render(["pan_left"], strength=-1)
