"""Out-of-memory recovery on the tiny model: OOM injected at the UNet and at the VAE decode, the ladder running out,
and the backend applying (and undoing) the plan's execution settings."""

from __future__ import annotations

import weakref
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from helpers import make_photo

from i2v.advisor import recovery
from i2v.advisor.device import DeviceInfo, GiB
from i2v.advisor.plan import unconstrained_plan
from i2v.advisor.recovery import (
    MemoryExhaustedError,
    is_out_of_memory,
    run_with_recovery,
)
from i2v.models.base import Hooks
from i2v.models.plan import RunPlan
from i2v.models.i2vgenxl.spec import SPEC
from i2v.request import GenerationRequest

PHOTO = make_photo(96, 64)
CPU = DeviceInfo(kind="cpu", name="CPU", total_bytes=64 * GiB, free_bytes=64 * GiB, source="given")


@pytest.fixture(autouse=True)
def i2v_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("I2V_HOME", str(tmp_path_factory.getbasetemp() / "advisor-home"))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny model is latency-bound: on a busy 2-core machine a second OpenMP thread turns 0.1 s runs into
    5-15 s of spinning. Restored for the rest of the session."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny(backend):
    """The shared backend, with chunking and weight placement put back to the defaults afterwards."""
    yield backend
    backend.generate(request(), PHOTO, Hooks())


def request(**fields) -> RunPlan:
    """Resolved by I2VGen-XL's spec, its defaults filled in, as a backend is given it."""
    settings = dict(image="photo.png", prompt="a cat turning its head", width=64, height=64, num_frames=8, steps=2, fps=8, seed=7)
    return SPEC.resolve(GenerationRequest(**{**settings, **fields}), PHOTO.size)


@contextmanager
def out_of_memory(module: torch.nn.Module, method: str, times: int = 1):
    """Make `module.method` raise CUDA's out-of-memory error on its first `times` calls, then behave."""
    original = getattr(module, method)
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) <= times:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate 2.00 GiB (injected in {method})")
        return original(*args, **kwargs)

    setattr(module, method, failing)
    try:
        yield calls
    finally:
        delattr(module, method)


def test_oom_in_the_unet_then_in_the_decode_finishes_two_rungs_down(tiny):
    plan = unconstrained_plan(request(), CPU)
    seen = []
    hooks = Hooks()  # the backend reports its stages here; recovery reads where the run was when it failed

    def attempt(current):
        return tiny.generate(current.run, PHOTO, hooks)

    with out_of_memory(tiny.pipeline.unet, "forward"), out_of_memory(tiny.pipeline.vae, "decode"):
        output, retries = run_with_recovery(plan, attempt, hooks=hooks, on_retry=seen.append)
    assert output.frames.shape == (8, 64, 64, 3) and output.frames.std() > 1
    assert retries == seen and [retry["stage"] for retry in retries] == ["denoise", "decode"]
    assert retries[0]["rung"].startswith("split guidance into two passes")
    assert "out of memory" in retries[0]["error"] and "injected in forward" in retries[0]["error"]
    assert "injected in decode" in retries[1]["error"]
    assert len(retries[1]["changes"]) == 2 and "frames" in retries[1]["plan"]
    for retry in retries:
        print(f"\nretry {retry['attempt']} at {retry['stage']}: {retry['rung']} -> {retry['plan']}")


def test_ladder_exhausted_raises_a_clear_error_after_freeing(tiny, monkeypatch):
    plan = unconstrained_plan(request(), CPU)
    held: list[weakref.ref] = []
    freed = []
    monkeypatch.setattr(recovery, "free_memory", lambda *args: freed.append(len([r for r in held if r() is not None])))

    hooks = Hooks()

    def attempt(current):
        activations = torch.ones(256, 1024)  # what a real failed attempt leaves in its frames
        held.append(weakref.ref(activations))
        return tiny.generate(current.run, PHOTO, hooks)

    with out_of_memory(tiny.pipeline.unet, "forward", times=100), pytest.raises(MemoryExhaustedError) as info:
        run_with_recovery(plan, attempt, hooks=hooks)
    message = str(info.value)
    print("\n" + message)
    assert "out of device memory while denoising" in message
    assert "64×64, 8 frames" in message and "feed-forward chunking" in message and "decode chunk 1 tiled" in message
    assert len(info.value.retries) == 3 and info.value.plan.run.ff_chunking
    assert freed and all(alive == 0 for alive in freed), "memory was freed only after the failed attempt let go"
    assert all(ref() is None for ref in held)


def test_other_errors_pass_through_untouched(tiny):
    plan = unconstrained_plan(request(), CPU)

    def attempt(current):
        raise ValueError("not a memory problem")

    with pytest.raises(ValueError, match="not a memory problem"):
        run_with_recovery(plan, attempt)


def test_mps_out_of_memory_counts_too():
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 17 GB, other allocations: 1 GB)"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


@contextmanager
def placements(pipeline):
    """Record, in order, each encoder's moves (with their destination), each encoder's forward and each UNet call:
    on a CPU run every device is the CPU, so where the weights go can only be seen in the order of these."""
    events: list[tuple[str, str]] = []
    encoders = [getattr(pipeline, name) for name in ("text_encoder", "image_encoder")]
    hooks = [pipeline.unet.register_forward_pre_hook(lambda *args: events.append(("unet", "forward")))]
    for name, module in zip(("text_encoder", "image_encoder"), encoders):

        def move(*args, _name=name, _to=module.to, **kwargs):
            events.append((_name, f"to {torch._C._nn._parse_to(*args, **kwargs)[0]}"))
            return _to(*args, **kwargs)

        def cpu(_name=name, _cpu=module.cpu):
            events.append((_name, "to cpu"))
            return _cpu()

        module.to, module.cpu = move, cpu
        hooks.append(module.register_forward_pre_hook(lambda *args, _name=name: events.append((_name, "forward"))))
    try:
        yield events
    finally:
        for hook in hooks:
            hook.remove()
        for module in encoders:
            del module.to, module.cpu


