"""Cost of one I2VGen-XL denoising step.

1. FLOPs per UNet step (classifier-free guidance as one batch-2 pass), traced on the meta device, for the shapes
   users pick, with what that means in seconds at a few GPUs' dense bf16 throughput.
2. Our sampler's measured time per step on this CPU at real size with random weights (256×256×8 frames),
   fp32 and bf16 side by side in one run, and their ratio.

Run: python bench/step.py [--steps 3] [--skip-cpu]      (not part of CI: the CPU part takes a few minutes)
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image
from diffusers.utils import logging as diffusers_logging
from rich.console import Console
from rich.table import Table

from i2v.models.base import Hooks
from i2v.models.i2vgenxl.architecture import real_size_components, real_size_unet, unet_step_flops
from i2v.models.i2vgenxl.sampler import I2VGenXLSampler

SHAPES = [(256, 256, 8), (512, 512, 16), (1280, 704, 16), (1024, 1024, 32)]
#: Dense bf16 tensor throughput, TFLOP/s, as sold; real UNet steps reach a fraction of it.
GPUS = {"RTX 4090": 165, "A100": 312, "H100 SXM": 990}


def flops_table(console: Console) -> None:
    unet = real_size_unet("meta", torch.float16)
    table = Table(title="FLOPs per UNet step (CFG batch 2, meta device)")
    table.add_column("width×height×frames")
    table.add_column("TFLOP/step", justify="right")
    table.add_column("vs 256²×8", justify="right")
    for name in GPUS:
        table.add_column(f"50 steps @ {name} peak", justify="right")
    base = None
    for width, height, frames in SHAPES:
        flops = unet_step_flops(width, height, frames, unet=unet)
        base = base or flops
        row = [f"{width}×{height}×{frames}", f"{flops / 1e12:.1f}", f"{flops / base:.1f}×"]
        row += [f"{50 * flops / (tflops * 1e12):.1f} s" for tflops in GPUS.values()]
        table.add_row(*row)
    console.print(table)


def cpu_step_times(console: Console, steps: int) -> None:
    image = Image.fromarray((np.random.default_rng(0).random((256, 256, 3)) * 255).astype(np.uint8))
    started = time.perf_counter()
    pipeline = I2VGenXLSampler(**real_size_components(torch.float32))
    pipeline.set_progress_bar_config(disable=True)
    console.print(f"built the real-size pipeline with random weights in {time.perf_counter() - started:.0f} s")
    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        pipeline.to(dtype=dtype)
        stamps: list[float] = []
        output = pipeline(
            image, "a cat turning its head", "blurry", width=256, height=256, num_frames=8, target_fps=8,
            num_inference_steps=steps, seed=0, hooks=Hooks(on_step=lambda step, total, elapsed: stamps.append(elapsed)),
        )
        per_step = np.diff([0.0, *stamps])
        steady = per_step[1:] if len(per_step) > 1 else per_step
        results[dtype] = (float(steady.mean()), float(per_step[0]), output.timings)
    table = Table(title=f"Our sampler on this CPU ({torch.get_num_threads()} threads), 256×256×8, CFG batch 2")
    for column in ("dtype", "s/step (steady)", "first step", "encode", "decode 8 frames"):
        table.add_column(column, justify="right")
    for dtype, (steady, first, timings) in results.items():
        table.add_row(str(dtype).removeprefix("torch."), f"{steady:.1f}", f"{first:.1f}", f"{timings['encode']:.1f}", f"{timings['decode']:.1f}")
    console.print(table)
    fp32, bf16 = results[torch.float32][0], results[torch.bfloat16][0]
    console.print(f"bf16 is {fp32 / bf16:.2f}× the speed of fp32 per step on this CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="denoising steps per dtype (the first is warm-up)")
    parser.add_argument("--skip-cpu", action="store_true", help="only print the FLOPs table")
    args = parser.parse_args()
    diffusers_logging.set_verbosity_error()  # "modules kept in float32" notices on every dtype switch
    console = Console(width=140)
    flops_table(console)
    if not args.skip_cpu:
        cpu_step_times(console, args.steps)


if __name__ == "__main__":
    main()
