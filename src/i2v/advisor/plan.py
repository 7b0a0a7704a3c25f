"""From a request, an image size and a device to an ExecutionPlan: the fastest settings predicted to fit.

The ladder goes from cheap to costly: half precision, encoders off the GPU after encoding, tiled one-frame VAE
decode, guidance in two passes, feed-forward chunking, model CPU offload, group offload of the denoiser, FP8
storage of the denoiser's weights, the request's step cache off where it keeps state (the uncached reference
frames, slower: it trades the cache's speed for its memory), sequential offload (much slower), then (only for settings the user did not fix, or with
allow_degrade) fewer frames and a lower resolution. Each model's cost model lists the rungs its backend takes and
may name its parts for the labels (`names`: "the text encoder", "the transformer"). Planning applies the
cheapest rung that lowers the predicted peak until it fits; `next_rung` is the same ladder for a run that
ran out of memory anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from i2v.advisor.device import DeviceInfo, DeviceKind, format_bytes
from i2v.models.base import Attention, CfgMode, Offload, RunOptions
from i2v.models.cost import MemoryEstimate
from i2v.models.registry import plugin, spec_for
from i2v.models.spec import CACHE_OFF
from i2v.request import GenerationRequest

Precision = Literal["fp16", "bf16", "fp32"]
DEFAULT_MARGIN = 0.10
#: What the rungs' labels call a model's parts where its cost model does not name them (its `names`): a label
#: says "move the text encoder off the GPU", not a part the model lacks.
PART_NAMES = {"encoders": "the encoders", "denoiser": "the denoiser"}
#: How many frames the "fewer frames" rung takes off at a time (then snapped to the model's frame rule).
FRAME_STEP = 8


class ExecutionPlan(BaseModel):
    """How one request runs on one device, and the peak memory predicted for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The backend whose cost model and spec this plan is made with.
    backend: str
    width: int = Field(ge=16)
    height: int = Field(ge=16)
    frames: int = Field(ge=1)
    steps: int = Field(ge=1)
    guided: bool = True
    dtype: Precision = "fp16"
    offload: Offload = "none"
    cfg_mode: CfgMode = "batch"
    decode_chunk: int = Field(default=1, ge=1)
    vae_tiling: bool = False
    ff_chunking: bool = False
    #: The denoiser's blocks streamed to the device one group at a time (diffusers' group offload).
    group_offload: bool = False
    #: The denoiser's weights stored in FP8, computed in `dtype` (diffusers' layerwise casting).
    fp8_weights: bool = False
    #: The step cache the run uses (one of the model's `spec.caches`): its state is device memory too. The ladder
    #: only ever turns it off (the "drop_cache" rung), back to the uncached reference frames, never on.
    cache: str = CACHE_OFF
    attention: Attention = "efficient"
    device: DeviceKind = "cuda"
    budget_bytes: int = Field(ge=0)
    predicted_peak_bytes: int = 0
    fits: bool = False
    #: The user set these explicitly and did not allow degrading: the ladder leaves them alone.
    frames_fixed: bool = False
    size_fixed: bool = False
    dtype_fixed: bool = False
    changes: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    def run_options(self) -> RunOptions:
        """What the backend needs to execute this plan (dtype is the loaded model's, not part of a run)."""
        return RunOptions(
            width=self.width, height=self.height, decode_chunk_size=self.decode_chunk, vae_tiling=self.vae_tiling,
            cfg_mode=self.cfg_mode, offload=self.offload, ff_chunking=self.ff_chunking, num_frames=self.frames,
            group_offload=self.group_offload, fp8_weights=self.fp8_weights, cache=self.cache,
        )

    def estimate(self) -> MemoryEstimate:
        return predict_peak(self)


def predict_peak(plan: ExecutionPlan) -> MemoryEstimate:
    """The plan's backend's cost model, asked for this plan."""
    return plugin(plan.backend).cost_model().predict_peak(plan)


@dataclass(frozen=True)
class Rung:
    """One step down: `apply` gives the fields to change, or None where it does not apply to this plan."""

    name: str
    label: Callable[[ExecutionPlan, ExecutionPlan], str]
    apply: Callable[[ExecutionPlan], dict | None]
    runtime: bool = True  # False: needs the model reloaded, so recovery during a run cannot take it


def _fixed(label: str) -> Callable[[ExecutionPlan, ExecutionPlan], str]:
    return lambda before, after: label


def part_names(backend: str) -> dict[str, str]:
    """The names the backend's cost model gives its parts ("encoders", "denoiser"), else PART_NAMES'."""
    return {**PART_NAMES, **getattr(plugin(backend).cost_model(), "names", {})}


def _named(template: str) -> Callable[[ExecutionPlan, ExecutionPlan], str]:
    """A label that names the plan's model's parts: `template` with {encoders} and {denoiser} filled in."""
    return lambda before, after: template.format(**part_names(before.backend))


