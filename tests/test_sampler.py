"""Our I2VGen-XL sampler on the tiny random-weight model: determinism, progress, cancel, schedulers."""

import numpy as np
import pytest
import torch
from helpers import make_photo

from i2v.errors import GenerationCancelled, NonFiniteOutputError
from i2v.models.base import Hooks
from i2v.models.plan import RunPlan
from i2v.models.i2vgenxl.spec import SPEC
from i2v.request import GenerationRequest

PHOTO = make_photo(96, 64)


def request(**fields) -> RunPlan:
    """A request resolved by I2VGen-XL's spec, its defaults filled in, as the backend receives it."""
    settings = dict(image="photo.png", prompt="a cat turning its head", width=64, height=64, num_frames=8, steps=3, fps=8, seed=7)
    return SPEC.resolve(GenerationRequest(**{**settings, **fields}), PHOTO.size)


def run(backend, options=None, **fields):
    return backend.generate(request(**fields).model_copy(update=options or {}), PHOTO, Hooks())


def test_same_seed_same_frames_different_seed_different_frames(backend):
    first = run(backend).frames
    again = run(backend).frames
    other = run(backend, seed=8).frames
    assert first.shape == (8, 64, 64, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert np.abs(first.astype(int) - other).mean() > 1


def test_frames_are_not_constant(backend):
    frames = run(backend).frames
    assert frames.std() > 5
    assert len({frame.tobytes() for frame in frames}) > 1


def test_step_callback_fires_once_per_step(backend):
    calls = []
    backend.generate(request(steps=5), PHOTO, Hooks(on_step=lambda *args: calls.append(args)))
    assert [step for step, _, _ in calls] == [1, 2, 3, 4, 5]
    assert all(total == 5 for _, total, _ in calls)
    elapsed = [seconds for _, _, seconds in calls]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0


def test_cancel_at_step_2_of_10_stops_within_one_step(backend):
    steps = []
    unet_calls = []
    hook = backend.pipeline.unet.register_forward_hook(lambda *args: unet_calls.append(1))
    try:
        with pytest.raises(GenerationCancelled) as info:
            backend.generate(
                request(steps=10),
                PHOTO,
                Hooks(on_step=lambda step, total, elapsed: steps.append(step), cancelled=lambda: len(steps) >= 2),
            )
    finally:
        hook.remove()
    assert steps == [1, 2]
    assert len(unet_calls) == 2  # no third UNet pass was started
    assert (info.value.step, info.value.total) == (2, 10)
    assert "after step 2 of 10" in str(info.value)
    # The backend stays usable after a cancel.
    assert run(backend).frames.shape == (8, 64, 64, 3)


def test_stages_are_reported_in_order(backend):
    stages = []
    backend.generate(request(), PHOTO, Hooks(on_stage=stages.append))
    assert stages == ["encode", "denoise", "decode"]


def test_dpm_solver_runs_and_differs_from_ddim(backend):
    ddim = run(backend).frames
    dpm = run(backend, scheduler="dpmpp").frames
    assert np.isfinite(dpm).all() and dpm.shape == ddim.shape
    assert not np.array_equal(ddim, dpm)


def unet_batches(backend):
    """Record the batch size of every UNet call (2: guidance in one pass; 1: one of two split passes)."""
    batches = []
    hook = backend.pipeline.unet.register_forward_hook(lambda module, args, output: batches.append(args[0].shape[0]))
    return batches, hook


def test_split_guidance_matches_batched_guidance(backend):
    batches, hook = unet_batches(backend)
    try:
        batched = backend.pipeline(PHOTO, "a cat", "blurry", width=64, height=64, num_frames=8, target_fps=8, num_inference_steps=3, seed=3)
        in_one_pass = list(batches)
        batches.clear()
        split = backend.pipeline(
            PHOTO, "a cat", "blurry", width=64, height=64, num_frames=8, target_fps=8, num_inference_steps=3, seed=3, cfg_mode="split"
        )
    finally:
        hook.remove()
    assert in_one_pass == [2, 2, 2] and batches == [1, 1] * 3  # two passes per step really ran
    assert torch.allclose(batched.frames, split.frames, atol=1e-5)


def test_decode_chunk_size_does_not_change_frames(backend, monkeypatch):
    chunks = []
    decode = backend.pipeline.vae.decode
    monkeypatch.setattr(backend.pipeline.vae, "decode", lambda latents, *a, **k: chunks.append(len(latents)) or decode(latents, *a, **k))
    one = run(backend, options=dict(decode_chunk_size=1)).frames
    assert chunks == [1] * 8
    chunks.clear()
    four = run(backend, options=dict(decode_chunk_size=4)).frames
    assert chunks == [4, 4]  # the chunk size was used, not ignored
    assert np.abs(one.astype(int) - four).max() <= 1


def test_guidance_one_skips_the_unconditional_pass(backend):
    calls = []
    hook = backend.pipeline.unet.register_forward_hook(lambda module, args, kwargs_or_out: calls.append(args[0].shape[0]))
    try:
        run(backend, guidance_scale=1.0)
        run(backend, guidance_scale=9.0)
    finally:
        hook.remove()
    assert calls == [1, 1, 1, 2, 2, 2]


def test_rectangular_sizes(backend):
    frames = backend.generate(request(width=128, height=64), PHOTO, Hooks()).frames
    assert frames.shape == (8, 64, 128, 3)


def test_long_prompt_is_reported(backend):
    output = run(backend, prompt="a cat slowly turning its head to the right " * 4)
    assert any("CLIP reads the first 77" in note for note in output.notes)
    assert not any("CLIP reads" in note for note in run(backend).notes)  # only when it is too long


def test_non_finite_latents_are_detected(backend, monkeypatch):
    original = backend.pipeline.unet.forward

    def broken(*args, **kwargs):
        output = original(*args, **kwargs)
        return (output[0] * float("nan"),)

    monkeypatch.setattr(backend.pipeline.unet, "forward", broken)
    with pytest.raises(NonFiniteOutputError, match="NaN"):
        run(backend)
