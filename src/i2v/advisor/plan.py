"""From a resolved RunPlan and a device to a MemoryFit: the same run narrowed to the fastest settings predicted to fit.

The ladder goes from cheap to costly: half precision, encoders off the GPU after encoding, tiled one-frame VAE
decode, guidance in two passes, feed-forward chunking, model CPU offload, group offload of the denoiser, FP8
storage of the denoiser's weights, the request's step cache off where it keeps state (the uncached reference
frames, slower: it trades the cache's speed for its memory), sequential offload (much slower), then (only for settings the user did not fix, or with
allow_degrade) fewer frames and a lower resolution. Each model's cost model lists the rungs its backend takes and
may name its parts for the labels (`names`: "the text encoder", "the transformer"). Each rung returns a narrower
RunPlan; planning applies the cheapest rung that lowers the predicted peak until it fits; `next_rung` is the same ladder for a run that
ran out of memory anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from i2v.advisor.device import DeviceInfo, format_bytes
from i2v.models.base import Attention
from i2v.models.cost import MemoryEstimate
from i2v.models.plan import RunPlan
from i2v.models.registry import plugin
from i2v.models.spec import CACHE_OFF

Precision = Literal["fp16", "bf16", "fp32"]
DEFAULT_MARGIN = 0.10
#: What the rungs' labels call a model's parts where its cost model does not name them (its `names`): a label
#: says "move the text encoder off the GPU", not a part the model lacks.
PART_NAMES = {"encoders": "the encoders", "denoiser": "the denoiser"}
#: How many frames the "fewer frames" rung takes off at a time (then snapped to the model's frame rule).
FRAME_STEP = 8


class MemoryFit(BaseModel):
    """A run plan narrowed for one device, and the advisor's report on it: the budget, the predicted peak, whether
    it fits, the changes the ladder made (each with its predicted saving) and warnings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run: RunPlan
    budget_bytes: int = Field(ge=0)
    predicted_peak_bytes: int = 0
    fits: bool = False
    changes: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    def estimate(self) -> MemoryEstimate:
        return predict_peak(self.run)

    def record(self) -> dict[str, Any]:
        """The plan as a clip's metadata and `i2v plan --json` show it: the run's memory-relevant settings under
        the advisor's names (frames, decode_chunk), the device kind, the prediction and the changes."""
        run = self.run
        return dict(
            backend=run.backend, width=run.width, height=run.height, frames=run.num_frames, steps=run.steps or 1,
            guided=run.guided, dtype=run.dtype, offload=run.offload, cfg_mode=run.cfg_mode,
            decode_chunk=run.decode_chunk_size, vae_tiling=run.vae_tiling, ff_chunking=run.ff_chunking,
            group_offload=run.group_offload, fp8_weights=run.fp8_weights, cache=run.cache or CACHE_OFF,
            attention=run.attention, device=run.device, budget_bytes=self.budget_bytes,
            predicted_peak_bytes=self.predicted_peak_bytes, fits=self.fits, frames_fixed=run.frames_fixed,
            size_fixed=run.size_fixed, dtype_fixed=run.dtype_fixed, changes=list(self.changes),
            warnings=list(self.warnings),
        )


def predict_peak(run: RunPlan) -> MemoryEstimate:
    """The run's backend's cost model, asked for this run."""
    return plugin(run.backend).cost_model().predict_peak(run)


@dataclass(frozen=True)
class Rung:
    """One step down: `lower` gives the narrower run, or None where it does not apply to this one."""

    name: str
    label: Callable[[RunPlan, RunPlan], str]
    lower: Callable[[RunPlan], RunPlan | None]
    runtime: bool = True  # False: needs the model reloaded, so recovery during a run cannot take it


def _fixed(label: str) -> Callable[[RunPlan, RunPlan], str]:
    return lambda before, after: label


def part_names(backend: str) -> dict[str, str]:
    """The names the backend's cost model gives its parts ("encoders", "denoiser"), else PART_NAMES'."""
    return {**PART_NAMES, **getattr(plugin(backend).cost_model(), "names", {})}


def _named(template: str) -> Callable[[RunPlan, RunPlan], str]:
    """A label that names the run's model's parts: `template` with {encoders} and {denoiser} filled in."""
    return lambda before, after: template.format(**part_names(before.backend))


def _when(condition: bool, run: RunPlan, **changes) -> RunPlan | None:
    """`run` with `changes`, where the rung applies (`condition`)."""
    return run.model_copy(update=changes) if condition else None