def _smaller_size(plan: ExecutionPlan) -> dict | None:
    """The model's next resolution preset down at the same aspect ratio (`SizeRule.smaller`)."""
    lower = plugin(plan.backend).spec.size.smaller(plan.width, plan.height)
    return dict(width=lower[0], height=lower[1]) if lower else None


def _fewer_frames(plan: ExecutionPlan) -> dict | None:
    """FRAME_STEP fewer frames, down to the model's next valid count, never under its minimum."""
    rule = plugin(plan.backend).spec.frames
    if plan.frames_fixed or plan.frames <= rule.min:
        return None
    frames = rule.nearest(max(rule.min, plan.frames - FRAME_STEP))[0]
    return dict(frames=frames) if frames < plan.frames else None


def _holds_state(plan: ExecutionPlan) -> bool:
    """The plan's step cache keeps tensors on the device between denoiser calls (turning it off frees them)."""
    return plan.cache != CACHE_OFF and predict_peak(plan).stages["denoise"].state_bytes > 0


LADDER: tuple[Rung, ...] = (
    Rung(
        "half_precision", _fixed("half precision (fp16/bf16) instead of fp32"),
        lambda p: dict(dtype="fp16") if p.dtype == "fp32" and not p.dtype_fixed and p.device != "cpu" else None,
        runtime=False,
    ),
    Rung(
        "offload_encoders", _named("move {encoders} off the GPU after encoding"),
        lambda p: dict(offload="encoders") if p.offload == "none" and p.device != "cpu" else None,
    ),
    Rung(
        "tiled_decode", _fixed("decode one frame at a time, in tiles"),
        lambda p: dict(decode_chunk=1, vae_tiling=True) if p.decode_chunk > 1 or not p.vae_tiling else None,
    ),
    Rung(
        "split_guidance", _fixed("split guidance into two passes"),
        lambda p: dict(cfg_mode="split") if p.guided and p.cfg_mode == "batch" else None,
    ),
    Rung(
        "ff_chunking", _named("run {denoiser}'s feed-forward layers one frame at a time"),
        lambda p: dict(ff_chunking=True) if not p.ff_chunking else None,
    ),
    Rung(
        "model_offload", _fixed("keep only the running model on the GPU (model CPU offload)"),
        lambda p: dict(offload="model") if p.offload in ("none", "encoders") and p.device == "cuda" else None,
    ),
    Rung(
        "group_offload", _named("stream {denoiser}'s blocks to the GPU one at a time (group offload)"),
        # diffusers refuses model offload beside group offload; with the denoiser streamed, moving the encoders off
        # after encoding leaves the same weights resident.
        lambda p: dict(group_offload=True, offload="encoders" if p.offload == "model" else p.offload)
        if not p.group_offload and p.offload != "sequential" and p.device == "cuda" else None,
    ),
    Rung(
        "fp8_weights", _named("store {denoiser}'s weights in FP8, computed in half precision"),
        lambda p: dict(fp8_weights=True) if not p.fp8_weights and p.device == "cuda" else None,
    ),
    Rung(
        "drop_cache",
        lambda before, after: f"turn the {before.cache} step cache off (slower: trades its speed-up for its memory)",
        lambda p: dict(cache=CACHE_OFF) if _holds_state(p) else None,
    ),
    Rung(
        "sequential_offload", _fixed("stream the weights layer by layer (sequential CPU offload, much slower)"),
        # Sequential offload streams every layer: it replaces group offload (diffusers refuses both at once).
        lambda p: dict(offload="sequential", group_offload=False)
        if p.offload != "sequential" and p.device == "cuda" else None,
    ),
    Rung(
        "fewer_frames", lambda before, after: f"fewer frames ({before.frames} → {after.frames})",
        _fewer_frames,
    ),
    Rung(
        "lower_resolution",
        lambda before, after: f"lower resolution ({before.width}×{before.height} → {after.width}×{after.height})",
        lambda p: _smaller_size(p) if not p.size_fixed else None,
    ),
)


def unconstrained_plan(
    request: GenerationRequest,
    image_size: tuple[int, int],
    device: DeviceInfo,
    *,
    margin: float = DEFAULT_MARGIN,
    allow_degrade: bool = False,
    dtype: Precision | None = None,
    attention: Attention | None = None,
    decode_chunk: int = 1,
) -> ExecutionPlan:
    """The request exactly as given (device-default dtype, no offload, guidance in one pass where the model can
    batch it), with its prediction. Settings the request leaves out take its model's defaults."""
    if not 0 <= margin < 1:
        raise ValueError(f"margin must be in [0, 1), got {margin}")
    spec = spec_for(request.model)
    request = spec.apply(request)
    width, height = request.target_size(spec, *image_size)
    explicit = request.model_fields_set
    guided = (request.guidance_scale or 0) > 1
    # A cost model may say how its pipeline runs guidance (some always run two batch-1 passes, nothing to split).
    cfg_mode = getattr(plugin(spec.backend).cost_model(), "cfg_mode", "batch") if guided else "batch"
    plan = ExecutionPlan(
        backend=spec.backend, width=width, height=height, frames=request.num_frames, steps=request.steps or 1,
        guided=guided, cfg_mode=cfg_mode, dtype=dtype or _default_dtype(device),
        decode_chunk=max(1, min(decode_chunk, request.num_frames)),
        attention=attention or ("math" if device.kind == "mps" else "efficient"),
        device=device.kind, budget_bytes=int(device.free_bytes * (1 - margin)),
        cache=request.cache or CACHE_OFF,
        frames_fixed="num_frames" in explicit and not allow_degrade,
        size_fixed=bool({"width", "height", "resolution"} & explicit) and not allow_degrade,
        dtype_fixed=dtype is not None and not allow_degrade,
    )
    return _predicted(plan)


