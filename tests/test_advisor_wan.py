"""The advisor for Wan 2.2 TI2V-5B: its cost model on the real-size architecture traced on the meta device, its rungs
(group offload and FP8 weights among them), and the plans for 720p × 121 frames on 24, 16 and 12 GiB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from i2v.advisor.device import GiB, probe_device
from i2v.advisor.plan import make_plan, next_rung, unconstrained_plan
from i2v.advisor.report import plan_report
from i2v.models.plan import RunPlan
from i2v.models.registry import spec_for
from i2v.request import GenerationRequest

MODEL = "wan2.2-ti2v-5b"
#: A 3:2 photo (examples/cat.jpg is 451×300): 720p is 1152×768 at that aspect.
PHOTO = (451, 300)
#: Parameters counted on the meta device at the released configs (/tmp/notes/wan.md, section 4), and the size of
#: the hub repository's text_encoder folder (three shards: 4.94 + 4.98 + 1.44 GB, bf16).
TRANSFORMER_PARAMETERS = 5.000e9
VAE_PARAMETERS = 704.7e6
TEXT_ENCODER_BF16_BYTES = 4.94e9 + 4.98e9 + 1.44e9


@pytest.fixture(autouse=True)
def i2v_home(tmp_path_factory, monkeypatch):
    """Trace cache in a temporary folder, shared by this module's tests (the in-process cache is shared anyway)."""
    monkeypatch.setenv("I2V_HOME", str(tmp_path_factory.getbasetemp() / "advisor-wan-home"))
    monkeypatch.delenv("I2V_VRAM", raising=False)


def request(**fields) -> GenerationRequest:
    return GenerationRequest(image="photo.png", prompt="a cat turning its head", model=MODEL, **fields)


def reference(**fields) -> GenerationRequest:
    """The model's reference run: 720p, 121 frames, 50 steps (frames and size fixed by the user)."""
    return request(resolution="720p", num_frames=121, steps=50, **fields)


def resolved(wanted: GenerationRequest, image_size: tuple[int, int]) -> RunPlan:
    """`wanted` resolved by its model's spec for an image of `image_size`, as the advisor is given it."""
    return spec_for(wanted.model).resolve(wanted, image_size)


# -- weights ----------------------------------------------------------------------------------------------


def test_weight_bytes_match_the_published_parameter_counts():
    """bf16 transformer ≈ 5.000 B × 2 bytes, fp32 VAE (as the backend loads it) ≈ 704.7 M × 4, UMT5 in bf16 ≈ the
    hub's 11.4 GB; fp32 doubles the transformer; FP8 storage halves it (embedders, norms and float32 modules stay)."""
    from i2v.models.wan22.cost import weight_bytes

    bf16, fp32 = weight_bytes("bf16"), weight_bytes("fp32")
    assert bf16["transformer"]["total"] == pytest.approx(TRANSFORMER_PARAMETERS * 2, rel=0.02)
    assert fp32["transformer"]["total"] == pytest.approx(TRANSFORMER_PARAMETERS * 4, rel=0.02)
    assert bf16["vae"]["total"] == fp32["vae"]["total"] == pytest.approx(VAE_PARAMETERS * 4, rel=0.02)
    assert bf16["text_encoder"]["total"] == pytest.approx(TEXT_ENCODER_BF16_BYTES, rel=0.02)
    # fp16: transformers keeps UMT5's `wo` projections in float32 (24 layers × 10240 × 4096 × 2 more bytes).
    fp16 = weight_bytes("fp16")
    assert fp16["text_encoder"]["total"] - bf16["text_encoder"]["total"] == 24 * 10240 * 4096 * 2
    fp8 = bf16["transformer"]["fp8"]
    assert 0.49 < fp8["total"] / bf16["transformer"]["total"] < 0.53
    assert fp8["largest_block"] * 2 == pytest.approx(bf16["transformer"]["largest_block"], rel=0.01)  # its norms stay
    assert bf16["transformer"]["blocks"] + bf16["transformer"]["outside_blocks"] == bf16["transformer"]["total"]


