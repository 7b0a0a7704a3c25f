"""I2VGen-XL's cost model: peak device memory of one run under a RunPlan, computed rather than guessed.

A run has three stages, each holding the weights its offload mode keeps resident plus that stage's
activations: encode (CLIP text, CLIP image, VAE encode of the first frame), denoise (one UNet call, batch 2
for guidance in one pass or 1 when split) and decode (the VAE on `decode_chunk` frames). Activation peaks come
from running the real-size models on the meta device (`i2v.models.i2vgenxl.architecture.trace_*`: no weights, no
memory, a second or two per UNet shape, plus about 4 s to import diffusers and transformers once) and are
cached per shape in-process and in a JSON file. The shapes the resolution presets and the planner's ladder
reach are shipped already traced (`shipped.py`, `traces.json`), so a plan at a preset
imports neither library. Tensors carried between stages (latents, embeddings) are a few MiB and left out.

On top come the runtime overhead and allocator fragmentation shared by every model (`i2v.models.cost`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from i2v.models.cost import (
    MemoryEstimate,
    TraceCache,
    library_versions,
    stage_totals,
    trace_key,
)

if TYPE_CHECKING:
    from i2v.models.plan import RunPlan

STAGES = ("encode", "denoise", "decode")
#: Bump when the tracer changes what it measures (`architecture.py`, the shapes it is given, the keys below):
#: entries cached or shipped under another version are ignored. Then rebuild the shipped traces:
#: `python -m i2v.models.i2vgenxl.shipped build`.
TRACE_VERSION = 1
#: The libraries whose code a trace runs: torch's meta kernels, diffusers' UNet and VAE, transformers' CLIP.
TRACED_LIBRARIES = ("torch", "diffusers", "transformers")


def versions() -> str:
    return f"v{TRACE_VERSION}|" + "|".join(f"{name}={version}" for name, version in library_versions(TRACED_LIBRARIES).items())


def _shipped(key: str) -> dict | None:
    from i2v.models.i2vgenxl import shipped

    return shipped.TRACES.lookup(key)


CACHE = TraceCache("advisor-traces.json", versions, _shipped)


class I2VGenXLCost:
    """Stages encode (CLIP text, CLIP image, VAE encode of the first frame), denoise (one UNet call) and decode
    (the VAE on `decode_chunk` frames); every rung of the advisor's ladder applies."""

    rungs = frozenset({
        "half_precision", "offload_encoders", "tiled_decode", "split_guidance", "ff_chunking", "model_offload",
        "sequential_offload", "fewer_frames", "lower_resolution",
    })
    #: What the ladder's labels call its parts.
    names = {"encoders": "the text and image encoders", "denoiser": "the UNet"}

    def predict_peak(self, plan: RunPlan) -> MemoryEstimate:
        """Peak bytes the device must hold for `plan` (weights + activations + overhead), stage by stage."""
        return predict_peak(plan)

    def copy_bytes(self, plan: RunPlan) -> int:
        """Weights copied to the device per job: encoders back after an "encoders" job, every model once with
        model offload, the UNet once per UNet call with sequential offload."""
        if plan.offload == "none" or plan.device == "cpu":
            return 0
        sizes = {name: entry["total"] for name, entry in weight_bytes(plan.dtype).items()}
        if plan.offload == "encoders":
            return sizes["text_encoder"] + sizes["image_encoder"]
        if plan.offload == "model":
            return sum(sizes.values())
        passes = 2 if plan.guided and plan.cfg_mode == "split" else 1
        return plan.steps * passes * sizes["unet"] + sizes["text_encoder"] + sizes["image_encoder"] + sizes["vae"]


COST = I2VGenXLCost()


