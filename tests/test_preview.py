"""Live previews, model side: the latent -> RGB fit, its cache, and the previews the tiny models emit while they
denoise. (The job side, files, REST and SSE: test_preview_api.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from i2v.models import preview
from i2v.models.base import Hooks
from i2v.models.loading import resolve_model
from i2v.models.preview import LatentSpace, fit_from_vae, fit_projection, projection_for
from i2v.models.registry import spec_for
from i2v.request import GenerationRequest


@pytest.fixture(autouse=True)
def every_step(monkeypatch, tmp_path):
    """Tiny runs take milliseconds a step: drop the once-a-second limit, fit on half the clips, and keep fits in
    this test's folder."""
    monkeypatch.setattr(preview, "MIN_INTERVAL", 0.0)
    monkeypatch.setattr(preview, "FIT_CLIPS", 4)
    monkeypatch.setenv("I2V_PREVIEW_CACHE", str(tmp_path / "fits"))


def test_fit_recovers_a_known_linear_map():
    rng = np.random.default_rng(0)
    matrix, bias = rng.normal(size=(3, 16)), rng.normal(size=3)
    latents = rng.normal(size=(2000, 16))
    fitted = fit_projection(latents, latents @ matrix.T + bias + rng.normal(scale=1e-3, size=(2000, 3)), ridge=0.0)
    assert np.allclose(fitted.matrix, matrix, atol=1e-3) and np.allclose(fitted.bias, bias, atol=1e-3)
    assert fitted.rms_error < 2e-3


class LinearVAE(torch.nn.Module):
    """A VAE whose decoder is exactly linear per latent pixel (then upsampled in space, and in time like a causal
    video VAE: frame 0 alone, then `temporal` frames per latent), so a fit that pools pixels and frames the way
    the latents cover them recovers its map exactly, and one that misaligns them does not."""

    def __init__(self, channels: int, spatial: int, temporal: int):
        super().__init__()
        generator = torch.Generator().manual_seed(1)
        self.spatial, self.temporal = spatial, temporal
        self.mix = torch.nn.Parameter(torch.randn(channels, 3, generator=generator))  # encoder: pooled RGB -> C
        self.matrix = torch.randn(3, channels, generator=generator)
        self.bias = torch.tensor([0.1, -0.2, 0.05])

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        frames = pixels[0].transpose(0, 1)  # T×3×H×W
        pooled = torch.nn.functional.avg_pool2d(frames, self.spatial)
        if self.temporal > 1:
            pooled = torch.cat([pooled[:1], *[pooled[i : i + self.temporal].mean(0, keepdim=True) for i in range(1, len(pooled), self.temporal)]])
        return torch.einsum("cr,trhw->cthw", self.mix, pooled)[None]

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        rgb = torch.einsum("rc,cthw->rthw", self.matrix, latents[0]) + self.bias.view(3, 1, 1, 1)
        rgb = rgb.repeat_interleave(self.spatial, 2).repeat_interleave(self.spatial, 3)
        if self.temporal > 1:
            rgb = torch.cat([rgb[:, :1], rgb[:, 1:].repeat_interleave(self.temporal, 1)], dim=1)
        return rgb[None]


@pytest.mark.parametrize("spatial,temporal", [(8, 1), (16, 4)])
def test_fit_from_a_vae_pools_pixels_and_frames_as_its_latents_cover_them(spatial, temporal):
    vae = LinearVAE(channels=6, spatial=spatial, temporal=temporal)
    # Keep decoded colours inside [-1, 1] (the fit clamps what a decoder returns, as frames are clamped).
    vae.matrix *= 0.05
    space = LatentSpace("linear", vae, vae.encode, vae.decode, spatial=spatial, temporal=temporal)
    fitted = fit_from_vae(space)
    assert fitted.rms_error < 1e-4
    assert np.allclose(fitted.matrix, vae.matrix.numpy(), atol=1e-3) and np.allclose(fitted.bias, vae.bias.numpy(), atol=1e-3)