# -- the plans ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vram", ["24GiB", "16GiB", "12GiB"])
def test_720p_121_frames_fits_24_16_and_12_gib_naming_its_changes(vram):
    report = plan_report(reference(), PHOTO, vram=vram)
    plan = report["plan"]
    print(f"\n{vram}: as requested {report['unconstrained_peak_bytes'] / GiB:.2f} GiB, planned "
          f"{report['predicted_peak_bytes'] / GiB:.2f} of {report['budget_bytes'] / GiB:.2f} GiB: {report['changes']}")
    assert report["fits"] and report["predicted_peak_bytes"] <= report["budget_bytes"]
    assert not report["unconstrained_fits"]
    assert report["unconstrained_peak_bytes"] > report["predicted_peak_bytes"]
    # Frames and size were fixed by the user: the memory came from placement, tiling and storage.
    assert (plan["width"], plan["height"], plan["frames"], plan["steps"]) == (1152, 768, 121, 50)
    assert plan["backend"] == "wan22" and plan["cfg_mode"] == "split"  # guidance is two batch-1 passes
    assert report["changes"] and all(": −" in change for change in report["changes"])
    assert {"group_offload", "fp8_weights"} <= set(plan)
    assert set(report["stages"]) == {"encode", "denoise", "decode"}


def test_a_smaller_card_goes_further_down_the_ladder():
    plans = {vram: make_plan(resolved(reference(), PHOTO), probe_device(vram=vram)) for vram in ("24GiB", "16GiB", "12GiB")}
    assert len(plans["24GiB"].changes) < len(plans["16GiB"].changes) <= len(plans["12GiB"].changes)
    assert plans["24GiB"].predicted_peak_bytes > plans["16GiB"].predicted_peak_bytes > plans["12GiB"].predicted_peak_bytes
    # The text encoder leaving after encoding is the first and largest win (≈ its 10.6 GiB of bf16 weights).
    first = plans["24GiB"].changes[0]
    assert first.startswith("move the text encoder off the GPU after encoding: −")  # Wan has no image encoder
    assert float(first.split("−")[1].split()[0]) > 10
    # Whatever the card, a plan never asks diffusers for model or sequential offload beside group offload.
    for plan in plans.values():
        assert not (plan.run.group_offload and plan.run.offload in ("model", "sequential"))
        options = plan.run
        assert (options.group_offload, options.fp8_weights, options.offload) == (plan.run.group_offload, plan.run.fp8_weights, plan.run.offload)


def test_each_rung_lowers_the_stage_it_targets():
    from i2v.models.wan22.cost import COST, weight_bytes

    base = RunPlan(backend="wan22", width=1280, height=704, num_frames=121, steps=50, dtype="bf16", cfg_mode="split", guidance_scale=9.0)
    sizes = weight_bytes("bf16")

    def stage(plan, name, part="total_bytes"):
        return getattr(COST.predict_peak(plan).stages[name], part)

    encoders = base.model_copy(update=dict(offload="encoders"))
    assert stage(base, "denoise", "weights_bytes") - stage(encoders, "denoise", "weights_bytes") == sizes["text_encoder"]["total"]
    tiled = encoders.model_copy(update=dict(vae_tiling=True))
    assert stage(tiled, "decode", "activation_bytes") < stage(encoders, "decode", "activation_bytes") / 2
    model = tiled.model_copy(update=dict(offload="model"))
    assert stage(model, "encode") < stage(tiled, "encode") and stage(model, "decode") < stage(tiled, "decode")
    grouped = model.model_copy(update=dict(offload="encoders", group_offload=True))
    assert stage(grouped, "denoise", "weights_bytes") < stage(model, "denoise", "weights_bytes") - 8 * GiB
    fp8 = model.model_copy(update=dict(fp8_weights=True))
    saved = stage(model, "denoise", "weights_bytes") - stage(fp8, "denoise", "weights_bytes")
    assert saved == sizes["transformer"]["total"] - sizes["transformer"]["fp8"]["total"] > 4.5 * GiB
    sequential = model.model_copy(update=dict(offload="sequential"))
    assert all(stage(sequential, name) < stage(model, name) for name in ("encode", "denoise"))
    # Guidance doubles the FLOPs of the denoiser, not its memory (two batch-1 passes, one after the other).
    unguided = base.model_copy(update=dict(guidance_scale=1.0))
    assert COST.predict_peak(base).flops["denoise"] == 2 * COST.predict_peak(unguided).flops["denoise"]
    assert stage(base, "denoise") == stage(unguided, "denoise")


def test_the_transformer_activations_scale_with_tokens():
    """720p × 121 frames is 27,280 tokens (31 latent frames of 22 × 40 patches); 480p × 81 is 21 × 15 × 26."""
    from i2v.models.wan22.cost import COST

    def denoise(width, height, frames):
        plan = RunPlan(backend="wan22", width=width, height=height, num_frames=frames, steps=1, guidance_scale=9.0)
        return COST.predict_peak(plan).stages["denoise"].activation_bytes

    big, small = denoise(1280, 704, 121), denoise(832, 480, 81)
    assert big / small == pytest.approx(27280 / (21 * 15 * 26), rel=0.15)
    assert 3 * GiB < big < 8 * GiB