def between_encoding_and_denoising(events):
    """The events after the last encoder forward and before the first UNet call."""
    last_encoding = max(i for i, (name, what) in enumerate(events) if what == "forward" and name != "unet")
    first_step = events.index(("unet", "forward"))
    assert last_encoding < first_step
    return events[last_encoding + 1 : first_step]


def test_backend_applies_plan_settings_and_undoes_them(tiny):
    plain = tiny.generate(request(), PHOTO, Hooks()).frames
    options = request().model_copy(update=dict(cfg_mode="split", ff_chunking=True, offload="encoders"))
    with placements(tiny.pipeline) as events:
        chunked = tiny.generate(options, PHOTO, Hooks()).frames
    assert np.abs(plain.astype(int) - chunked).max() <= 1  # same clip, other memory layout
    # offload="encoders": both encoders leave the device once encoding is done, before the first denoising step.
    moved = between_encoding_and_denoising(events)
    assert ("text_encoder", "to cpu") in moved and ("image_encoder", "to cpu") in moved, events
    blocks = [module for module in tiny.pipeline.unet.modules() if hasattr(module, "_chunk_size")]
    assert blocks and all(block._chunk_size == 1 for block in blocks)
    # The next run (offload="model" falls back to none on a CPU) brings them back to the device before they encode,
    # and leaves them there.
    with placements(tiny.pipeline) as events:
        modelled = tiny.generate(request().model_copy(update=dict(offload="model")), PHOTO, Hooks())
    for name in ("text_encoder", "image_encoder"):
        assert events.index((name, f"to {tiny.device}")) < events.index((name, "forward")), events
    assert not [event for event in between_encoding_and_denoising(events) if event[1].startswith("to")], events
    assert modelled.frames.shape[0] == 8 and any("needs a CUDA device" in note for note in modelled.notes)
    assert all(block._chunk_size is None for block in blocks)
    assert np.array_equal(tiny.generate(request(), PHOTO, Hooks()).frames, plain)


# -- what a plan and each rung are called -------------------------------------------------------------------


def test_every_rung_of_every_model_is_labelled_with_that_models_parts_and_described():
    """Each rung a model's cost model offers, taken from a plan where it applies, gets a label naming that model's
    own parts (Wan: one text encoder and a transformer; I2VGen-XL: two encoders and a UNet), and describe_plan
    shows every setting a rung changed: offload, guidance, tiling, chunking, group offload, FP8 weights."""
    from i2v.advisor.plan import LADDER, part_names
    from i2v.models.registry import plugin

    def everything_off(backend, **fields):
        settings = dict(backend=backend, width=1280, height=704, num_frames=49, steps=2, guidance_scale=5.0, dtype="fp32",
                        decode_chunk_size=4)
        return RunPlan(**{**settings, **fields})

    names = {"wan22": ("the text encoder", "the transformer"), "i2vgenxl": ("the text and image encoders", "the UNet")}
    for backend, (encoders, denoiser) in names.items():
        assert part_names(backend) == {"encoders": encoders, "denoiser": denoiser}
        offered = plugin(backend).cost_model().rungs
        # Wan's plan holds a step cache with state, so that the rung turning it off applies too.
        base = everything_off(backend, num_frames=49, cache="pab") if backend == "wan22" else everything_off(backend, num_frames=24)
        labels = {}
        for rung in LADDER:
            after = rung.lower(base)
            if rung.name not in offered:
                continue
            assert after is not None, (backend, rung.name)
            labels[rung.name] = rung.label(base, after)
            described = recovery.describe_plan(after)
            for field, shown in (("group_offload", "streamed block by block (group offload)"),
                                 ("fp8_weights", "weights in FP8"), ("ff_chunking", "feed-forward chunking"),
                                 ("vae_tiling", "tiled"), ("cfg_mode", "two passes")):
                if getattr(after, field) != getattr(base, field):
                    assert shown in described, (rung.name, described)
            if after.offload != base.offload:
                assert f"offload={after.offload}" in described
            if after.cache != base.cache:
                assert f"{base.cache} step cache" not in described and f"{base.cache} step cache" in recovery.describe_plan(base)
        assert labels["offload_encoders"] == f"move {encoders} off the GPU after encoding"
        for rung, label in labels.items():
            assert "{" not in label, label
            if rung in ("group_offload", "fp8_weights", "ff_chunking"):
                assert f"{denoiser}'s" in label, label
        if backend == "wan22":
            assert {"group_offload", "fp8_weights", "drop_cache"} <= set(labels)
            assert labels["drop_cache"] == "turn the pab step cache off (slower: trades its speed-up for its memory)"
            assert "image encoder" not in " ".join(labels.values())


def test_describe_plan_names_group_offload_fp8_weights_and_the_cache():
    plan = RunPlan(backend="wan22", width=1280, height=704, num_frames=121, steps=50, dtype="bf16",
                   cfg_mode="split", offload="encoders", vae_tiling=True, group_offload=True, fp8_weights=True,
                   cache="pab")
    assert recovery.describe_plan(plan) == (
        "1280×704, 121 frames, bf16, offload=encoders, guidance=two passes, decode chunk 1 tiled, the transformer "
        "streamed block by block (group offload), the transformer's weights in FP8, pab step cache"
    )
    plain = plan.model_copy(update=dict(group_offload=False, fp8_weights=False, cache="off"))
    assert recovery.describe_plan(plain) == (
        "1280×704, 121 frames, bf16, offload=encoders, guidance=two passes, decode chunk 1 tiled"
    )
