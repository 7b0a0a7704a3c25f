"""Wan 2.2's step caches (`--cache`): off by default and then exactly the uncached pipeline; each cache runs, and
changes what the transformer computes (fewer block computations, other frames); a cancelled cached run leaves
nothing behind; every model refuses a cache it does not offer, naming the ones it does. Speed is measured in
bench/wan_cache.py, never asserted here."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from helpers import make_photo, run_cli

from i2v.errors import GenerationCancelled, InvalidInputError
from i2v.models import base
from i2v.models.camera_preview.spec import SPEC as CAMERA_PREVIEW
from i2v.models.i2vgenxl.spec import SPEC as I2VGENXL
from i2v.models.loading import resolve_model
from i2v.models.spec import ModelSpec
from i2v.models.wan22.backend import CACHE_CONFIGS, WanBackend
from i2v.models.wan22.spec import SPEC as WAN
from i2v.request import MODEL_FIELDS, GenerationRequest

CACHES = [cache for cache in WAN.caches if cache != "off"]
#: Enough steps for every cache to skip some (TaylorSeer runs the first 3 in full).
STEPS = 8


def request_for(model, path, **settings) -> GenerationRequest:
    return GenerationRequest(image=path, prompt="a cat turns its head", model=str(model), **settings)


# --- the request and the specs ------------------------------------------------------------------------------


def test_cache_is_a_model_field_off_by_default_on_wan_and_absent_elsewhere(tmp_path):
    assert "cache" in MODEL_FIELDS
    bare = request_for("x", tmp_path / "p.png")
    assert bare.cache is None
    applied = WAN.resolve(bare, (64, 64))
    assert applied.cache == "off" == WAN.default_cache
    assert "cache" not in applied.user_set  # the model's default, not the user's choice
    for spec in (I2VGENXL, CAMERA_PREVIEW):
        assert spec.caches == () and spec.default_cache is None and spec.resolve(bare, (64, 64)).cache is None
    with pytest.raises(ValueError, match="at most 32 characters"):
        request_for("x", tmp_path / "p.png", cache="x" * 33)


def test_wan_offers_the_caches_its_backend_configures():
    assert WAN.caches[0] == "off"
    assert set(CACHE_CONFIGS) == set(CACHES) == {"first-block", "taylorseer", "pab", "magcache"}


def test_magcache_reads_its_authors_curve_resampled_to_the_runs_steps():
    """The conditional half of the authors' interleaved 50-step curve (step 1 padded with 1.0), their setting, and
    diffusers' nearest-neighbour resampling for another step count (the authors' formula, per branch)."""
    from i2v.models.wan22 import magcache

    assert len(magcache.INTERLEAVED) == 2 * (magcache.CALIBRATED_STEPS - 1)
    assert magcache.CONDITIONAL[:3] == (1.0, 0.99512, 0.99559) and magcache.CONDITIONAL[-1] == 0.96655
    unconditional = magcache.INTERLEAVED[1::2]
    assert max(abs(c - u) for c, u in zip(magcache.CONDITIONAL[1:], unconditional)) < 0.0005
    full = CACHE_CONFIGS["magcache"](None, 50)
    assert full.mag_ratios.tolist() == pytest.approx(magcache.CONDITIONAL)
    assert (full.threshold, full.max_skip_steps, full.retention_ratio) == (0.06, 2, 0.2)
    fast = CACHE_CONFIGS["magcache"](None, 30)
    assert fast.num_inference_steps == 30 and len(fast.mag_ratios) == 30
    assert fast.mag_ratios.tolist() == pytest.approx([magcache.CONDITIONAL[round(i * 49 / 29)] for i in range(30)])


@pytest.mark.parametrize("cache", ["teacache", "OFF", ""])
def test_wan_refuses_a_cache_it_does_not_offer_naming_the_ones_it_does(tmp_path, cache):
    with pytest.raises(InvalidInputError) as caught:
        WAN.check(request_for("x", tmp_path / "p.png", cache=cache))
    assert caught.value.problems == [
        ("cache", f"must be one of off, first-block, taylorseer, pab, magcache for Wan 2.2 TI2V-5B, got {cache!r}")
    ]


@pytest.mark.parametrize("spec", [I2VGENXL, CAMERA_PREVIEW], ids=["i2vgenxl", "camera-preview"])
@pytest.mark.parametrize("cache", ["off", "first-block"])
def test_a_model_without_caches_refuses_any_cache(tmp_path, spec, cache):
    with pytest.raises(InvalidInputError) as caught:
        spec.check(request_for("x", tmp_path / "p.png", cache=cache))
    assert caught.value.problems == [("cache", f"{spec.label} has no step cache to choose; leave cache out")]


def test_a_spec_with_caches_must_offer_off():
    with pytest.raises(ValueError, match="must offer 'off'"):
        ModelSpec(**{**WAN.model_dump(), "caches": ("first-block",)})


# --- the backend ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ours(wan_tiny_model):
    return WanBackend.load(resolve_model(str(wan_tiny_model)), device="cpu", dtype="fp32")


@pytest.fixture(scope="module")
def pristine(wan_tiny_model):
    """A second backend on the same folder on which no cache is ever enabled: the uncached pipeline."""
    backend = WanBackend.load(resolve_model(str(wan_tiny_model)), device="cpu", dtype="fp32")

    def refuse(config):
        raise AssertionError(f"enable_cache was called on the uncached backend with {config}")

    backend.pipeline.transformer.enable_cache = refuse
    return backend


@pytest.fixture(scope="module")
def job(wan_tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("wan-cache") / "photo.png"
    make_photo(64, 64).save(path)
    request = request_for(wan_tiny_model, path, width=64, height=64, num_frames=9, steps=STEPS, seed=5)
    return request, WAN.resolve(request, (64, 64)), make_photo(64, 64)


def run(backend, job, cache, hooks=None):
    _, plan, photo = job
    return backend.generate(plan.model_copy(update={"cache": cache}), photo, hooks or base.Hooks())


def computations(backend):
    """Counts of the blocks' self-attention and feed-forward computations, while the returned hooks stay."""
    counts = {"attn1": 0, "ffn": 0}
    handles = []
    for block in backend.pipeline.transformer.blocks:
        for name, leaf in (("attn1", block.attn1.to_q), ("ffn", block.ffn.net[2])):
            handles.append(leaf.register_forward_hook(lambda *_, name=name: counts.__setitem__(name, counts[name] + 1)))
    return counts, handles