def _smaller_size(run: RunPlan) -> RunPlan | None:
    """The model's next resolution preset down at the same aspect ratio (the presets' own rounding)."""
    lower = None if run.size_fixed else plugin(run.backend).spec.size.smaller(run.width, run.height)
    return None if lower is None else run.model_copy(update=dict(width=lower[0], height=lower[1]))


def _fewer_frames(run: RunPlan) -> RunPlan | None:
    """FRAME_STEP fewer frames, down to the model's next valid count, never under its minimum."""
    rule = plugin(run.backend).spec.frames
    if run.frames_fixed or run.num_frames <= rule.min:
        return None
    frames = rule.nearest(max(rule.min, run.num_frames - FRAME_STEP))[0]
    return _when(frames < run.num_frames, run, num_frames=frames)


def _holds_state(run: RunPlan) -> bool:
    """The run's step cache keeps tensors on the device between denoiser calls (turning it off frees them)."""
    return run.cache not in (None, CACHE_OFF) and predict_peak(run).stages["denoise"].state_bytes > 0


LADDER: tuple[Rung, ...] = (
    Rung(
        "half_precision", _fixed("half precision (fp16/bf16) instead of fp32"),
        lambda p: _when(p.dtype == "fp32" and not p.dtype_fixed and p.device != "cpu", p, dtype="fp16"),
        runtime=False,
    ),
    Rung(
        "offload_encoders", _named("move {encoders} off the GPU after encoding"),
        lambda p: _when(p.offload == "none" and p.device != "cpu", p, offload="encoders"),
    ),
    Rung(
        "tiled_decode", _fixed("decode one frame at a time, in tiles"),
        lambda p: _when(p.decode_chunk_size > 1 or not p.vae_tiling, p, decode_chunk_size=1, vae_tiling=True),
    ),
    Rung(
        "split_guidance", _fixed("split guidance into two passes"),
        lambda p: _when(p.guided and p.cfg_mode == "batch", p, cfg_mode="split"),
    ),
    Rung(
        "ff_chunking", _named("run {denoiser}'s feed-forward layers one frame at a time"),
        lambda p: _when(not p.ff_chunking, p, ff_chunking=True),
    ),
    Rung(
        "model_offload", _fixed("keep only the running model on the GPU (model CPU offload)"),
        lambda p: _when(p.offload in ("none", "encoders") and p.device == "cuda", p, offload="model"),
    ),
    Rung(
        "group_offload", _named("stream {denoiser}'s blocks to the GPU one at a time (group offload)"),
        # diffusers refuses model offload beside group offload; with the denoiser streamed, moving the encoders off
        # after encoding leaves the same weights resident.
        lambda p: _when(
            not p.group_offload and p.offload != "sequential" and p.device == "cuda", p,
            group_offload=True, offload="encoders" if p.offload == "model" else p.offload,
        ),
    ),
    Rung(
        "fp8_weights", _named("store {denoiser}'s weights in FP8, computed in half precision"),
        lambda p: _when(not p.fp8_weights and p.device == "cuda", p, fp8_weights=True),
    ),
    Rung(
        "drop_cache",
        lambda before, after: f"turn the {before.cache} step cache off (slower: trades its speed-up for its memory)",
        lambda p: _when(_holds_state(p), p, cache=CACHE_OFF),
    ),
    Rung(
        "sequential_offload", _fixed("stream the weights layer by layer (sequential CPU offload, much slower)"),
        # Sequential offload streams every layer: it replaces group offload (diffusers refuses both at once).
        lambda p: _when(p.offload != "sequential" and p.device == "cuda", p, offload="sequential", group_offload=False),
    ),
    Rung(
        "fewer_frames", lambda before, after: f"fewer frames ({before.num_frames} → {after.num_frames})",
        _fewer_frames,
    ),
    Rung(
        "lower_resolution",
        lambda before, after: f"lower resolution ({before.width}×{before.height} → {after.width}×{after.height})",
        _smaller_size,
    ),
)