def test_a_fit_is_made_once_per_vae_and_cached_on_disk_not_in_the_model_folder(tmp_path, monkeypatch):
    vae = LinearVAE(channels=4, spatial=8, temporal=1)
    space = LatentSpace("linear", vae, vae.encode, vae.decode, spatial=8)
    fits = []
    monkeypatch.setattr(preview, "fit_from_vae", lambda s: fits.append(s) or fit_projection(np.eye(4), np.ones((4, 3))))
    first = projection_for(space)
    files = list((tmp_path / "fits").glob("linear-*.json"))
    assert len(files) == 1 and set(json.loads(files[0].read_text())) == {"matrix", "bias", "rms_error"}
    preview._fits.clear()  # a new process: read from disk, not fitted again
    again = projection_for(space)
    assert len(fits) == 1 and np.array_equal(first.matrix, again.matrix)
    other = LinearVAE(channels=4, spatial=8, temporal=1)
    with torch.no_grad():
        other.mix.add_(1.0)  # the same architecture with other weights: another fit
    projection_for(LatentSpace("linear", other, other.encode, other.decode, spatial=8))
    assert len(fits) == 2 and len(list((tmp_path / "fits").glob("linear-*.json"))) == 2


# -- the tiny models -------------------------------------------------------------------------------------------