@pytest.fixture(scope="module")
def uncached(pristine, job):
    return run(pristine, job, None).frames


def test_off_is_the_uncached_pipeline_bit_for_bit_even_after_cached_runs(ours, job, uncached):
    for cache in CACHES:  # whatever ran before leaves nothing on the transformer
        run(ours, job, cache)
    calls = []
    real_enable = ours.pipeline.transformer.enable_cache
    ours.pipeline.transformer.enable_cache = lambda config: calls.append(config) or real_enable(config)
    try:
        output = run(ours, job, "off")
    finally:
        del ours.pipeline.transformer.enable_cache
    assert calls == []  # "off" never touches the transformer
    assert np.array_equal(output.frames, uncached)
    assert output.notes == []
    assert np.array_equal(run(ours, job, None).frames, uncached)  # a request never applied is uncached too


@pytest.mark.parametrize("cache", CACHES)
def test_each_cache_runs_skips_work_and_changes_the_frames(ours, job, uncached, cache):
    counts, handles = computations(ours)
    try:
        output = run(ours, job, cache)
    finally:
        for handle in handles:
            handle.remove()
    frames = output.frames
    assert frames.shape == uncached.shape == (9, 64, 64, 3) and frames.dtype == np.uint8
    assert frames.std() > 0
    # With guidance, two transformer calls a step, each through both blocks: 2 × 2 × STEPS of each when uncached.
    full = 2 * 2 * STEPS
    assert counts["attn1"] < full, f"{cache} computed every self-attention: it is not hooked into Wan's blocks"
    assert counts["ffn"] < full or cache == "pab"  # pab reuses self-attention only
    assert not np.array_equal(frames, uncached), f"{cache} left the frames exactly as they were"
    assert output.notes == [f"{cache} cache: faster, slightly different frames from the uncached run"]
    assert not ours.pipeline.transformer.is_cache_enabled
    assert np.array_equal(run(ours, job, cache).frames, frames)  # same seed, same cache, same frames