def test_recovery_steps_through_the_new_rungs():
    """A run out of memory while denoising steps down the rungs that lower the denoiser's peak first: the text
    encoder off, group offload, FP8 weights, then sequential offload; none of them needs the model reloaded, and
    the ladder ends with everything taken."""
    plan = unconstrained_plan(resolved(reference(), PHOTO), probe_device(vram="24GiB"))
    names = []
    while (lower := next_rung(plan, stage="denoise")) is not None:
        names.append(lower.changes[-1].split(" (")[0].split(":")[0])
        plan = lower
    assert names[:4] == [
        "move the text encoder off the GPU after encoding",
        "stream the transformer's blocks to the GPU one at a time",
        "store the transformer's weights in FP8, computed in half precision",
        "stream the weights layer by layer",
    ]
    assert plan.run.offload == "sequential" and plan.run.fp8_weights and plan.run.vae_tiling and not plan.run.group_offload
    assert (plan.run.width, plan.run.height, plan.run.num_frames) == (1152, 768, 121)  # fixed by the user


# -- step caches: their state is device memory too -----------------------------------------------------------


def test_a_step_cache_adds_its_state_to_the_denoise_peak():
    """At 720p × 121 (1152 × 768 here: 31 × 24 × 36 = 26,784 tokens) pab keeps every block's self-attention output
    (30 × tokens × 3072 bf16 ≈ 4.6 GiB), first-block three hidden states per guidance branch (≈ 0.9 GiB),
    magcache two per branch (≈ 0.6 GiB), taylorseer the output projection's two float32 factors per branch
    (≈ 78 MiB); off keeps nothing. Only the denoise stage holds it; at 24 GiB the cheaper rungs make room for
    it, so the plan keeps the cache."""
    tokens, hidden = 31 * 24 * 36, 31 * 24 * 36 * 3072 * 2
    expected = {"off": 0, "taylorseer": 2 * 2 * tokens * 192 * 4, "magcache": 2 * 2 * hidden,
                "first-block": 2 * 3 * hidden, "pab": 30 * hidden}
    device = probe_device(vram="24GiB")
    plans = {cache: unconstrained_plan(resolved(reference(cache=cache), PHOTO), device) for cache in expected}
    off = plans["off"].estimate()
    for cache, state in expected.items():
        estimate = plans[cache].estimate()
        assert plans[cache].run.cache == cache
        assert estimate.stages["denoise"].state_bytes == state
        assert estimate.stages["encode"] == off.stages["encode"] and estimate.stages["decode"] == off.stages["decode"]
        grown = estimate.stages["denoise"].total_bytes - off.stages["denoise"].total_bytes
        assert grown == pytest.approx(state * 1.1, abs=2)  # with fragmentation, like activations
    assert 4.5 * GiB < expected["pab"] < 4.7 * GiB
    order = ("off", "taylorseer", "magcache", "first-block", "pab")
    denoise = [plans[cache].estimate().stages["denoise"].total_bytes for cache in order]
    assert denoise == sorted(denoise) and len(set(denoise)) == 5
    # Planned for 24 GiB with pab: the state stays, so the denoise stage must shed more than without.
    with_pab, without = (make_plan(resolved(reference(cache=cache), PHOTO), device) for cache in ("pab", "off"))
    assert with_pab.fits and with_pab.run.cache == "pab"
    assert with_pab.estimate().stages["denoise"].state_bytes == expected["pab"]
    assert len(with_pab.changes) >= len(without.changes)


