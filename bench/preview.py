"""What a live preview costs per denoising step, against the step itself, side by side in one run on this CPU.

For each model, one denoising step of its denoiser at real width but reduced depth (random weights, classifier-free
guidance as the backend runs it: I2VGen-XL one batch-2 UNet call, Wan 2.2 two transformer calls) is timed at a
small shape, and its FLOPs counted, which gives this CPU's throughput on that network. The full-depth step at the
bench shape and at the model's default size (I2VGen-XL 512×512×16, Wan 2.2 1280×704×121) is that throughput
applied to the real network's FLOPs, counted on the meta device.

The preview is what the sampling thread does when one is due (`LivePreview.show`: the 3×C projection of the x0
estimate, the bilinear upscale to ≤256 px, uint8, to the CPU), timed at both shapes, with a projection of the
model's channel count (its values do not change its cost), and amortised over the steps between previews (a
50-step run shows one every 6 steps). The animated-WebP encode that follows runs on the job runner's writer
thread, not the sampling thread; it is reported beside, per preview and per step.

On a GPU a step is far quicker, so the bench also bounds the share there: the preview's CPU time (more than it
takes on a GPU) over the step's FLOPs at an RTX 4090's dense bf16 peak (less than a step takes there).

Times are CPU seconds of this process (one thread by default): the work done, which other jobs on a shared
machine barely change. The one-time fit of a projection with the real-size VAE is timed with --fit (minutes).

Run: python bench/preview.py [--threads 1] [--fit]   (not part of CI; about a minute without --fit)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from i2v.media.previews import encode_preview
from i2v.models.base import Hooks
from i2v.models.preview import LivePreview, Projection

#: A 50-step run previews every round(50 / 8) = 6 steps.
STEPS = 50
#: RTX 4090 dense bf16 peak, TFLOP/s: a step can take no less than its FLOPs over this on that card.
GPU_PEAK = 165e12


def cpu_seconds(action: Callable[[], object], repeat: int) -> float:
    """The fastest of `repeat` runs, in CPU seconds of this process."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        action()
        best = min(best, time.process_time() - started)
    return best


def flops_of(action: Callable[[], object]) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        action()
    return counter.get_total_flops()


def preview_cost(channels: int, latent: tuple[int, int, int], repeat: int = 5) -> tuple[float, float, int]:
    """(seconds per LivePreview.show, seconds per WebP encode of its frames, WebP bytes) for a C×t×h×w x0."""
    frames_shown: list[np.ndarray] = []
    rng = np.random.default_rng(0)
    projection = Projection(rng.normal(0, 0.1, (3, channels)).astype(np.float32), np.zeros(3, np.float32))
    live = LivePreview(Hooks(on_preview=lambda step, total, frames: frames_shown.append(frames)), STEPS, projection)
    x0 = torch.randn(1, channels, *latent)
    show = cpu_seconds(lambda: live.show(STEPS, x0), repeat)
    encode = cpu_seconds(lambda: encode_preview(frames_shown[-1]), 2)
    return show, encode, len(encode_preview(frames_shown[-1]))


