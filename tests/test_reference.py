"""Our sampler against diffusers' reference I2VGenXLPipeline, on the same tiny components, seed and settings.

The reference still runs on transformers 5 in two ways: with `clip_skip=None` as it is, and with its default
`clip_skip=1` once the test (never the product) gives the flat v5 text encoder its old `text_model` attribute.
It draws the first-frame VAE sample from the global RNG, so the test seeds that with `seed + 1`, where our
sampler's second generator starts.
"""

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline, I2VGenXLPipeline
from helpers import make_photo

from i2v.models.i2vgenxl.sampler import I2VGenXLSampler

SEED = 11


@pytest.fixture(scope="module")
def pipelines(backend):
    ours: I2VGenXLSampler = backend.pipeline
    reference = I2VGenXLPipeline(**ours.components)
    reference.set_progress_bar_config(disable=True)
    return ours, reference


@pytest.fixture
def legacy_text_model(pipelines):
    """Give the transformers-5 text encoder the attribute the frozen reference reads (state_dict unchanged)."""
    encoder = pipelines[1].text_encoder
    object.__setattr__(encoder, "text_model", encoder)
    yield
    del encoder.__dict__["text_model"]


def reference_frames(reference, image, *, seed=SEED, **settings):
    torch.manual_seed(seed + 1)
    output = reference(
        image=image, generator=torch.Generator("cpu").manual_seed(seed), output_type="np", **settings
    ).frames
    return np.asarray(output[0])


def our_frames(ours, image, *, prompt, negative_prompt, target_fps, num_inference_steps, seed=SEED, **settings):
    return ours(
        image, prompt, negative_prompt, target_fps=target_fps, num_inference_steps=num_inference_steps, seed=seed, **settings
    ).frames.numpy()


CASES = {
    "square_cfg": dict(width=64, height=64, num_frames=8, guidance_scale=9.0),
    "wide_crop_cfg": dict(width=128, height=64, num_frames=8, guidance_scale=7.5),
    "no_guidance": dict(width=64, height=64, num_frames=8, guidance_scale=1.0),
    "chunked_decode": dict(width=64, height=64, num_frames=10, guidance_scale=9.0, decode_chunk_size=3),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("clip_skip", [1, None])
def test_reference_matches_our_sampler(pipelines, legacy_text_model, case, clip_skip):
    ours, reference = pipelines
    image = make_photo(150, 100, seed=3)
    settings = dict(
        prompt="a cat turning its head", negative_prompt="blurry, static", target_fps=8, num_inference_steps=4,
        clip_skip=clip_skip, **CASES[case],
    )
    expected = reference_frames(reference, image, **settings)
    actual = our_frames(ours, image, **settings)
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= 1e-4


def test_reference_unpatched_runs_with_clip_skip_none_only(pipelines):
    """Documents why we own the loop: the reference's default path breaks on transformers 5."""
    ours, reference = pipelines
    image = make_photo(96, 64)
    settings = dict(prompt="waves", negative_prompt="", width=64, height=64, num_frames=8, num_inference_steps=2, target_fps=16)
    expected = reference_frames(reference, image, clip_skip=None, **settings)
    assert np.abs(our_frames(ours, image, clip_skip=None, **settings) - expected).max() <= 1e-4
    with pytest.raises(AttributeError, match="text_model"):
        reference_frames(reference, image, **settings)


def test_reference_loader_reads_the_tiny_model(tiny_model):
    """`i2v make-tiny-model` writes the hub's layout: diffusers' generic loader picks the reference class."""
    loaded = DiffusionPipeline.from_pretrained(tiny_model)
    assert type(loaded).__name__ == "I2VGenXLPipeline"
    ours = I2VGenXLSampler.from_pretrained(tiny_model)
    for name in ("unet", "vae", "text_encoder", "image_encoder"):
        ours_state = getattr(ours, name).state_dict()
        for key, value in getattr(loaded, name).state_dict().items():
            assert torch.equal(value, ours_state[key]), (name, key)
