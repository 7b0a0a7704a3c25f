"""Wan 2.2 TI2V-5B's cost model: peak device memory of one run under a RunPlan, computed rather than guessed.

A run has three stages, each holding the weights its placement keeps on the device plus that stage's
activations:

- encode: the UMT5 text encoder on the prompt and the negative prompt (512 tokens each, one after the other),
  then the VAE encoding the image (the first-frame condition). The two steps hold different weights (an
  "encoders" run has moved the text encoder off before the image is encoded), so the stage's peak is the larger
  of the two;
- denoise: one transformer call at batch 1 (guidance is always two such calls, one after the other: there is
  no batch-2 pass to split, so `cfg_mode` is "split" in every guided plan);
- decode: the VAE decoding every latent frame, tiled or not, with the post-processing on the device.

Activation peaks come from the real-size models traced on the meta device (`architecture.trace_*`), cached per
shape in memory and in `advisor-traces-wan22.json`; the preset shapes ship already traced (`shipped.py`,
`traces.json`), so a plan at a preset imports neither diffusers nor transformers. The VAE runs in float32 in
every plan (the backend loads it so, as Wan's authors run it): 2.8 GB of weights and float32 activations.
Tensors carried between steps (latents, embeddings, the first pass's prediction) are a few MiB and left out.

A step cache keeps tensors between transformer calls, for the whole denoise stage: its `state_bytes`, from the
shape alone, as the backend configures diffusers' hooks (`backend.CACHE_CONFIGS`; one hidden state is tokens ×
3072 in the compute dtype, tokens = latent frames × latent height/2 × latent width/2):

| cache | what its hooks keep | 720p × 121, bf16, guided |
|---|---|---|
| first-block | per guidance branch: the first block's output and residual, the last block's residual (3 hidden states) | 0.94 GiB |
| taylorseer | per guidance branch: the output projection's value and first difference, float32 (tokens × 192 each) | 80 MiB |
| pab | every block's self-attention output, one set for both branches (30 hidden states) | 4.7 GiB |
| magcache | per guidance branch: the first block's input and the blocks' last residual (2 hidden states) | 0.62 GiB |

Checked against the tensors the hooks hold after a run (tests/test_advisor_wan.py on the tiny model; the same at
real width with fewer blocks in the closing note).

A cache also saves time: `cache_compute` gives the share of the uncached denoise FLOPs a run is expected to do,
worked out from each cache's config as the backend sets it (the same rules diffusers' hooks apply), and the time
estimate scales the denoise stage by it:

| cache | what decides the skips | 720p × 121, 50 steps, guided |
|---|---|---|
| first-block | the weights (the first block's residual change): unknown ahead, so no saving is predicted | 1.0 |
| taylorseer | its schedule only: 3 warm-up calls, then 1 call in 3 runs the blocks (per branch) | 19/50 = 0.38 |
| pab | its schedule only: self-attention every other call while 100 < t < 800 (UniPC, shift 5: 21 of 100 calls); weighted by self-attention's share of a call's FLOPs (counted from the shapes, 65%) | 0.86 |
| magcache | its authors' curve, resampled to the steps as diffusers does, and threshold: no weights needed | 26/50 = 0.52 |

The embedders and the output projection still run on a skipped call (<1% of a step at these sizes): left out.

Where the weights are, per placement (what the backend does):

| placement | text encoding | image encoding | denoise | decode |
|---|---|---|---|---|
| offload none | all three | all three | all three | all three |
| "encoders": the text encoder leaves after encoding | all three | transformer + VAE | transformer + VAE | transformer + VAE |
| "model": accelerate's model offload, chain text encoder → transformer → VAE | text encoder | text encoder + VAE | transformer + VAE | VAE |
| "sequential": one layer at a time | its largest layer | the VAE's | the transformer's | the VAE's |

Group offload streams the transformer's blocks (one block a group, the next one prefetched on a side stream): it
holds what lies outside the blocks and two blocks while it runs, nothing otherwise. diffusers refuses model
offload beside it, so the ladder pairs it with "encoders", which with the transformer streamed leaves the same
weights resident as model offload. FP8 weights store the transformer's layers (not its embedders, norms and
float32 modules) in float8 and cast one layer at a time to the compute dtype: that layer's copy is added to the
denoise activations.

On top come the runtime overhead and allocator fragmentation shared by every model (`i2v.models.cost`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from i2v.models.cost import (
    CacheCompute,
    MemoryEstimate,
    StagePeak,
    TraceCache,
    library_versions,
    stage_totals,
    trace_key,
)
from i2v.models.spec import CACHE_OFF

if TYPE_CHECKING:
    from i2v.models.plan import RunPlan

STAGES = ("encode", "denoise", "decode")
#: Bump when the tracer changes what it measures (`architecture.py`, the shapes it is given, the keys below):
#: entries cached or shipped under another version are ignored. Then rebuild the shipped traces:
#: `python -m i2v.models.wan22.shipped build`.
TRACE_VERSION = 1
#: The libraries whose code a trace runs: torch's meta kernels, diffusers' transformer and VAE, transformers' UMT5.
TRACED_LIBRARIES = ("torch", "diffusers", "transformers")
#: The prompt length every prompt is padded to (the pipeline's max_sequence_length; the spec's token budget).
TOKENS = 512
#: The dtype the backend keeps the VAE in, whatever the run's dtype.
VAE_DTYPE = "fp32"
#: Group offload holds the block running and the next one, prefetched.
GROUP_BLOCKS_RESIDENT = 2
#: TaylorSeer's expansion order as the backend configures it: orders 0..1 kept, in float32.
TAYLOR_ORDER = 1
TAYLOR_FACTOR_BYTES = 4


def versions() -> str:
    return f"v{TRACE_VERSION}|" + "|".join(f"{name}={version}" for name, version in library_versions(TRACED_LIBRARIES).items())


def _shipped(key: str) -> dict | None:
    from i2v.models.wan22 import shipped

    return shipped.TRACES.lookup(key)


CACHE = TraceCache("advisor-traces-wan22.json", versions, _shipped)


class WanCost:
    """Stages encode (UMT5 text encoder, VAE encode of the image), denoise (one batch-1 transformer call, twice
    a step with guidance) and decode (the VAE on every latent frame)."""

    rungs = frozenset({
        "half_precision", "offload_encoders", "tiled_decode", "model_offload", "group_offload", "fp8_weights",
        "drop_cache", "sequential_offload", "fewer_frames", "lower_resolution",
    })
    #: How guidance runs: the pipeline's conditional and unconditional passes are two batch-1 calls.
    cfg_mode = "split"
    #: What the ladder's labels call its parts: one text encoder (no image encoder), a transformer.
    names = {"encoders": "the text encoder", "denoiser": "the transformer"}

    def predict_peak(self, plan: RunPlan) -> MemoryEstimate:
        """Peak bytes the device must hold for `plan` (weights + activations + overhead), stage by stage."""
        return predict_peak(plan)

    def copy_bytes(self, plan: RunPlan) -> int:
        """Weights copied to the device per job: the text encoder back after an "encoders" job, every model once
        with model offload, the streamed transformer once per transformer call with group or sequential offload."""
        if plan.device == "cpu" or (plan.offload == "none" and not plan.group_offload):
            return 0
        sizes = weight_bytes(plan.dtype)
        text, vae = sizes["text_encoder"]["total"], sizes["vae"]["total"]
        transformer = _transformer(sizes, plan.fp8_weights)["total"]
        calls = plan.steps * _passes(plan)
        if plan.offload == "sequential":
            return calls * transformer + text + vae
        streamed = calls * transformer if plan.group_offload else 0
        if plan.offload == "model":
            return text + vae + (streamed or transformer)
        if plan.offload == "encoders":
            return text + streamed
        return streamed


COST = WanCost()


def predict_peak(plan: RunPlan) -> MemoryEstimate:
    """Peak bytes the device must hold for `plan` (weights + activations + overhead), stage by stage."""
    half = _trace_dtype(plan.dtype)
    weights = weight_bytes(plan.dtype)
    text = _trace("text_encoder", tokens=TOKENS, dtype=half, attention=plan.attention)
    image = _trace("vae_encode", width=plan.width, height=plan.height, dtype=VAE_DTYPE, attention=plan.attention)
    step = _trace(
        "transformer", width=plan.width, height=plan.height, frames=plan.num_frames, dtype=half, attention=plan.attention
    )
    decode = _trace(
        "vae_decode", width=plan.width, height=plan.height, frames=plan.num_frames, tiling=plan.vae_tiling,
        dtype=VAE_DTYPE, attention=plan.attention,
    )
    resident = resident_weights(plan, weights)
    upcast = _transformer(weights, True)["upcast"] if plan.fp8_weights else 0
    steps = stage_totals(
        resident,
        {
            "text": text["peak_bytes"], "image": image["peak_bytes"], "denoise": step["peak_bytes"] + upcast,
            "decode": decode["peak_bytes"],
        },
        plan.device,
        state={"denoise": cache_state_bytes(plan)},
    )
    encode = max(steps["text"], steps["image"], key=lambda peak: peak.total_bytes)
    stages: dict[str, StagePeak] = {"encode": encode, "denoise": steps["denoise"], "decode": steps["decode"]}
    compute = cache_compute(plan, step["flops"])
    flops = {
        "encode": text["flops"] * _passes(plan) + image["flops"],
        "denoise": round(plan.steps * _passes(plan) * step["flops"] * compute.fraction),
        "decode": decode["flops"],
    }
    return MemoryEstimate.of(stages, flops, plan.device, cache=compute)


#: The released scheduler's flow-matching schedule (UniPC with flow sigmas, `tiny.SCHEDULER_CONFIG`): the timesteps
#: PAB's window is compared with.
FLOW_SHIFT, TRAIN_TIMESTEPS = 5.0, 1000
#: TaylorSeer's schedule as the backend configures it: every call before this one runs the blocks, then one in
#: TAYLOR_INTERVAL (diffusers' `disable_cache_before_step`, `cache_interval`).
TAYLOR_WARMUP, TAYLOR_INTERVAL = 3, 3
#: PAB's schedule as the backend configures it: self-attention computed every PAB_SKIP_RANGE-th call while the
#: timestep is strictly inside PAB_TIMESTEPS (diffusers' `spatial_attention_block_skip_range`, `..._timestep_skip_range`).
PAB_SKIP_RANGE, PAB_TIMESTEPS = 2, (100, 800)


def cache_compute(plan: RunPlan, step_flops: int) -> CacheCompute:
    """The share of the uncached denoise FLOPs the plan's cache is expected to do, and how that was found (the
    table in the module's docstring). `step_flops`: one traced transformer call."""
    steps, branches = plan.steps, _passes(plan)
    cache = plan.cache or CACHE_OFF
    if cache == "taylorseer":
        runs = sum(1 for call in range(steps) if _taylor_computes(call))
        return CacheCompute(
            cache=cache, fraction=runs / steps,
            note=f"the blocks run in {runs} of {steps} calls per guidance branch (fixed by its schedule)",
        )
    if cache == "magcache":
        runs = magcache_computes(steps)
        return CacheCompute(
            cache=cache, fraction=runs / steps,
            note=f"the blocks run in {runs} of {steps} calls per guidance branch (fixed by the calibrated curve)",
        )
    if cache == "pab":
        calls = steps * branches
        skipped = sum(1 for call, t in enumerate(t for t in _timesteps(steps) for _ in range(branches)) if _pab_skips(call, t))
        share = min(1.0, attention_flops(plan.width, plan.height, plan.num_frames) / step_flops)
        return CacheCompute(
            cache=cache, fraction=1 - skipped / calls * share,
            note=f"self-attention ({share:.0%} of a call's FLOPs) reused in {skipped} of {calls} calls (fixed by its schedule)",
        )
    if cache == "first-block":
        return CacheCompute(
            cache=cache, fraction=1.0,
            note="its skips depend on the weights and the image: no saving predicted",
        )
    return CacheCompute(cache=cache, fraction=1.0, note="")