def i2vgenxl(console: Console, size: int, frames: int, layers: int) -> dict:
    from diffusers import I2VGenXLUNet

    from i2v.models.i2vgenxl.architecture import unet_step_flops, unet_step_inputs

    torch.manual_seed(0)
    unet = I2VGenXLUNet(layers_per_block=layers).eval()
    inputs = unet_step_inputs(unet, size, size, frames, device="cpu")
    inputs = {key: torch.randn_like(value) if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dim() > 1 else value
              for key, value in inputs.items()}
    with torch.no_grad():
        step = lambda: unet(**inputs)
        step()  # warm-up
        seconds = cpu_seconds(step, 2)
        flops = flops_of(step)
    console.print(f"I2VGen-XL UNet, real width, {layers} layer(s) per block (the model has 2): "
                  f"{sum(p.numel() for p in unet.parameters()) / 1e6:.0f} M parameters; {size}²×{frames} batch 2: "
                  f"{seconds:.2f} CPU s, {flops / 1e12:.2f} TFLOP → {flops / seconds / 1e9:.0f} GFLOP/s")
    return {
        "model": "I2VGen-XL", "channels": 4, "throughput": flops / seconds,
        "shapes": {
            f"{size}²×{frames}": ((frames, size // 8, size // 8), unet_step_flops(size, size, frames)),
            "512²×16 (default)": ((16, 64, 64), unet_step_flops(512, 512, 16)),
        },
    }


def wan(console: Console, size: int, frames: int, layers: int) -> dict:
    from diffusers import WanTransformer3DModel

    from i2v.models.wan22.architecture import (
        TRANSFORMER_CONFIG,
        trace_transformer,
        transformer_inputs,
    )

    torch.manual_seed(0)
    transformer = WanTransformer3DModel(**{**TRANSFORMER_CONFIG, "num_layers": layers}).eval()
    inputs = transformer_inputs(size, size, frames, torch.float32, device="cpu")
    inputs = {key: torch.randn_like(value) if isinstance(value, torch.Tensor) else value for key, value in inputs.items()}
    inputs["timestep"] = torch.full_like(inputs["timestep"], 500.0)
    with torch.no_grad():
        step = lambda: [transformer(**inputs) for _ in range(2)]  # guidance: two calls a step
        transformer(**inputs)  # warm-up
        seconds = cpu_seconds(step, 1)
        flops = flops_of(step)
    latent_frames = (frames - 1) // 4 + 1
    console.print(f"Wan 2.2 transformer, real width, {layers} block(s) (the model has {TRANSFORMER_CONFIG['num_layers']}): "
                  f"{sum(p.numel() for p in transformer.parameters()) / 1e6:.0f} M parameters; {size}²×{frames} frames, "
                  f"2 calls: {seconds:.2f} CPU s, {flops / 1e12:.2f} TFLOP → {flops / seconds / 1e9:.0f} GFLOP/s")
    return {
        "model": "Wan 2.2 TI2V-5B", "channels": 48, "throughput": flops / seconds,
        "shapes": {
            f"{size}²×{frames}": ((latent_frames, size // 16, size // 16), 2 * trace_transformer(size, size, frames, torch.float32).flops),
            "1280×704×121 (default)": ((31, 44, 80), 2 * trace_transformer(1280, 704, 121, torch.float32).flops),
        },
    }


def fit_times(console: Console) -> None:
    """The one-time fit with each real-size VAE (random weights), as the first job wanting a preview pays it."""
    from diffusers import AutoencoderKL, AutoencoderKLWan

    from i2v.models.i2vgenxl.architecture import VAE_CONFIG as SD_VAE
    from i2v.models.preview import LatentSpace, fit_from_vae
    from i2v.models.wan22.architecture import VAE_CONFIG as WAN_VAE

    sd = AutoencoderKL(**SD_VAE).eval()
    wan_vae = AutoencoderKLWan(**WAN_VAE).eval()
    spaces = [
        LatentSpace("i2vgenxl", sd,
                    lambda px: torch.stack([sd.encode(px[:, :, i]).latent_dist.mode() for i in range(px.shape[2])], 2),
                    lambda z: torch.stack([sd.decode(z[:, :, i]).sample for i in range(z.shape[2])], 2), spatial=8),
        LatentSpace("wan22", wan_vae, lambda px: wan_vae.encode(px).latent_dist.mode(),
                    lambda z: wan_vae.decode(z, return_dict=False)[0], spatial=16, temporal=4),
    ]
    for space in spaces:
        seconds = cpu_seconds(lambda space=space: fit_from_vae(space), 1)
        console.print(f"one-time projection fit with the real-size {space.name} VAE: {seconds:.0f} CPU s on this CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fit", action="store_true", help="also time the one-time fit with the real-size VAEs (minutes)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    console = Console(width=200)
    every = max(1, round(STEPS / 8))
    models = [i2vgenxl(console, size=128, frames=8, layers=1), wan(console, size=256, frames=9, layers=1)]
    table = Table(title=f"Live preview vs one denoising step (CPU, {args.threads} thread(s); a preview every {every} of {STEPS} steps)")
    for column in ("model", "shape", "step, full depth, this CPU", "preview, this CPU", "preview / step",
                   "amortised per step", "bound on RTX 4090: step ≥", "preview / step ≤", "amortised ≤",
                   "WebP encode (writer thread)", "WebP bytes"):
        table.add_column(column, justify="left" if column in ("model", "shape") else "right")
    for model in models:
        for shape, (latent, flops) in model["shapes"].items():
            step = flops / model["throughput"]
            gpu_step = flops / GPU_PEAK
            show, encode, size = preview_cost(model["channels"], latent)
            table.add_row(model["model"], shape, f"{step:.1f} s", f"{show * 1000:.1f} ms", f"{show / step:.4%}",
                          f"{show / every / step:.4%}", f"{gpu_step * 1000:.0f} ms", f"{show / gpu_step:.2%}",
                          f"{show / every / gpu_step:.2%}", f"{encode * 1000:.0f} ms", f"{size / 1024:.0f} KiB")
    console.print(table)
    console.print("Full-depth step times: this CPU's measured throughput on the reduced-depth network applied to the "
                  "real network's FLOPs (meta-device count). Target: the preview under 2 % of a step at real size.")
    if args.fit:
        fit_times(console)


if __name__ == "__main__":
    main()
