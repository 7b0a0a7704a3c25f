"""`i2v plan`: what a request will cost on this (or a planned) device, as a dict for --json and a table for people."""

from __future__ import annotations

from typing import Any

from PIL import Image
from rich.table import Table

from i2v.advisor.assess import image_warnings
from i2v.advisor.device import DeviceInfo, format_bytes, probe_device
from i2v.advisor.plan import (
    DEFAULT_MARGIN,
    MemoryFit,
    Precision,
    narrow,
    part_names,
    unconstrained_plan,
)
from i2v.models.base import STAGE_VERBS
from i2v.models.cost import MemoryEstimate
from i2v.models.registry import plugin, spec_for
from i2v.request import GenerationRequest

#: Dense fp16/bf16 tensor throughput as sold, TFLOP/s (no sparsity; fp32 accumulate where the spec splits it).
#: Matched against the device name, longest key first.
PEAK_TFLOPS = {
    "H200": 989, "H100 PCIe": 756, "H100": 989, "A100": 312, "L40S": 362, "L40": 181, "A10": 125, "L4": 121,
    "T4": 65, "V100": 125, "RTX 6000 Ada": 364, "RTX A6000": 155, "RTX 4090": 165, "RTX 4080": 97,
    "RTX 4070": 58, "RTX 3090": 71, "RTX 3080": 60,
}
DEFAULT_TFLOPS = {"cuda": 100.0, "mps": 10.0}
#: Share of peak a video denoiser step sustains (convolutions, norms, attention at these shapes): a guess to
#: calibrate against a measured run.
UTILIZATION = 0.4
#: Measured on our 2-core dev machine: a 4.95 TFLOP step (256²×8, batch 2) in 16 s in bf16 (docs/architecture.md).
CPU_TFLOPS = 0.3
#: Host-to-device copy rate for offloaded weights (PCIe 4.0 x16, pageable memory).
PCIE_BYTES_PER_SECOND = 12e9
#: The plan's settings the report shows (of `MemoryFit.record`).
REPORTED = frozenset({
    "backend", "width", "height", "frames", "steps", "dtype", "offload", "cfg_mode", "decode_chunk", "vae_tiling",
    "ff_chunking", "group_offload", "fp8_weights", "attention", "cache",
})


def plan_report(
    request: GenerationRequest,
    image_size: tuple[int, int],
    vram: str | None = None,
    allow_degrade: bool = False,
    margin: float = DEFAULT_MARGIN,
    *,
    device: str | None = None,
    dtype: Precision | None = None,
    image: Image.Image | None = None,
) -> dict[str, Any]:
    """Everything `i2v plan` shows: the plan, its predicted peak against the budget, what the request as given
    would need, the changes made and a time estimate. JSON-ready (plain types only). The request is resolved
    once and planned once: the plan is the request as given, narrowed."""
    info = probe_device(device, vram)
    spec = spec_for(request.model)
    run = spec.resolve(request.model_copy(update={"allow_degrade": request.allow_degrade or allow_degrade}), image_size)
    given = unconstrained_plan(run, info, margin=margin, dtype=dtype)
    plan = narrow(given, info)
    estimate = plan.estimate()
    image_notes = image_warnings(image, max_aspect=spec.size.max_aspect) if image is not None else []
    warnings = [*plan.warnings, *spec.warnings(run), *image_notes]
    return dict(
        device=dict(
            name=info.name, kind=info.kind, total_bytes=info.total_bytes, free_bytes=info.free_bytes,
            capability=list(info.capability) if info.capability else None, bf16=info.bf16, source=info.source,
        ),
        predicted_peak_bytes=plan.predicted_peak_bytes,
        unconstrained_peak_bytes=given.predicted_peak_bytes,
        unconstrained_fits=given.fits,
        budget_bytes=plan.budget_bytes,
        margin=margin,
        fits=plan.fits,
        changes=list(plan.changes),
        plan={key: value for key, value in plan.record().items() if key in REPORTED},
        stages={stage: peak.model_dump() for stage, peak in estimate.stages.items()},
        peak_stage=estimate.peak_stage,
        warnings=warnings,
        predicted_seconds=round(predicted_seconds(plan, estimate, info), 1),
        cache_compute=estimate.cache.model_dump() if estimate.cache else None,
    )


