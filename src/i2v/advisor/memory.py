"""Peak device memory of one I2VGen-XL run under an ExecutionPlan, computed rather than guessed.

A run has three stages, each holding the weights its offload mode keeps resident plus that stage's
activations: encode (CLIP text, CLIP image, VAE encode of the first frame), denoise (one UNet call, batch 2
for guidance in one pass or 1 when split) and decode (the VAE on `decode_chunk` frames). Activation peaks come
from running the real-size models on the meta device (`i2v.engine.architecture.trace_*`: no weights, no
memory, a second or two per UNet shape, plus about 4 s to import diffusers and transformers once) and are
cached per shape in-process and in a JSON file. The shapes the resolution presets and the planner's ladder
reach are shipped already traced (`i2v.advisor.shipped`, `traces/i2vgenxl.json`), so a plan at a preset
imports neither library. Tensors carried between stages (latents, embeddings) are a few MiB and left out.

On top come two named constants that only a real GPU can calibrate (override them with the environment
variables of the same name): RUNTIME_OVERHEAD_BYTES for the CUDA context and library workspaces, which live
outside PyTorch's allocator, and FRAGMENTATION for the share of activations the caching allocator cannot reuse.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from i2v.advisor.device import GiB, parse_size
from i2v.errors import I2VError
from i2v.paths import data_dir

if TYPE_CHECKING:
    from i2v.advisor.plan import ExecutionPlan

Stage = Literal["encode", "denoise", "decode"]
STAGES: tuple[Stage, ...] = ("encode", "denoise", "decode")
STAGE_VERBS: dict[Stage, str] = {"encode": "encoding", "denoise": "denoising", "decode": "decoding"}
#: CUDA context + cuBLAS/cuDNN workspaces + lazily loaded kernels: typically 0.5-1.5 GiB on CUDA 12, not seen by
#: torch.cuda.max_memory_allocated but counted by nvidia-smi and by the OOM. Env: I2V_RUNTIME_OVERHEAD=1.5GiB.
RUNTIME_OVERHEAD_BYTES = {"cuda": 1 * GiB, "mps": GiB // 2, "cpu": GiB // 2}
#: Share of activation bytes lost to block rounding and blocks too fragmented to reuse (lower with expandable
#: segments, which `configure_allocator` turns on). Env: I2V_FRAGMENTATION=0.2.
FRAGMENTATION = 0.10
#: Bump when the tracer changes what it measures (`i2v.engine.architecture`, the shapes it is given, the keys
#: below): entries cached or shipped under another version are ignored. Then rebuild the shipped traces:
#: `python -m i2v.advisor.shipped build`.
TRACE_VERSION = 1


class StagePeak(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weights_bytes: int
    activation_bytes: int
    total_bytes: int


class MemoryEstimate(BaseModel):
    """Predicted peak of a plan, where it happens, and the FLOPs behind each stage (for time estimates)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    peak_bytes: int
    peak_stage: Stage
    overhead_bytes: int
    stages: dict[Stage, StagePeak]
    flops: dict[Stage, int]


def predict_peak(plan: ExecutionPlan) -> MemoryEstimate:
    """Peak bytes the device must hold for `plan` (weights + activations + overhead), stage by stage."""
    dtype = _trace_dtype(plan.dtype)
    weights = weight_bytes(plan.dtype)
    encoders = _trace("encoders", dtype=dtype, attention=plan.attention)
    text, image = encoders["text_encoder"], encoders["image_encoder"]
    encode = _trace("vae_encode", width=plan.width, height=plan.height, dtype=dtype, attention=plan.attention)
    batch = 2 if plan.guided and plan.cfg_mode == "batch" else 1
    unet = _trace(
        "unet", width=plan.width, height=plan.height, frames=plan.frames, batch=batch, dtype=dtype,
        attention=plan.attention, ff_chunking=plan.ff_chunking,
    )
    chunk = max(1, min(plan.decode_chunk, plan.frames))
    decode = _trace(
        "vae_decode", width=plan.width, height=plan.height, chunk=chunk, tiling=plan.vae_tiling, dtype=dtype,
        attention=plan.attention,
    )
    activations = {
        "encode": max(text["peak_bytes"], image["peak_bytes"], encode["peak_bytes"]),
        "denoise": unet["peak_bytes"],
        "decode": decode["peak_bytes"],
    }
    resident = _resident_weights(plan.offload, weights)
    overhead = _overhead(plan.device)
    fragmentation = _fragmentation()
    stages = {
        stage: StagePeak(
            weights_bytes=resident[stage],
            activation_bytes=activations[stage],
            total_bytes=int(resident[stage] + activations[stage] * (1 + fragmentation) + overhead),
        )
        for stage in STAGES
    }
    peak_stage = max(STAGES, key=lambda stage: stages[stage].total_bytes)
    passes = 2 if plan.guided and plan.cfg_mode == "split" else 1
    flops = {
        "encode": text["flops"] * (2 if plan.guided else 1) + image["flops"] + encode["flops"],
        "denoise": plan.steps * passes * unet["flops"],
        "decode": plan.frames * decode["flops"] // chunk,
    }
    return MemoryEstimate(
        peak_bytes=stages[peak_stage].total_bytes, peak_stage=peak_stage, overhead_bytes=overhead,
        stages=stages, flops=flops,
    )