@pytest.mark.parametrize("cache", CACHES)
def test_a_cancelled_cached_run_leaves_no_cache_and_no_state(ours, job, uncached, cache):
    cached = run(ours, job, cache).frames
    steps = []
    hooks = base.Hooks(on_step=lambda step, total, elapsed: steps.append(step), cancelled=lambda: len(steps) >= 4)
    with pytest.raises(GenerationCancelled):
        run(ours, job, cache, hooks)
    assert steps == [1, 2, 3, 4]
    assert not ours.pipeline.transformer.is_cache_enabled
    assert np.array_equal(run(ours, job, "off").frames, uncached)  # the next uncached run: a fresh one
    assert np.array_equal(run(ours, job, cache).frames, cached)  # the next cached run starts from empty state


def test_the_backend_runs_the_plans_cache(pristine, ours, job, uncached):
    """A plan whose cache the advisor turned off to fit runs uncached (the pristine backend fails if any cache is
    enabled); a plan that kept it runs it."""
    _, plan, photo = job
    plain = pristine.generate(plan.model_copy(update={"cache": "off"}), photo, base.Hooks())
    assert np.array_equal(plain.frames, uncached) and plain.notes == []
    kept = ours.generate(plan.model_copy(update={"cache": "pab"}), photo, base.Hooks())
    assert kept.notes == ["pab cache: faster, slightly different frames from the uncached run"]


def test_the_clip_records_its_cache_and_warns(ours, job):
    from i2v.generation import generate

    request, _, _ = job
    result = generate(request.model_copy(update={"cache": "first-block"}), backend=ours, refiner=None)
    assert result.metadata["request"]["cache"] == "first-block"
    assert "first-block cache: faster, slightly different frames from the uncached run" in result.warnings
    plain = generate(request, backend=ours)
    assert plain.metadata["request"]["cache"] == "off"
    assert not any("cache" in warning for warning in plain.warnings)


# --- the CLI and the web UI -----------------------------------------------------------------------------------


@pytest.fixture
def one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_cli_cache_pab_runs_and_is_recorded(wan_tiny_model, photo_path, tmp_path, one_thread):
    out = tmp_path / "pab.mp4"
    result = run_cli(
        "generate", str(photo_path), "a cat turns its head", "--model", str(wan_tiny_model), "--width", "64",
        "--height", "64", "--frames", "9", "--steps", "4", "--seed", "3", "--cache", "pab", "-o", str(out),
    )
    assert result.returncode == 0, result.stderr
    metadata = json.loads(out.with_suffix(".json").read_text())
    assert metadata["request"]["cache"] == "pab"
    assert "warning: pab cache: faster, slightly different frames from the uncached run" in result.stderr


def test_cli_refuses_a_cache_the_model_does_not_offer(wan_tiny_model, tiny_model, photo_path, tmp_path, one_thread):
    result = run_cli("generate", str(photo_path), "x", "--model", str(wan_tiny_model), "--cache", "teacache",
                     "-o", str(tmp_path / "o.mp4"))
    assert result.returncode == 2
    assert "cache: must be one of off, first-block, taylorseer, pab, magcache for Wan 2.2 TI2V-5B, got 'teacache'" in result.stderr
    result = run_cli("generate", str(photo_path), "x", "--model", str(tiny_model), "--cache", "off",
                     "-o", str(tmp_path / "o.mp4"))
    assert result.returncode == 2
    assert "cache: I2VGen-XL has no step cache to choose; leave cache out" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o.mp4").exists()


def test_cli_help_names_each_models_caches():
    from i2v.cli import HELP

    assert "Wan 2.2 TI2V-5B: off, first-block, taylorseer, pab, magcache (default off)" in HELP["cache"]
    assert "I2VGen-XL: not used" in HELP["cache"] and "Camera preview: not used" in HELP["cache"]


def test_ui_offers_the_cache_for_wan_only():
    from i2v.web.ui_actions import spec_controls, spec_fields

    assert spec_controls(WAN)[-1] == dict(choices=list(WAN.caches), value="off", visible=True)
    assert spec_fields(WAN, None, "480p", 9, 24, 4, 5.0, "unipc", "taylorseer")["cache"] == "taylorseer"
    for spec in (I2VGENXL, CAMERA_PREVIEW):
        assert spec_controls(spec)[-1] == dict(choices=[], value=None, visible=False)
        assert "cache" not in spec_fields(spec, None, "512p", 16, 16, 4, 5.0, None, "pab")
