"""Our Wan 2.2 backend against a direct call of diffusers' `WanImageToVideoPipeline` on the same tiny components,
inputs and seed: the frames must agree to 1e-5. The backend encodes the prompt, draws the noise and decodes the
latents itself (to report stages, cancel before the decode and seed on the CPU); this proves none of that
changes what the maintained pipeline computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKLWan, WanImageToVideoPipeline
from helpers import make_photo

from i2v.media.images import cover_crop
from i2v.models import base
from i2v.models.loading import resolve_model
from i2v.models.wan22 import backend as wan_backend
from i2v.models.wan22.backend import WanBackend
from i2v.models.wan22.spec import SPEC
from i2v.request import GenerationRequest


@pytest.fixture(scope="module")
def ours(wan_tiny_model):
    return WanBackend.load(resolve_model(str(wan_tiny_model)), device="cpu", dtype="fp32")


@pytest.fixture(scope="module")
def reference(wan_tiny_model):
    """diffusers' pipeline loaded on its own (no object shared with ours), fp32, VAE in fp32 as in ours."""
    vae = AutoencoderKLWan.from_pretrained(wan_tiny_model, subfolder="vae", dtype=torch.float32)
    pipeline = WanImageToVideoPipeline.from_pretrained(wan_tiny_model, vae=vae, dtype=torch.float32)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


CASES = {
    "guided": dict(width=64, height=64, num_frames=9, steps=3, guidance_scale=5.0),
    "unguided": dict(width=64, height=64, num_frames=5, steps=2, guidance_scale=1.0),
    "wide, cropped": dict(width=96, height=64, num_frames=9, steps=2, guidance_scale=4.0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_backend_matches_the_maintained_pipeline(ours, reference, wan_tiny_model, tmp_path, monkeypatch, case):
    settings = CASES[case]
    photo = make_photo(120, 64)  # wider than every case: the crop matters in "wide, cropped"
    path = tmp_path / "photo.png"
    photo.save(path)
    request = SPEC.resolve(GenerationRequest(image=path, prompt="a cat turns its head", model=str(wan_tiny_model), seed=11, **settings), photo.size)
    width, height = request.width, request.height

    decoded = []
    real_decode = wan_backend.decode
    monkeypatch.setattr(wan_backend, "decode", lambda *args: decoded.append(real_decode(*args)) or decoded[-1])
    frames = ours.generate(request, photo, base.Hooks()).frames

    expected = reference(
        image=cover_crop(photo, (width, height)), prompt=request.prompt, negative_prompt=request.negative_prompt,
        height=height, width=width, num_frames=request.num_frames, num_inference_steps=request.steps,
        guidance_scale=request.guidance_scale, generator=torch.Generator("cpu").manual_seed(11), output_type="np",
        max_sequence_length=SPEC.prompt.tokens,
    ).frames
    assert expected.shape == (1, request.num_frames, height, width, 3)
    assert decoded[0].shape == expected.shape
    assert np.abs(decoded[0] - expected).max() <= 1e-5
    assert np.array_equal(frames, (np.clip(decoded[0][0], 0, 1) * 255).round().astype(np.uint8))
    assert frames.std() > 0  # not a constant image: the comparison compared something


def test_seed_alone_decides_the_noise(ours, wan_tiny_model, tmp_path):
    """The global RNG does not matter (the noise comes from the request's seed on a CPU generator), and another
    seed gives other frames."""
    path = tmp_path / "photo.png"
    make_photo(64, 64).save(path)
    request = SPEC.resolve(GenerationRequest(
        image=path, prompt="waves", model=str(wan_tiny_model), width=64, height=64, num_frames=5, steps=2, seed=3,
    ), (64, 64))
    photo = make_photo(64, 64)
    torch.manual_seed(0)
    first = ours.generate(request, photo, base.Hooks()).frames
    torch.manual_seed(12345)
    again = ours.generate(request, photo, base.Hooks()).frames
    other = ours.generate(request.model_copy(update={"seed": 4}), photo, base.Hooks()).frames
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
