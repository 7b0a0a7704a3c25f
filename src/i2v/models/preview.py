"""Live previews: a cheap look at the clip while it denoises, for every model, from one place.

A preview is the sampler's current estimate of the clean latents (x0, not the noisy latents) mapped to RGB by a
linear projection (a 3×C matrix plus a bias) at latent resolution, upscaled a little: no VAE pass, so it costs
a tiny fraction of a step. The projection is fitted once per model from the model's own VAE: a few synthetic
clips are encoded, and least squares maps each latent pixel to the mean colour of the pixels it covers. It
works the same for released weights and for tiny random-weight test models, and copies no one's constants.
Fits are cached on disk (`cache_dir()`), keyed by a fingerprint of the VAE's config and weights, never written
into a model folder.

A model folder supplies only its own bits: a `LatentSpace` (its VAE and how its sampler's latents come from
pixels) and, inside its loop, the x0 estimate handed to `LivePreview.show` when `LivePreview.due(step)`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from i2v.models.base import Hooks

log = logging.getLogger(__name__)

#: Bumped when the fitting data or method changes, so old cached fits are not reused.
FIT_VERSION = 1
#: About this many previews per run (fewer when steps come faster than MIN_INTERVAL).
PREVIEWS_PER_RUN = 8
#: Seconds of wall time between two previews at least (the last step's is always shown).
MIN_INTERVAL = 1.0
#: Previews are upscaled (bilinear) to at most this many pixels on their long side.
MAX_SIDE = 256
#: Synthetic clips encoded for a fit, and their side in pixels.
FIT_CLIPS = 6
FIT_SIDE = 128
#: Ridge term of the least-squares fit (latents are O(1); this only keeps a degenerate VAE solvable).
RIDGE = 1e-4


@dataclass(frozen=True)
class LatentSpace:
    """What the shared fit needs of one model: its VAE and how its sampler's latents are made from pixels."""

    #: A short name for the convention (scaling, normalisation) `encode` applies; part of the cache key.
    name: str
    #: The VAE whose config and weights key the cached fit.
    vae: torch.nn.Module
    #: B×3×T×H×W pixels in [-1, 1] -> B×C×t×h×w latents exactly as the model's sampler sees them.
    encode: Callable[[torch.Tensor], torch.Tensor]
    #: The inverse, as the model's own decode stage does it: latents -> B×3×T×H×W pixels in [-1, 1].
    decode: Callable[[torch.Tensor], torch.Tensor]
    #: Pixels per latent pixel along each side.
    spatial: int
    #: 1: one latent frame per frame. k > 1: a causal video VAE: the first frame alone, then k frames per latent.
    temporal: int = 1


@dataclass(frozen=True)
class Projection:
    """Latent channels -> RGB in [-1, 1]: rgb = matrix @ latent + bias, per latent pixel."""

    matrix: np.ndarray  # 3×C
    bias: np.ndarray  # 3
    #: Root-mean-square error of the fit on its own data, in [-1, 1] RGB units (for diagnostics).
    rms_error: float = 0.0

    def apply(self, latents: torch.Tensor) -> torch.Tensor:
        """1×C×t×h×w (or C×t×h×w) latents -> t×3×h×w RGB in [-1, 1], float32, on the latents' device."""
        latents = latents[0] if latents.dim() == 5 else latents
        matrix = torch.as_tensor(self.matrix, dtype=torch.float32, device=latents.device)
        bias = torch.as_tensor(self.bias, dtype=torch.float32, device=latents.device)
        rgb = torch.einsum("rc,cthw->trhw", matrix, latents.float())
        return rgb + bias.view(1, 3, 1, 1)

    def to_json(self) -> dict:
        return {"matrix": self.matrix.tolist(), "bias": self.bias.tolist(), "rms_error": self.rms_error}

    @classmethod
    def from_json(cls, data: dict) -> Projection:
        return cls(np.asarray(data["matrix"], dtype=np.float32), np.asarray(data["bias"], dtype=np.float32),
                   float(data.get("rms_error", 0.0)))


def fit_projection(latents: np.ndarray, rgb: np.ndarray, ridge: float = RIDGE) -> Projection:
    """Least squares rgb ≈ matrix @ latent + bias over N samples: `latents` N×C, `rgb` N×3."""
    latents = np.asarray(latents, dtype=np.float64)
    rgb = np.asarray(rgb, dtype=np.float64)
    finite = np.isfinite(latents).all(axis=1) & np.isfinite(rgb).all(axis=1)  # a half-precision VAE may overflow
    latents, rgb = latents[finite], rgb[finite]
    if len(latents) < latents.shape[1]:
        raise ValueError(f"only {len(latents)} finite samples to fit a {latents.shape[1]}-channel projection")
    design = np.concatenate([latents, np.ones((latents.shape[0], 1))], axis=1)
    regulariser = ridge * len(design) * np.eye(design.shape[1])
    regulariser[-1, -1] = 0.0  # the bias is not shrunk
    solution = np.linalg.solve(design.T @ design + regulariser, design.T @ rgb)  # (C+1)×3
    error = float(np.sqrt(np.mean((design @ solution - rgb) ** 2)))
    return Projection(solution[:-1].T.astype(np.float32), solution[-1].astype(np.float32), error)


