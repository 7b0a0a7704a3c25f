"""The advisor's memory model against the measurements of the prototype i2v grew from on a 24 GB RTX 4090.

The seed ran diffusers' defaults: fp16, every model on the GPU, SDPA attention, guidance in one batch-2 pass,
VAE decode one frame at a time. It reported 13.2 GB peak at 512p/16 frames/50 steps, 17.8 GB at 768p/24/80 and
out-of-memory at 1024p/32/100. We read "GB" as 10^9 bytes (what most tools print) and show GiB beside it; we
assume square frames (512×512 for 512p), since the seed's image is unknown.

Also times the model: a new shape (traced on the meta device) and the same shape again (cached).

Run: python bench/memory.py [--vram 24GiB]          (CPU only, about half a minute on first run)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from rich.console import Console
from rich.table import Table

from i2v.advisor.device import GiB, format_bytes, probe_device
from i2v.advisor.plan import make_plan, unconstrained_plan
from i2v.models.cost import FRAGMENTATION, RUNTIME_OVERHEAD_BYTES
from i2v.models.i2vgenxl import PLUGIN
from i2v.models.i2vgenxl.cost import CACHE, predict_peak
from i2v.models.plan import RunPlan
from i2v.request import GenerationRequest

#: The prototype's model, named in every request whatever I2V_MODEL says (its spec and cost model plan them).
MODEL = PLUGIN.known[0].model_id

#: (resolution, frames, steps, seed's measured peak in GB or None for out-of-memory)
SEED = [("512p", 16, 50, 13.2), ("768p", 24, 80, 17.8), ("1024p", 32, 100, None)]


def seed_table(console: Console, vram: str) -> None:
    device = probe_device(vram=vram)
    table = Table(title=f"Predicted peak vs the seed's RTX 4090, planned as {format_bytes(device.total_bytes)}: fp16, no offload, CFG batch 2")
    for column in ("config", "predicted", "seed measured", "pred − seed", "fits 24 GiB: predicted / seed", "peak stage: weights + activations"):
        table.add_column(column, justify="right")
    for resolution, frames, steps, measured in SEED:
        request = GenerationRequest(
            image="seed.png", prompt="seed", model=MODEL, resolution=resolution, num_frames=frames, steps=steps
        )
        plan = unconstrained_plan(PLUGIN.spec.resolve(request, (1, 1)), device, margin=0.0, dtype="fp16")
        estimate = predict_peak(plan.run)
        stage = estimate.stages[estimate.peak_stage]
        peak = estimate.peak_bytes
        table.add_row(
            f"{resolution} {plan.run.width}×{plan.run.height}×{frames}, {steps} steps",
            f"{peak / 1e9:.1f} GB ({peak / GiB:.1f} GiB)",
            f"{measured:.1f} GB ({measured * 1e9 / GiB:.1f} GiB)" if measured else "OOM",
            f"{(peak - measured * 1e9) / (measured * 1e9):+.0%}" if measured else "",
            f"{'yes' if peak <= device.total_bytes else 'no'} / {'yes' if measured else 'no'}",
            f"{estimate.peak_stage}: {format_bytes(stage.weights_bytes)} + {format_bytes(stage.activation_bytes)}",
        )
    console.print(table)
    console.print(
        f"overhead constant {format_bytes(RUNTIME_OVERHEAD_BYTES['cuda'])} + {FRAGMENTATION:.0%} of activations "
        "(uncalibrated: no GPU here)"
    )


def ladder_table(console: Console, vram: str) -> None:
    device = probe_device(vram=vram)
    request = GenerationRequest(image="seed.png", prompt="seed", model=MODEL, resolution="1024p", num_frames=32, steps=100)
    plan = make_plan(PLUGIN.spec.resolve(request, (1280, 704)), device)
    console.print(f"1024p/32/100 on a 1280×704 image, {vram}: {plan.run.width}×{plan.run.height}, "
                  f"{format_bytes(plan.predicted_peak_bytes)} of {format_bytes(plan.budget_bytes)}, fits={plan.fits}")
    for change in plan.changes:
        console.print(f"  • {change}")


def timing(console: Console) -> None:
    """A shape no earlier call traced, then the same one again (in-process cache), then a fresh process's view
    (in-process cache cleared, JSON file warm)."""
    base = RunPlan(backend=PLUGIN.name, width=576, height=320, num_frames=12, steps=50, guidance_scale=9.0)
    predict_peak(base.model_copy(update=dict(width=640)))  # import and build the meta models first
    started = time.perf_counter()
    predict_peak(base)
    new = time.perf_counter() - started
    started = time.perf_counter()
    predict_peak(base)
    cached = time.perf_counter() - started
    CACHE.clear()
    started = time.perf_counter()
    predict_peak(base)
    from_file = time.perf_counter() - started
    console.print(f"memory model: new shape {new:.2f} s, cached {cached * 1000:.1f} ms, from the JSON file {from_file * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vram", default="24GiB")
    arguments = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as home:
        os.environ["I2V_HOME"] = home  # time a cold cache, and leave the user's alone
        seed_table(console, arguments.vram)
        ladder_table(console, arguments.vram)
        timing(console)


if __name__ == "__main__":
    main()