def make_plan(
    request: GenerationRequest,
    image_size: tuple[int, int],
    device: DeviceInfo,
    *,
    margin: float = DEFAULT_MARGIN,
    allow_degrade: bool = False,
    dtype: Precision | None = None,
    attention: Attention | None = None,
    decode_chunk: int = 1,
) -> ExecutionPlan:
    """The fastest plan predicted to fit under the device's free memory less `margin`; if none does, the last
    one tried, with a warning saying so."""
    plan = unconstrained_plan(
        request, image_size, device, margin=margin, allow_degrade=allow_degrade, dtype=dtype,
        attention=attention, decode_chunk=decode_chunk,
    )
    while not plan.fits:
        lower = _first_relief(plan, stage=None, runtime=False)
        if lower is None:
            break
        plan = lower
    warnings = list(plan.warnings)
    if device.planned:
        warnings.append(f"planned for a {format_bytes(device.total_bytes)} {device.kind.upper()} device, not probed")
    if device.kind == "cpu":
        warnings.append("running on the CPU: expect minutes per denoising step at real size")
    if not plan.fits:
        warnings.append(_over_budget(plan))
    return plan.model_copy(update=dict(warnings=warnings))


def next_rung(plan: ExecutionPlan, *, stage: str | None = None) -> ExecutionPlan | None:
    """One rung down for a run that ran out of memory (in `stage` when known): the cheapest remaining rung
    predicted to lower that stage's peak, else the cheapest remaining one, since the prediction was wrong once
    already. None when the ladder is exhausted. Never changes dtype: that needs the model reloaded."""
    target = stage if stage in predict_peak(plan).stages else None
    return _first_relief(plan, stage=target, runtime=True) or next(_lower_plans(plan, runtime=True), None)


def _first_relief(plan: ExecutionPlan, *, stage: str | None, runtime: bool) -> ExecutionPlan | None:
    """The first plan down the ladder whose predicted peak (of `stage`, or overall) is lower than `plan`'s."""
    current = _stage_bytes(predict_peak(plan), stage)
    for lower in _lower_plans(plan, runtime=runtime):
        if _stage_bytes(predict_peak(lower), stage) < current:
            return lower
    return None


def _lower_plans(plan: ExecutionPlan, *, runtime: bool) -> Iterator[ExecutionPlan]:
    offered = plugin(plan.backend).cost_model().rungs
    for rung in LADDER:
        if (runtime and not rung.runtime) or rung.name not in offered:
            continue
        update = rung.apply(plan)
        if update is None:
            continue
        lower = _predicted(plan.model_copy(update=update))
        saved = plan.predicted_peak_bytes - lower.predicted_peak_bytes
        effect = f"−{format_bytes(saved)}" if saved > 0 else "no predicted saving"
        yield lower.model_copy(update=dict(changes=[*plan.changes, f"{rung.label(plan, lower)}: {effect}"]))


def _predicted(plan: ExecutionPlan) -> ExecutionPlan:
    peak = predict_peak(plan).peak_bytes
    return plan.model_copy(update=dict(predicted_peak_bytes=peak, fits=peak <= plan.budget_bytes))


def _stage_bytes(estimate: MemoryEstimate, stage: str | None) -> int:
    return estimate.stages[stage].total_bytes if stage else estimate.peak_bytes


def _default_dtype(device: DeviceInfo) -> Precision:
    """bf16 where the hardware has it (fp16 overflows to NaN more easily), as the loader picks."""
    if device.kind == "cpu":
        return "bf16" if device.bf16 else "fp32"
    return "bf16" if device.bf16 and device.kind == "cuda" else "fp16"


def _over_budget(plan: ExecutionPlan) -> str:
    message = (
        f"predicted peak {format_bytes(plan.predicted_peak_bytes)} is over the {format_bytes(plan.budget_bytes)} "
        "budget even after every allowed change"
    )
    fixed = [name for name, flag in (("frames", plan.frames_fixed), ("resolution", plan.size_fixed)) if flag]
    if fixed:
        message += f"; you fixed {' and '.join(fixed)}: allow degrading them, or free device memory"
    return message