# -- fitting from a VAE -----------------------------------------------------------------------------------------


def synthetic_clips(count: int, side: int = FIT_SIDE, frames: int = 1, seed: int = 0) -> np.ndarray:
    """count×3×frames×side×side clips in [-1, 1]: smooth random colour fields with flat patches, edges and
    saturated colours (spanning the gamut), drifting a few pixels per frame so a video VAE sees motion."""
    rng = np.random.default_rng(seed)
    clips = np.empty((count, 3, frames, side, side), dtype=np.float32)
    margin = 2 * frames + 4
    for index in range(count):
        grid = torch.from_numpy(rng.uniform(-1, 1, (1, 3, 4 + index % 4, 4 + index % 4)).astype(np.float32))
        canvas = F.interpolate(grid, size=(side + margin, side + margin), mode="bicubic", align_corners=False)[0].numpy()
        for _ in range(3 + index % 3):  # rectangles of one colour, some saturated
            y, x = rng.integers(0, side, 2)
            h, w = rng.integers(side // 8, side // 2, 2)
            colour = rng.choice([-1.0, 1.0], 3) if rng.random() < 0.5 else rng.uniform(-1, 1, 3)
            canvas[:, y : y + h, x : x + w] = colour[:, None, None]
        canvas = np.clip(canvas, -1, 1)
        dy, dx = rng.integers(-2, 3, 2)
        for frame in range(frames):
            oy, ox = margin // 2 + dy * frame // 2, margin // 2 + dx * frame // 2
            clips[index, :, frame] = canvas[:, oy : oy + side, ox : ox + side]
    return clips


def latent_targets(clip: np.ndarray, spatial: int, temporal: int) -> np.ndarray:
    """A 3×T×H×W clip's colour at latent resolution, t×h×w×3: the mean of the pixels (and frames) each latent
    pixel covers."""
    pixels = torch.from_numpy(clip).permute(1, 0, 2, 3)  # T×3×H×W
    pooled = F.avg_pool2d(pixels, spatial)  # T×3×h×w
    if temporal > 1:
        groups = [pooled[:1]] + [pooled[start : start + temporal].mean(0, keepdim=True)
                                 for start in range(1, pooled.shape[0], temporal)]
        pooled = torch.cat(groups)
    return pooled.permute(0, 2, 3, 1).numpy()


def random_latents(like: torch.Tensor, seed: int) -> torch.Tensor:
    """Latents of `like`'s shape at the unit scale a sampler works in: a smooth random field plus finer noise."""
    generator = torch.Generator().manual_seed(seed)
    _, channels, frames, height, width = like.shape
    coarse = torch.randn(channels * frames, 1, 4, 4, generator=generator)
    smooth = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    fine = 0.5 * torch.randn(channels * frames, 1, height, width, generator=generator)
    return (smooth + fine).view(1, frames, channels, height, width).transpose(1, 2).to(like.device, like.dtype)


@torch.no_grad()
def fit_from_vae(space: LatentSpace) -> Projection:
    """Fit latent -> RGB on latents the model's VAE decodes, one clip at a time: synthetic clips encoded by its
    encoder, and as many random latents at the unit scale samplers work in. The target is what the model's
    decode stage shows for those latents, pooled to latent resolution: the clip itself for a good VAE, and still
    the right target for one that reconstructs poorly or encodes at another scale (a random-weight test model),
    so the preview approximates the final frames either way."""
    frames = 1 + space.temporal if space.temporal > 1 else 1
    parameter = next(space.vae.parameters())
    device = parameter.device if parameter.device.type != "meta" else torch.device("cpu")
    latents, targets = [], []
    for index, clip in enumerate(synthetic_clips(FIT_CLIPS, frames=frames)):
        encoded = space.encode(torch.from_numpy(clip)[None].to(device, parameter.dtype))
        for sample in (encoded, random_latents(encoded, seed=index)):
            decoded = space.decode(sample)[0].float().clamp(-1, 1).cpu().numpy()  # 3×T×H×W
            sample = sample[0].float().cpu()  # C×t×h×w
            target = latent_targets(decoded, space.spatial, space.temporal)
            if sample.shape[1:] != target.shape[:3]:
                raise ValueError(f"{space.name}: latents {tuple(sample.shape)} do not match the frames decoded {target.shape[:3]}")
            latents.append(sample.permute(1, 2, 3, 0).reshape(-1, sample.shape[0]).numpy())
            targets.append(target.reshape(-1, 3))
    return fit_projection(np.concatenate(latents), np.concatenate(targets))


_fingerprints: weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple, str]] = weakref.WeakKeyDictionary()