def _taylor_computes(call: int) -> bool:
    """diffusers' TaylorSeer hook: the warm-up calls, then every TAYLOR_INTERVAL-th call after the one following it."""
    return call < TAYLOR_WARMUP or (call - TAYLOR_WARMUP - 1) % TAYLOR_INTERVAL == 0


def _pab_skips(call: int, timestep: float) -> bool:
    """diffusers' PAB hook on one self-attention (its call counter counts both guidance branches' calls)."""
    low, high = PAB_TIMESTEPS
    return call > 0 and low < timestep < high and call % PAB_SKIP_RANGE != 0


def _timesteps(steps: int) -> list[int]:
    """The scheduler's timesteps (UniPC with flow sigmas and a fixed shift), truncated to integers as it stores them."""
    import numpy as np

    sigmas = np.linspace(1, 1 / TRAIN_TIMESTEPS, steps + 1)[:-1]
    sigmas = FLOW_SHIFT * sigmas / (1 + (FLOW_SHIFT - 1) * sigmas)
    if abs(sigmas[0] - 1) < 1e-6:
        sigmas[0] -= 1e-6
    return [int(t) for t in sigmas * TRAIN_TIMESTEPS]


def magcache_computes(steps: int) -> int:
    """Calls per guidance branch that run the blocks under MagCache at `steps`: diffusers' hook replayed on the
    curve it reads (nearest-neighbour resampled, float32 as its tensors are); it never needs the weights."""
    import numpy as np

    from i2v.models.wan22 import magcache

    curve = np.array(magcache.CONDITIONAL, dtype=np.float32)
    if steps == 1:
        ratios = curve[-1:]
    else:
        scale = np.float32((len(curve) - 1) / (steps - 1))
        ratios = curve[np.round(np.arange(steps, dtype=np.float32) * scale).astype(int)]
    retention = int(magcache.RETENTION_RATIO * steps + 0.5)
    one = np.float32(1.0)
    ratio, run, error, computes = one, 0, np.float32(0.0), 0
    for step in range(steps):
        if step >= retention:
            ratio, run = ratio * ratios[step], run + 1
            error = error + abs(one - ratio)
            if step > 0 and error <= magcache.THRESHOLD and run <= magcache.MAX_SKIP_STEPS:
                continue
            ratio, run, error = one, 0, np.float32(0.0)
        computes += 1
    return computes