def unconstrained_plan(
    run: RunPlan,
    device: DeviceInfo,
    *,
    margin: float = DEFAULT_MARGIN,
    dtype: Precision | None = None,
    attention: Attention | None = None,
    decode_chunk: int = 1,
) -> MemoryFit:
    """`run` exactly as resolved, on `device` (its default dtype unless `dtype` pins one, no offload, guidance in
    one pass where the model can batch it), with its prediction."""
    if not 0 <= margin < 1:
        raise ValueError(f"margin must be in [0, 1), got {margin}")
    # A cost model may say how its pipeline runs guidance (some always run two batch-1 passes, nothing to split).
    cfg_mode = getattr(plugin(run.backend).cost_model(), "cfg_mode", "batch") if run.guided else "batch"
    start = run.model_copy(update=dict(
        device=device.kind, dtype=dtype or _default_dtype(device), cfg_mode=cfg_mode,
        decode_chunk_size=max(1, min(decode_chunk, run.num_frames)),
        attention=attention or ("math" if device.kind == "mps" else "efficient"),
        user_set=run.user_set | ({"dtype"} if dtype is not None else set()),
    ))
    return _predicted(MemoryFit(run=start, budget_bytes=int(device.free_bytes * (1 - margin))))


def make_plan(
    run: RunPlan,
    device: DeviceInfo,
    *,
    margin: float = DEFAULT_MARGIN,
    dtype: Precision | None = None,
    attention: Attention | None = None,
    decode_chunk: int = 1,
) -> MemoryFit:
    """`run` narrowed to the fastest settings predicted to fit under the device's free memory less `margin`; if
    none does, the last one tried, with a warning saying so. Settings the user set stay unless the run allows
    degrading them."""
    return narrow(unconstrained_plan(run, device, margin=margin, dtype=dtype, attention=attention, decode_chunk=decode_chunk), device)


def narrow(plan: MemoryFit, device: DeviceInfo) -> MemoryFit:
    """`plan` (an unconstrained one) stepped down the ladder until it fits, with the device's warnings."""
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


def next_rung(plan: MemoryFit, *, stage: str | None = None) -> MemoryFit | None:
    """One rung down for a run that ran out of memory (in `stage` when known): the cheapest remaining rung
    predicted to lower that stage's peak, else the cheapest remaining one, since the prediction was wrong once
    already. None when the ladder is exhausted. Never changes dtype: that needs the model reloaded."""
    target = stage if stage in plan.estimate().stages else None
    return _first_relief(plan, stage=target, runtime=True) or next(_lower_plans(plan, runtime=True), None)


def _first_relief(plan: MemoryFit, *, stage: str | None, runtime: bool) -> MemoryFit | None:
    """The first plan down the ladder whose predicted peak (of `stage`, or overall) is lower than `plan`'s."""
    current = _stage_bytes(plan.estimate(), stage)
    for lower in _lower_plans(plan, runtime=runtime):
        if _stage_bytes(lower.estimate(), stage) < current:
            return lower
    return None


def _lower_plans(plan: MemoryFit, *, runtime: bool) -> Iterator[MemoryFit]:
    offered = plugin(plan.run.backend).cost_model().rungs
    for rung in LADDER:
        if (runtime and not rung.runtime) or rung.name not in offered:
            continue
        run = rung.lower(plan.run)
        if run is None:
            continue
        lower = _predicted(plan.model_copy(update=dict(run=run)))
        saved = plan.predicted_peak_bytes - lower.predicted_peak_bytes
        effect = f"−{format_bytes(saved)}" if saved > 0 else "no predicted saving"
        yield lower.model_copy(update=dict(changes=[*plan.changes, f"{rung.label(plan.run, run)}: {effect}"]))


def _predicted(plan: MemoryFit) -> MemoryFit:
    peak = plan.estimate().peak_bytes
    return plan.model_copy(update=dict(predicted_peak_bytes=peak, fits=peak <= plan.budget_bytes))


def _stage_bytes(estimate: MemoryEstimate, stage: str | None) -> int:
    return estimate.stages[stage].total_bytes if stage else estimate.peak_bytes


def _default_dtype(device: DeviceInfo) -> Precision:
    """bf16 where the hardware has it (fp16 overflows to NaN more easily), as the loader picks."""
    if device.kind == "cpu":
        return "bf16" if device.bf16 else "fp32"
    return "bf16" if device.bf16 and device.kind == "cuda" else "fp16"


def _over_budget(plan: MemoryFit) -> str:
    message = (
        f"predicted peak {format_bytes(plan.predicted_peak_bytes)} is over the {format_bytes(plan.budget_bytes)} "
        "budget even after every allowed change"
    )
    fixed = [name for name, flag in (("frames", plan.run.frames_fixed), ("resolution", plan.run.size_fixed)) if flag]
    if fixed:
        message += f"; you fixed {' and '.join(fixed)}: allow degrading them, or free device memory"
    return message