def fingerprint(space: LatentSpace) -> str:
    """The fit's cache key: the convention, the VAE's class and config, and each weight's name, shape and first
    values (in fp16, so fp16 and fp32 loads of the same weights agree). Reading a few values per tensor costs
    milliseconds where hashing every weight would cost seconds; it is remembered per loaded VAE, dtype and device."""
    parameter = next(space.vae.parameters(), None)
    placement = (space.name, str(parameter.dtype), str(parameter.device)) if parameter is not None else (space.name,)
    known = _fingerprints.get(space.vae)
    if known is not None and known[0] == placement:
        return known[1]
    key = _fingerprint(space)
    _fingerprints[space.vae] = (placement, key)
    return key


def _fingerprint(space: LatentSpace) -> str:
    digest = hashlib.sha256(f"v{FIT_VERSION}:{space.name}:{type(space.vae).__name__}".encode())
    config = getattr(space.vae, "config", {})
    digest.update(json.dumps(dict(config), sort_keys=True, default=str).encode())
    for name, tensor in space.vae.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}".encode())
        if tensor.device.type != "meta" and tensor.numel():
            digest.update(tensor.detach().flatten()[:256].to("cpu", torch.float16).numpy().tobytes())
    return digest.hexdigest()[:32]


def cache_dir() -> Path:
    """Where fits are kept: i2v's folder in the user cache (honours XDG_CACHE_HOME), or I2V_PREVIEW_CACHE."""
    from platformdirs import user_cache_dir

    return Path(os.environ.get("I2V_PREVIEW_CACHE") or Path(user_cache_dir("i2v", appauthor=False)) / "preview").expanduser()


_fits: dict[str, Projection] = {}
_fit_lock = threading.Lock()


def projection_for(space: LatentSpace) -> Projection:
    """The model's projection: from memory, else the disk cache, else fitted now and cached (once per model)."""
    key = fingerprint(space)
    with _fit_lock:
        if key in _fits:
            return _fits[key]
        path = cache_dir() / f"{space.name}-{key}.json"
        projection = None
        if path.is_file():
            try:
                projection = Projection.from_json(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError) as error:
                log.warning("ignoring the unreadable preview fit %s (%s); fitting again", path, error)
        if projection is None:
            started = time.perf_counter()
            projection = fit_from_vae(space)
            log.info("fitted %s's latent->RGB preview projection in %.1f s (rms error %.3f)", space.name,
                     time.perf_counter() - started, projection.rms_error)
            _save(path, projection)
        _fits[key] = projection
        return projection


def _save(path: Path, projection: Projection) -> None:
    """Best effort, atomically: an unwritable cache only means fitting again in the next process."""
    from i2v.media.files import write_json

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, projection.to_json())
    except OSError as error:
        log.warning("could not cache the preview fit at %s: %s", path, error)


# -- during a run ----------------------------------------------------------------------------------------------


class LivePreview:
    """When a run shows a preview, and making it: every `every`-th step (about PREVIEWS_PER_RUN per run) but not
    within MIN_INTERVAL seconds of the last one, and always after the last step."""

    def __init__(self, hooks: Hooks, total: int, projection: Projection, *, max_side: int = MAX_SIDE,
                 min_interval: float | None = None):
        self.hooks = hooks
        self.total = total
        self.projection = projection
        self.every = max(1, round(total / PREVIEWS_PER_RUN))
        self.max_side = max_side
        self.min_interval = MIN_INTERVAL if min_interval is None else min_interval
        self._last = -float("inf")
        self._first: tuple[Image.Image, np.ndarray] | None = None

    def due(self, step: int) -> bool:
        """Whether step `step` (1-based, after it ran) should be shown: ask before computing x0 for it."""
        if step >= self.total:
            return True
        return step % self.every == 0 and time.monotonic() - self._last >= self.min_interval

    @torch.no_grad()
    def show(self, step: int, x0: torch.Tensor, first_frame: Image.Image | None = None) -> None:
        """Project the x0 estimate (1×C×t×h×w) and hand the frames to `hooks.preview` as uint8 t×H×W×3.
        `first_frame` replaces frame 0 where the model conditions on the image there instead of denoising it."""
        self._last = time.monotonic()
        rgb = self.projection.apply(x0)  # t×3×h×w
        height, width = rgb.shape[-2:]
        scale = min(self.max_side / max(height, width), 8.0)
        if scale > 1:
            rgb = F.interpolate(rgb, size=(round(height * scale), round(width * scale)), mode="bilinear", align_corners=False)
        frames = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        if first_frame is not None:
            if self._first is None or self._first[0] is not first_frame or self._first[1].shape != frames.shape[1:]:
                small = first_frame.convert("RGB").resize((frames.shape[2], frames.shape[1]), Image.BILINEAR)
                self._first = (first_frame, np.asarray(small))
            frames[0] = self._first[1]
        self.hooks.preview(step, self.total, frames)


def live_preview(hooks: Hooks, total: int, space: Callable[[], LatentSpace]) -> LivePreview | None:
    """A LivePreview when the caller wants previews; None otherwise, or when the projection cannot be had (a
    preview is never worth failing a job over: the run goes on without one and the log says why)."""
    if not hooks.wants_preview or total < 1:
        return None
    try:
        return LivePreview(hooks, total, projection_for(space()))
    except Exception as error:  # noqa: BLE001 - see above
        log.warning("no live preview for this run: %s: %s", type(error).__name__, error)
        return None