def predict_peak(plan: RunPlan) -> MemoryEstimate:
    """Peak bytes the device must hold for `plan` (weights + activations + overhead), stage by stage."""
    dtype = _trace_dtype(plan.dtype)
    weights = weight_bytes(plan.dtype)
    encoders = _trace("encoders", dtype=dtype, attention=plan.attention)
    text, image = encoders["text_encoder"], encoders["image_encoder"]
    encode = _trace("vae_encode", width=plan.width, height=plan.height, dtype=dtype, attention=plan.attention)
    batch = 2 if plan.guided and plan.cfg_mode == "batch" else 1
    unet = _trace(
        "unet", width=plan.width, height=plan.height, frames=plan.num_frames, batch=batch, dtype=dtype,
        attention=plan.attention, ff_chunking=plan.ff_chunking,
    )
    chunk = max(1, min(plan.decode_chunk_size, plan.num_frames))
    decode = _trace(
        "vae_decode", width=plan.width, height=plan.height, chunk=chunk, tiling=plan.vae_tiling, dtype=dtype,
        attention=plan.attention,
    )
    activations = {
        "encode": max(text["peak_bytes"], image["peak_bytes"], encode["peak_bytes"]),
        "denoise": unet["peak_bytes"],
        "decode": decode["peak_bytes"],
    }
    stages = stage_totals(_resident_weights(plan.offload, weights), activations, plan.device)
    passes = 2 if plan.guided and plan.cfg_mode == "split" else 1
    flops = {
        "encode": text["flops"] * (2 if plan.guided else 1) + image["flops"] + encode["flops"],
        "denoise": plan.steps * passes * unet["flops"],
        "decode": plan.num_frames * decode["flops"] // chunk,
    }
    return MemoryEstimate.of(stages, flops, plan.device)


def _resident_weights(offload: str, weights: dict[str, dict[str, int]]) -> dict[str, int]:
    """Weight bytes on the device during each stage. Model offload (accelerate hooks, chain text -> image ->
    unet -> vae) moves a model off when the next in the chain starts, so the VAE loaded to encode the first frame
    stays through denoising; sequential offload holds one layer at a time."""
    size = {name: entry["total"] for name, entry in weights.items()}
    if offload == "sequential":
        leaf = {name: entry["largest_leaf"] for name, entry in weights.items()}
        return {
            "encode": max(leaf["text_encoder"], leaf["image_encoder"], leaf["vae"]),
            "denoise": leaf["unet"],
            "decode": leaf["vae"],
        }
    if offload == "model":
        return {
            "encode": max(size["text_encoder"], size["image_encoder"] + size["vae"]),
            "denoise": size["unet"] + size["vae"],
            "decode": size["vae"],
        }
    everything = sum(size.values())
    after_encoding = size["unet"] + size["vae"] if offload == "encoders" else everything
    return {"encode": everything, "denoise": after_encoding, "decode": after_encoding}


def _trace(kind: str, **shape) -> dict:
    return CACHE.get(trace_key(kind, **shape), lambda: _run_trace(kind, **shape))


def weight_bytes(dtype: str) -> dict[str, dict[str, int]]:
    """Per component ("text_encoder", "image_encoder", "unet", "vae"): {"total", "largest_leaf"} bytes."""
    traced = _trace_dtype(dtype)

    def compute() -> dict:
        from i2v.models.i2vgenxl import architecture

        return architecture.weight_bytes(_torch_dtype(traced))

    return CACHE.get(f"weights|dtype={traced}", compute)


def _trace_dtype(dtype: str) -> str:
    return "fp32" if dtype == "fp32" else "half"  # fp16 and bf16: same sizes, same ops


def _run_trace(kind: str, *, dtype: str, attention: str, **shape) -> dict:
    from i2v.models.i2vgenxl import architecture

    torch_dtype = _torch_dtype(dtype)
    if kind == "encoders":
        traces = architecture.trace_encoders(torch_dtype, attention)
        return {name: {"peak_bytes": t.peak_bytes, "flops": t.flops} for name, t in traces.items()}
    if kind == "vae_encode":
        trace = architecture.trace_vae_encode(shape["width"], shape["height"], torch_dtype, attention)
    elif kind == "unet":
        trace = architecture.trace_unet_step(dtype=torch_dtype, attention=attention, **shape)
    else:
        trace = architecture.trace_vae_decode(dtype=torch_dtype, attention=attention, **shape)
    return {"peak_bytes": trace.peak_bytes, "flops": trace.flops}


def _torch_dtype(dtype: str):
    import torch

    return torch.float32 if dtype == "fp32" else torch.float16