def predicted_seconds(plan: MemoryFit, estimate: MemoryEstimate, device: DeviceInfo) -> float:
    """Traced FLOPs (the denoise stage's scaled by the step cache's expected share) over the device's throughput,
    plus weight copies the offload mode adds. Rough: it ignores the cost of feed-forward chunking's smaller
    kernels and of model loading."""
    flops = sum(estimate.flops.values())
    if device.kind == "cpu":
        compute = flops / (CPU_TFLOPS * 1e12)
    else:
        compute = flops / (device_tflops(device) * 1e12 * UTILIZATION)
    return compute + plugin(plan.run.backend).cost_model().copy_bytes(plan.run) / PCIE_BYTES_PER_SECOND


def device_tflops(device: DeviceInfo) -> float:
    name = device.name.lower()
    for key in sorted(PEAK_TFLOPS, key=len, reverse=True):
        if key.lower() in name:
            return float(PEAK_TFLOPS[key])
    return DEFAULT_TFLOPS.get(device.kind, DEFAULT_TFLOPS["cuda"])


def render_plan_table(report: dict[str, Any]) -> Table:
    """The report for people: settings, memory against budget, time, and what was changed and why."""
    plan, device = report["plan"], report["device"]
    fits = "[green]fits[/green]" if report["fits"] else "[red]does not fit[/red]"
    title = f"Plan for {device['name']} ({format_bytes(device['total_bytes'])}, {device['source']})"
    table = Table(title=title, show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("size", f"{plan['width']}×{plan['height']}, {plan['frames']} frames, {plan['steps']} steps")
    table.add_row("precision / attention", f"{plan['dtype']} / {plan['attention']}")
    denoiser = part_names(plan["backend"])["denoiser"]
    streamed = f", {denoiser}'s blocks streamed (group offload)" if plan.get("group_offload") else ""
    table.add_row("offload", plan["offload"] + streamed)
    table.add_row("guidance", "one batch-2 pass" if plan["cfg_mode"] == "batch" else "two batch-1 passes")
    table.add_row("VAE decode", f"{plan['decode_chunk']} frame(s) at a time{', tiled' if plan['vae_tiling'] else ''}")
    table.add_row("feed-forward chunking", "on" if plan["ff_chunking"] else "off")
    if plan.get("fp8_weights"):
        table.add_row(f"{denoiser} weights", f"FP8, computed in {plan['dtype']}")
    if plan.get("cache") not in (None, "off"):
        state = max(stage.get("state_bytes", 0) for stage in report["stages"].values())
        table.add_row("step cache", f"{plan['cache']}, keeping {format_bytes(state)} between denoiser calls")
    table.add_row(
        "predicted peak",
        f"{format_bytes(report['predicted_peak_bytes'])} of {format_bytes(report['budget_bytes'])} budget "
        f"({report['margin']:.0%} margin, peak while {STAGE_VERBS[report['peak_stage']]}): {fits}",
    )
    table.add_row("as requested", format_bytes(report["unconstrained_peak_bytes"]))
    cache = report.get("cache_compute")
    saving = (
        f" (with {cache['cache']}: {cache['fraction']:.2f} of the uncached denoise work; {cache['note']})"
        if cache and cache.get("note") else ""
    )
    table.add_row("predicted time", f"≈ {report['predicted_seconds']:.0f} s{saving}")
    for label, items in (("changes", report["changes"]), ("warnings", report["warnings"])):
        if items:
            table.add_row(label, "\n".join(f"• {item}" for item in items))
    return table