def _resident_weights(offload: str, weights: dict[str, dict[str, int]]) -> dict[Stage, int]:
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


def _overhead(device: str) -> int:
    override = os.environ.get("I2V_RUNTIME_OVERHEAD")
    return parse_size(override) if override else RUNTIME_OVERHEAD_BYTES[device]


def _fragmentation() -> float:
    override = os.environ.get("I2V_FRAGMENTATION")
    return float(override) if override else FRAGMENTATION


# -- traces, cached -----------------------------------------------------------------------------------------


class _TraceCache:
    """Trace results by key, in memory, in the package's shipped traces and in `<data dir>/advisor-traces.json`
    (entries from other torch / diffusers / transformers versions or tracer versions are ignored). A cache that
    cannot be written only costs time."""

    def __init__(self) -> None:
        self._entries: dict[str, dict] = {}
        self._shipped: set[str] = set()
        self._loaded: set[Path] = set()
        self._lock = threading.Lock()
        #: Answer from the traces shipped in the package (`i2v.advisor.shipped`) before tracing; False traces
        #: every shape anew (the shipped-traces build and its tests).
        self.use_shipped = True

    def get(self, key: str, compute) -> dict:
        shape_key, key = key, f"{_versions()}|{key}"
        with self._lock:
            if key in self._entries:
                return self._entries[key]
            if self.use_shipped:
                from i2v.advisor import shipped

                found = shipped.lookup(shape_key)
                if found is not None:
                    self._entries[key] = found  # kept out of the JSON file: the package has it
                    self._shipped.add(key)
                    return found
            path = _cache_path()
            if path is not None and path not in self._loaded:
                self._entries.update(_read(path))
                self._loaded.add(path)
            if key in self._entries:
                return self._entries[key]
            self._entries[key] = compute()
            if path is not None:
                _write(path, {name: value for name, value in self._entries.items() if name not in self._shipped})
            return self._entries[key]

    def clear(self) -> None:
        """Forget what is in memory (the file stays): for tests and benchmarks of a cold start."""
        with self._lock:
            self._entries.clear()
            self._shipped.clear()
            self._loaded.clear()


CACHE = _TraceCache()


def trace_key(kind: str, **shape) -> str:
    """The cache key of one trace, less the versions: 'unet|attention=efficient|batch=2|dtype=half|…'."""
    return kind + "|" + "|".join(f"{name}={value}" for name, value in sorted(shape.items()))


def _trace(kind: str, **shape) -> dict:
    return CACHE.get(trace_key(kind, **shape), lambda: _run_trace(kind, **shape))


def weight_bytes(dtype: str) -> dict[str, dict[str, int]]:
    """Per component ("text_encoder", "image_encoder", "unet", "vae"): {"total", "largest_leaf"} bytes."""
    traced = _trace_dtype(dtype)

    def compute() -> dict:
        from i2v.engine import architecture

        return architecture.weight_bytes(_torch_dtype(traced))

    return CACHE.get(f"weights|dtype={traced}", compute)


def _trace_dtype(dtype: str) -> str:
    return "fp32" if dtype == "fp32" else "half"  # fp16 and bf16: same sizes, same ops


def _run_trace(kind: str, *, dtype: str, attention: str, **shape) -> dict:
    from i2v.engine import architecture

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


#: The libraries whose code a trace runs: torch's meta kernels, diffusers' UNet and VAE, transformers' CLIP.
TRACED_LIBRARIES = ("torch", "diffusers", "transformers")


@functools.cache
def library_versions() -> dict[str, str]:
    """Installed versions of TRACED_LIBRARIES, read from package metadata (nothing is imported)."""
    return {name: metadata.version(name) for name in TRACED_LIBRARIES}


@functools.cache
def _versions() -> str:
    return f"v{TRACE_VERSION}|" + "|".join(f"{name}={version}" for name, version in library_versions().items())


def _cache_path() -> Path | None:
    try:
        return data_dir() / "advisor-traces.json"
    except OSError:
        return None  # no writable data folder: trace again in the next process


def _read(path: Path) -> dict[str, dict]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(entries, dict):
        return {}
    current = _versions() + "|"
    return {key: value for key, value in entries.items() if key.startswith(current)}


def _write(path: Path, entries: dict[str, dict]) -> None:
    from i2v.media.files import write_json

    try:
        write_json(path, entries)
    except (OSError, I2VError):
        pass  # a cache that cannot be written only costs time