def test_a_step_cache_shortens_the_predicted_time_by_its_schedule(capsys):
    """The time estimate scales the denoise stage by what each cache's config fixes, at 720p × 121, 50 steps:
    MagCache runs the blocks in 26 of 50 calls a branch (its curve, as diffusers resamples it), TaylorSeer in 19
    (3 warm-up calls, then 1 in 3), PAB reuses self-attention in 21 of 100 calls (weighted by its FLOP share);
    first-block depends on the weights, so no saving is predicted. The timesteps PAB's window reads are the real
    scheduler's at every step count."""
    from diffusers import UniPCMultistepScheduler

    from i2v.advisor.report import render_plan_table
    from i2v.models.wan22 import cost
    from i2v.models.wan22.spec import SPEC
    from i2v.models.wan22.tiny import SCHEDULER_CONFIG

    assert cost.FLOW_SHIFT == SCHEDULER_CONFIG["flow_shift"]
    for steps in (1, 7, 30, 50, 100):
        scheduler = UniPCMultistepScheduler(**SCHEDULER_CONFIG)
        scheduler.set_timesteps(steps)
        assert scheduler.timesteps.tolist() == cost._timesteps(steps)
    assert [cost.magcache_computes(steps) for steps in (10, 30, 50)] == [5, 16, 26]
    reports = {cache: plan_report(reference(cache=cache), PHOTO, "80GiB") for cache in SPEC.caches}
    seconds = {cache: report["predicted_seconds"] for cache, report in reports.items()}
    fractions = {cache: report["cache_compute"]["fraction"] for cache, report in reports.items()}
    assert fractions["magcache"] == 26 / 50 and fractions["taylorseer"] == 19 / 50
    assert fractions["first-block"] == fractions["off"] == 1.0 and seconds["first-block"] == seconds["off"]
    assert "21 of 100 calls" in reports["pab"]["cache_compute"]["note"] and 0.8 < fractions["pab"] < 0.9
    assert seconds["taylorseer"] < seconds["magcache"] < seconds["pab"] < seconds["off"]
    device = probe_device(vram="80GiB")
    flops = {cache: unconstrained_plan(resolved(reference(cache=cache), PHOTO), device).estimate().flops for cache in ("off", "magcache")}
    assert flops["magcache"]["denoise"] == pytest.approx(flops["off"]["denoise"] * 26 / 50, rel=1e-12)
    assert flops["magcache"]["encode"] == flops["off"]["encode"]
    capsys.readouterr()
    from rich.console import Console

    Console(width=200).print(render_plan_table(reports["magcache"]))
    assert "with magcache: 0.52 of the uncached denoise work" in capsys.readouterr().out


def test_at_12_gib_the_plan_turns_a_state_holding_cache_off_rather_than_failing():
    """pab keeps every block's self-attention (4.6 GiB at 720p × 121): at 12 GiB no offload makes room for it,
    so the ladder turns it off, after the offloads that cost little speed and before sequential offload and
    fewer frames or a smaller size; the plan it gives the backend runs uncached. A cache a plan fits with stays."""
    device = probe_device(vram="12GiB")
    given = unconstrained_plan(resolved(reference(cache="pab"), PHOTO), device)
    plan = make_plan(resolved(reference(cache="pab"), PHOTO), device)
    assert given.run.cache == "pab" and not given.fits
    assert plan.fits and plan.run.cache == "off"
    assert (plan.run.width, plan.run.height, plan.run.num_frames) == (1152, 768, 121)
    names = [change.rsplit(": ", 1)[0] for change in plan.changes]
    dropped = names.index("turn the pab step cache off (slower: trades its speed-up for its memory)")
    assert any("group offload" in name for name in names[:dropped])
    assert all("sequential" not in name and "fewer" not in name for name in names[:dropped])
    kept = make_plan(resolved(reference(cache="taylorseer"), PHOTO), probe_device(vram="24GiB"))
    assert kept.fits and kept.run.cache == "taylorseer"
    assert make_plan(resolved(reference(), PHOTO), device).changes == make_plan(resolved(reference(cache="off"), PHOTO), device).changes