def attention_flops(width: int, height: int, frames: int, *, width_model: int = 3072, blocks: int = 30) -> int:
    """Self-attention's FLOPs in one transformer call, counted from the shapes as the tracer counts them (2 a
    multiply-add): the q, k, v and output projections and the two token-by-token products, in every block."""
    n = tokens(width, height, frames)
    return blocks * (8 * n * width_model * width_model + 4 * n * n * width_model)


def cache_state_bytes(plan: RunPlan) -> int:
    """What the plan's step cache keeps on the device between transformer calls (the table in the docstring)."""
    from i2v.models.wan22.spec import SPEC

    cache = plan.cache or CACHE_OFF
    if cache not in SPEC.caches:
        raise ValueError(f"{SPEC.label} has no step cache {cache!r}; it offers {', '.join(SPEC.caches)}")
    return state_bytes(
        cache, tokens=tokens(plan.width, plan.height, plan.num_frames), itemsize=_itemsize(plan.dtype),
        branches=_passes(plan),
    )


def state_bytes(
    cache: str, *, tokens: int, itemsize: int, branches: int, width: int = 3072, blocks: int = 30, out_width: int = 192
) -> int:
    """A cache's state for a transformer of `blocks` blocks of `width` whose output projection gives `out_width`
    values a token (48 channels × the 2×2 patch), run `branches` times a step (2 with guidance)."""
    hidden = tokens * width * itemsize
    if cache == "pab":
        return blocks * hidden
    if cache == "first-block":
        return branches * 3 * hidden
    if cache == "magcache":
        return branches * 2 * hidden
    if cache == "taylorseer":
        return branches * (TAYLOR_ORDER + 1) * tokens * out_width * TAYLOR_FACTOR_BYTES
    return 0