def run_with_previews(model, seed=0, size=64, frames=8, steps=8, **hooks):
    from i2v.models.registry import plugin_for

    source = resolve_model(str(model))
    backend = plugin_for(str(model)).backend_class().load(source, device="cpu", dtype="fp32")
    previews = []
    request = spec_for(str(model)).resolve(GenerationRequest(
        image="photo.png", prompt="a cat turns its head", model=str(model), width=size, height=size,
        num_frames=frames, steps=steps, seed=seed), (size, size))
    hooks = Hooks(on_preview=lambda step, total, shown: previews.append((step, total, shown.copy())), **hooks)
    image = Image.new("RGB", (size, size), (200, 120, 40))
    image.paste((30, 60, 200), (0, 0, size // 2, size))
    output = backend.generate(request, image, hooks)
    return backend, output.frames, previews


def at_latent_size(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Frames box-filtered to the latent grid, each frame's mean colour taken off (what a projection's bias and
    a random decoder's flat tint would otherwise dominate)."""
    small = np.stack([np.asarray(Image.fromarray(frame).resize((width, height), Image.BOX)) for frame in frames]).astype(float)
    return small - small.mean(axis=(1, 2), keepdims=True)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_tiny_i2vgenxl_previews_resemble_the_final_clip(tiny_model):
    """8 steps, a preview after each (the interval limit is off): uint8 F×H×W×3 at 8× the 8×8 latent grid, steps
    in order ending at the total. On this random-weight model the last preview correlates with the final frames
    far more than a preview of random latents does (seeds 0-7: last 0.22-0.31, random -0.05-0.05). That the
    last beats the first holds for 6 of those 8 seeds only (the random UNet's x0 hardly changes), so it is not
    asserted."""
    backend, final, previews = run_with_previews(tiny_model, seed=0)
    assert [step for step, _, _ in previews] == list(range(1, 9)) and {total for _, total, _ in previews} == {8}
    for _, _, shown in previews:
        assert shown.dtype == np.uint8 and shown.shape == (8, 64, 64, 3)
    target = at_latent_size(final, 8, 8)
    last = correlation(at_latent_size(previews[-1][2], 8, 8), target)
    projection = projection_for(backend.pipeline.latent_space())
    noise = torch.randn((1, 4, 8, 8, 8), generator=torch.Generator().manual_seed(12345))  # not the run's own noise
    random = ((projection.apply(noise).clamp(-1, 1) + 1) * 127.5).permute(0, 2, 3, 1).numpy()
    random = random - random.mean(axis=(1, 2), keepdims=True)
    assert last > 0.2 and last > correlation(random, target) + 0.15


def test_tiny_wan_previews_are_the_projected_x0_with_the_image_as_frame_zero(wan_tiny_model, monkeypatch):
    """Wan's preview is UniPC's x0 estimate projected; after the last step that estimate is the latents the VAE
    decodes, so the last preview is their projection. Frame 0 is the input image (the pipeline conditions on it
    there). The random tiny VAE decodes nothing a linear map can follow (correlation near 0 at every step), so
    resemblance is checked on I2VGen-XL only."""
    import i2v.models.wan22.backend as wan

    decoded = []
    original = wan.decode
    monkeypatch.setattr(wan, "decode", lambda pipeline, latents: decoded.append(latents.clone()) or original(pipeline, latents))
    backend, final, previews = run_with_previews(wan_tiny_model, size=64, frames=5, steps=3)
    assert [step for step, _, _ in previews] == [1, 2, 3] and final.shape == (5, 64, 64, 3)
    for _, _, shown in previews:
        assert shown.dtype == np.uint8 and shown.shape == (2, 32, 32, 3)  # 2 latent frames of 4×4, upscaled 8×
    projection = projection_for(wan.latent_space(backend.pipeline))
    rgb = torch.nn.functional.interpolate(projection.apply(decoded[0]), size=(32, 32), mode="bilinear", align_corners=False)
    expected = ((rgb.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy()
    assert np.abs(previews[-1][2][1:].astype(float) - expected[1:]).max() <= 1
    first_frame = previews[-1][2][0]
    assert tuple(first_frame[0, 0]) == (30, 60, 200) and tuple(first_frame[0, -1]) == (200, 120, 40)


def test_no_preview_is_computed_unless_asked(tiny_model, monkeypatch):
    """Without an on_preview hook (the CLI, the Python API by default) nothing is fitted or projected."""
    monkeypatch.setattr(preview, "projection_for", lambda space: pytest.fail("fitted without a preview hook"))
    monkeypatch.setattr(preview.LivePreview, "show", lambda *args, **kwargs: pytest.fail("a preview without a hook"))
    from i2v.models.i2vgenxl.backend import I2VGenXLBackend

    backend = I2VGenXLBackend.load(resolve_model(str(tiny_model)), device="cpu", dtype="fp32")
    request = spec_for(str(tiny_model)).resolve(GenerationRequest(image="photo.png", prompt="x", width=64, height=64,
                                                                 num_frames=8, steps=2, seed=0), (64, 64))
    backend.generate(request, Image.new("RGB", (64, 64)), Hooks())


def test_about_eight_previews_a_run_at_most_one_a_second_and_always_the_last(monkeypatch):
    """50 steps: due every 6th step; at 0.4 s a step, the one-second limit thins them; the last step always shows."""
    now = [0.0]
    monkeypatch.setattr(preview.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(preview, "MIN_INTERVAL", 1.0)
    shown = []
    live = preview.LivePreview(Hooks(on_preview=lambda step, total, frames: shown.append(step)), 50,
                               fit_projection(np.eye(4), np.zeros((4, 3))))
    for step in range(1, 51):
        now[0] = 0.4 * step
        if live.due(step):
            live.show(step, torch.zeros(1, 4, 2, 4, 4))
    assert live.every == 6 and shown == [6, 12, 18, 24, 30, 36, 42, 48, 50]
    live = preview.LivePreview(Hooks(on_preview=lambda step, total, frames: shown.append(step)), 50,
                               fit_projection(np.eye(4), np.zeros((4, 3))))
    shown.clear()
    for step in range(1, 51):
        now[0] = 100 + 0.1 * step  # fast steps: one preview a second at most
        if live.due(step):
            live.show(step, torch.zeros(1, 4, 2, 4, 4))
    assert shown == [6, 18, 30, 42, 50]


def test_a_vae_that_overflows_gives_no_preview_and_the_run_goes_on(tiny_model, monkeypatch, caplog):
    """A half-precision VAE can return inf/NaN: those samples are dropped, and with too few left there is no
    preview (a warning says why) while the job runs as before."""
    rng = np.random.default_rng(0)
    latents, rgb = rng.normal(size=(100, 4)), rng.normal(size=(100, 3))
    rgb[:10] = np.nan
    assert np.isfinite(fit_projection(latents, rgb).matrix).all()
    rgb[:97] = np.inf
    with pytest.raises(ValueError, match="finite"):
        fit_projection(latents, rgb)
    monkeypatch.setattr(preview, "fit_from_vae", lambda space: fit_projection(latents, rgb))
    preview._fits.clear()
    _, final, previews = run_with_previews(tiny_model, steps=2)
    assert previews == [] and final.shape == (8, 64, 64, 3) and "no live preview" in caplog.text