def test_cache_state_formula_matches_what_the_hooks_hold(wan_tiny_model, tmp_path):
    """The formula, at the tiny model's shape (2 blocks of width 24, fp32, 64 × 64 × 9: 12 tokens), against the
    most the tensors diffusers' hooks hold after any of 3 steps (TaylorSeer has both factors after the third;
    MagCache drops its residual at the last), counted by bench/wan_cache.py's `state_bytes` (each tensor once)."""
    import importlib.util

    from helpers import make_photo

    from i2v.models import base
    from i2v.models.loading import resolve_model
    from i2v.models.wan22.backend import WanBackend
    from i2v.models.wan22.cost import state_bytes
    from i2v.models.wan22.spec import SPEC

    spec = importlib.util.spec_from_file_location("wan_cache_bench", Path(__file__).parents[1] / "bench" / "wan_cache.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    backend = WanBackend.load(resolve_model(str(wan_tiny_model)), device="cpu", dtype="fp32")
    transformer = backend.pipeline.transformer
    width = transformer.config.num_attention_heads * transformer.config.attention_head_dim
    out_width = transformer.config.out_channels * 4
    photo = make_photo(64, 64)
    held = {}
    assert state_bytes("off", tokens=12, itemsize=4, branches=2) == 0
    for cache in (cache for cache in SPEC.caches if cache != "off"):
        request = SPEC.resolve(GenerationRequest(
            image=tmp_path / "p.png", prompt="a cat turns its head", model=str(wan_tiny_model), width=64, height=64,
            num_frames=9, steps=3, seed=1, cache=cache,
        ), photo.size)
        hooks = base.Hooks(on_step=lambda done, total, _: held.__setitem__(
            cache, max(held.get(cache, 0), bench.state_bytes(transformer))))
        backend.generate(request, photo, hooks)
        predicted = state_bytes(cache, tokens=3 * 2 * 2, itemsize=4, branches=2, width=width,
                                blocks=len(transformer.blocks), out_width=out_width)
        # MagCache's accumulated ratio and error become 0-d float32 tensors (its curve's entries are tensors).
        assert held[cache] == predicted + (2 * 2 * 4 if cache == "magcache" else 0), cache
    assert len(held) == 4 and all(held.values())


# -- shipped traces (i2v.models.wan22.shipped): what a cold `i2v plan` at a preset reads instead of tracing -------


REBUILD = "rebuild with `python -m i2v.models.wan22.shipped build`"


def test_the_shipped_traces_apply_to_the_installed_libraries():
    """Fails (never skips) when the installed libraries leave the shipped traces behind: their release series and
    the architecture they build now must be the file's key (see tests/test_advisor.py for the rule)."""
    from i2v.models.wan22 import shipped

    made, now = shipped.TRACES.shipped_key(), shipped.TRACES.current_key()
    assert made == now, f"shipped traces are keyed {made}, the installed libraries give {now}: {REBUILD}"
    assert shipped.TRACES.applies(made)


def test_shipped_traces_equal_a_fresh_trace():
    """One entry of each variant (weights per dtype, text encoder, VAE encode, transformer, VAE decode tiled and
    not; clips up to 17 frames, so the tiled decode stays a few seconds), re-traced now."""
    from i2v.models.wan22 import shipped

    keys = shipped.TRACES.sample(max_frames=17)
    assert {key.split("|")[0] for key in keys} == {"weights", "text_encoder", "vae_encode", "vae_decode", "transformer"}
    assert sum(key.startswith("vae_decode") for key in keys) == 2 and sum(key.startswith("weights") for key in keys) == 3
    assert shipped.TRACES.check(keys) == [], REBUILD


def test_the_shipped_traces_cover_the_planners_path_at_the_presets(monkeypatch, tmp_path):
    """The reference request at 480p and 720p, 121/81/49 frames, landscape and portrait, on 24 and 12 GiB: every
    trace the planner asks for is shipped."""
    from i2v.models.wan22 import cost as memory

    asked = []
    real_trace = memory._run_trace
    monkeypatch.setattr(memory, "_run_trace", lambda kind, **shape: asked.append((kind, shape)) or real_trace(kind, **shape))
    monkeypatch.setenv("I2V_HOME", str(tmp_path))
    memory.CACHE.clear()
    for resolution in ("480p", "720p"):
        for frames in (121, 81, 49):
            for image in (PHOTO, (300, 451), (1920, 1080)):
                for vram in ("24GiB", "12GiB"):
                    make_plan(resolved(request(resolution=resolution, num_frames=frames), image), probe_device(vram=vram))
    memory.CACHE.clear()
    assert asked == []


def test_a_cold_wan_plan_at_a_preset_imports_neither_diffusers_nor_transformers(tmp_path):
    """`i2v plan --model wan2.2-ti2v-5b` in a fresh process with an empty data folder: answered from the shipped
    traces (a step cache changes no trace: its state comes from the shape), the cache's state planned for."""
    script = (
        "import sys\nfrom i2v.cli import main\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
        "print('IMPORTED', [m for m in ('diffusers', 'transformers') if m in sys.modules])\n"
    )
    command = [sys.executable, "-c", script, "plan", "examples/cat.jpg", "--model", MODEL, "--resolution", "720p",
               "--frames", "121", "--vram", "24GiB", "--cache", "pab", "--json"]
    done = subprocess.run(command, cwd=Path(__file__).parents[1], env={**os.environ, "I2V_HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "IMPORTED []" in done.stdout
    report = json.loads(done.stdout[: done.stdout.rindex("IMPORTED")])
    assert report["plan"]["cache"] == "pab" and report["fits"]
    assert report["stages"]["denoise"]["state_bytes"] == 30 * 31 * 24 * 36 * 3072 * 2  # every block's attn1 output
    assert not (tmp_path / "advisor-traces-wan22.json").exists()  # nothing traced, nothing cached