def tokens(width: int, height: int, frames: int) -> int:
    """The transformer's sequence length: 4k+1 frames are k+1 latent frames, 16× smaller, then 2×2 patches."""
    return ((frames - 1) // 4 + 1) * (height // 32) * (width // 32)


def resident_weights(plan: RunPlan, weights: dict[str, dict]) -> dict[str, int]:
    """Weight bytes on the device during each step of a run: "text" and "image" (the encode stage's two steps),
    "denoise" and "decode" (see the table in the module's docstring)."""
    transformer = _transformer(weights, plan.fp8_weights)
    if plan.offload == "sequential":
        return {
            "text": weights["text_encoder"]["largest_leaf"], "image": weights["vae"]["largest_leaf"],
            "denoise": transformer["largest_leaf"], "decode": weights["vae"]["largest_leaf"],
        }
    text, vae = weights["text_encoder"]["total"], weights["vae"]["total"]
    if plan.group_offload:
        running, idle = transformer["outside_blocks"] + GROUP_BLOCKS_RESIDENT * transformer["largest_block"], 0
    else:
        running = idle = transformer["total"]
    if plan.offload == "model":
        return {"text": text, "image": text + vae, "denoise": running + vae, "decode": vae}
    if plan.offload == "encoders":
        return {"text": text + idle + vae, "image": idle + vae, "denoise": running + vae, "decode": idle + vae}
    return {"text": text + idle + vae, "image": text + idle + vae, "denoise": text + running + vae, "decode": text + idle + vae}


def _transformer(weights: dict[str, dict], fp8: bool) -> dict[str, int]:
    return weights["transformer"]["fp8"] if fp8 else weights["transformer"]


def _passes(plan: RunPlan) -> int:
    return 2 if plan.guided else 1


def _trace(kind: str, **shape) -> dict:
    return CACHE.get(trace_key(kind, **shape), lambda: _run_trace(kind, **shape))


def weight_bytes(dtype: str) -> dict[str, dict]:
    """Per component ("text_encoder", "transformer", "vae"): {"total", "largest_leaf"} bytes; the transformer's
    also {"blocks", "largest_block", "outside_blocks"} and "fp8", the same stored in FP8 plus "upcast"."""

    def compute() -> dict:
        from i2v.models.wan22 import architecture

        return architecture.weight_bytes(_torch_dtype(dtype), _torch_dtype(VAE_DTYPE))

    return CACHE.get(trace_key("weights", dtype=dtype), compute)


def _itemsize(dtype: str) -> int:
    return 4 if dtype == "fp32" else 2


def _trace_dtype(dtype: str) -> str:
    return "fp32" if dtype == "fp32" else "half"  # fp16 and bf16: same sizes, same ops


def _run_trace(kind: str, *, dtype: str, attention: str, **shape) -> dict:
    from i2v.models.wan22 import architecture

    torch_dtype = _torch_dtype(dtype)
    if kind == "text_encoder":
        trace = architecture.trace_text_encoder(torch_dtype, attention, shape["tokens"])
    elif kind == "vae_encode":
        trace = architecture.trace_vae_encode(shape["width"], shape["height"], torch_dtype, attention)
    elif kind == "transformer":
        trace = architecture.trace_transformer(dtype=torch_dtype, attention=attention, **shape)
    else:
        trace = architecture.trace_vae_decode(dtype=torch_dtype, attention=attention, **shape)
    return {"peak_bytes": trace.peak_bytes, "flops": trace.flops}


def _torch_dtype(dtype: str):
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16}.get(dtype, torch.bfloat16)
