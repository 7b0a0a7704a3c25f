"""Wan 2.2 step caches against no cache, side by side in one run on this CPU.

A Wan 2.2 TI2V-5B transformer at real width (hidden 3072 = 24 heads × 128, feed-forward 14336, text width 4096,
a 512-token prompt, classifier-free guidance as two calls per step as the pipeline makes them) but only a few
blocks (the real model has 30) and a small latent, with random weights, run through diffusers'
`WanImageToVideoPipeline` for N steps, once with no cache and once with each cache the Wan spec offers, configured
exactly as the backend configures them (`CACHE_CONFIGS`). For each: transformer time per step and its ratio to
off, how many of the blocks' self-attention and feed-forward passes ran, the most state the cache held at any
step, and the PSNR of the final latents against off's.

On random weights the PSNR says how aggressive a setting is (how far it moves the output), not how the video
looks: a trained model's features change between steps in ways random ones do not, and FirstBlockCache's
threshold compares exactly those changes. The time ratio is also shape-dependent: with a few blocks the first
block, which first-block always runs, is a larger share than in the 30-block model, and at this small latent the
linear layers dominate where at 720p attention is about half the step, so self-attention skipping (pab) saves
more there than here.

Two more rows, not offered: first-block at a threshold random weights cross (at 0.1 it skips nothing on them),
to show what a skipped step saves; TaylorSeer on every block's attn1/attn2/ffn (the form diffusers' docs
suggest), to show why the backend extrapolates the output projection instead: its state grows with tokens ×
width × blocks. The cache state column is the most measured at any step, and scaled to 720p × 121 frames.

MagCache's skips do not depend on the weights at all: it follows its authors' curve, calibrated on the trained
model, so it skips as many calls here as on the real model with the same step count; what the skips cost in
quality only the trained model shows (here, PSNR again says how far the output moves).

Times are CPU seconds of this process per transformer call, on one thread: the work done, which other jobs on
a shared machine barely change (its wall time swung by 2× between identical runs on 2 shared cores).

Run: python bench/wan_cache.py [--layers 3] [--steps 10] [--size 256] [--frames 9] [--threads 1] [--rounds 1]
(not part of CI; about 10 minutes at the defaults).
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from typing import Any

import numpy as np
import torch
from diffusers import FirstBlockCacheConfig, TaylorSeerCacheConfig, WanImageToVideoPipeline, WanTransformer3DModel
from PIL import Image
from rich.console import Console
from rich.table import Table

from i2v.models.wan22.backend import CACHE_CONFIGS
from i2v.models.wan22.tiny import tiny_components

#: Wan 2.2 TI2V-5B's transformer config, but for the number of blocks.
REAL_WIDTH = dict(
    patch_size=(1, 2, 2), num_attention_heads=24, attention_head_dim=128, in_channels=48, out_channels=48,
    text_dim=4096, freq_dim=256, ffn_dim=14336, cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6,
    rope_max_seq_len=1024,
)
PROMPT_TOKENS = 512
GUIDANCE = 5.0
#: 720p × 121 frames: 31 latent frames × (704/32) × (1280/32) tokens, through 30 blocks.
REAL_TOKENS, REAL_BLOCKS = 31 * 22 * 40, 30


def per_module_taylorseer(pipeline: WanImageToVideoPipeline, steps: int) -> TaylorSeerCacheConfig:
    return TaylorSeerCacheConfig(
        cache_interval=3, disable_cache_before_step=3, max_order=1, taylor_factors_dtype=torch.float32,
        cache_identifiers=[r"blocks\.\d+\.attn1", r"blocks\.\d+\.attn2", r"blocks\.\d+\.ffn"],
    )


#: Rows beyond the offered caches (marked *), to read the offered ones by.
NOT_OFFERED = {
    # The same mechanism at a threshold random weights cross (their first-block residual changes 15-20% a step).
    "first-block @0.2*": lambda pipeline, steps: FirstBlockCacheConfig(threshold=0.2),
    # The form diffusers' docs suggest: state for every module of every block.
    "taylorseer per-module*": per_module_taylorseer,
}
#: How each row's cache state grows to the real shape: all grow with tokens; (per block?, in the model's dtype?)
#: (the Taylor factors are kept in fp32 as configured, the others in the model's dtype: bf16 on a GPU).
STATE_SCALING = {
    "first-block": (False, True), "first-block @0.2*": (False, True), "taylorseer": (False, False),
    "pab": (True, True), "taylorseer per-module*": (True, False), "magcache": (False, True),
}


def state_bytes(transformer: torch.nn.Module) -> int:
    """Bytes of the tensors the cache hooks hold (each tensor once), less their configuration (MagCache's curve)."""
    seen: dict[tuple[int, int], int] = {}

    def walk(value: Any, depth: int) -> None:
        if depth > 6 or isinstance(value, (torch.nn.Module, str, bytes, int, float)) or callable(value) and not hasattr(value, "__dict__"):
            return
        if isinstance(value, torch.Tensor):
            seen[(value.data_ptr(), value.numel())] = value.numel() * value.element_size()
        elif isinstance(value, dict):
            for item in value.values():
                walk(item, depth + 1)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item, depth + 1)
        elif hasattr(value, "__dict__"):
            for key, item in vars(value).items():
                if key not in ("fn_ref", "_metadata", "current_timestep_callback", "config"):
                    walk(item, depth + 1)

    for module in transformer.modules():
        registry = getattr(module, "_diffusers_hook", None)
        if registry is not None:
            for hook in registry.hooks.values():
                walk(hook, 0)
    return sum(seen.values())


def psnr(output: np.ndarray, reference: np.ndarray) -> float:
    """Over the reference's range; inf when equal."""
    error = float(np.sqrt(np.mean((output - reference) ** 2)))
    if error == 0:
        return math.inf
    return 20 * math.log10(float(reference.max() - reference.min()) / error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=3, help="transformer blocks (the real model has 30)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--size", type=int, default=256, help="width = height in pixels (16× VAE, 2×2 patch)")
    parser.add_argument("--frames", type=int, default=9, help="4k+1")
    parser.add_argument("--threads", type=int, default=1, help="1: CPU time is then the work done, whatever else runs")
    parser.add_argument("--rounds", type=int, default=1, help="every mode once per round; the fastest round counts")
    args = parser.parse_args()
    if args.layers < 2:
        parser.error("--layers must be at least 2: first-block needs a block after the first")
    torch.set_num_threads(args.threads)
    console = Console()

    started = time.perf_counter()
    components = tiny_components()  # the tiny VAE, scheduler (UniPC, shift 5) and tokenizer around the transformer
    torch.manual_seed(0)
    components["transformer"] = WanTransformer3DModel(num_layers=args.layers, **REAL_WIDTH).eval()
    pipeline = WanImageToVideoPipeline(**components)
    pipeline.set_progress_bar_config(disable=True)
    transformer = pipeline.transformer
    generator = torch.Generator("cpu").manual_seed(0)
    prompt = torch.randn(1, PROMPT_TOKENS, REAL_WIDTH["text_dim"], generator=generator)
    negative = torch.randn(1, PROMPT_TOKENS, REAL_WIDTH["text_dim"], generator=generator)
    image = Image.fromarray((np.random.default_rng(0).random((args.size, args.size, 3)) * 255).astype(np.uint8))
    latent_frames = (args.frames - 1) // 4 + 1
    latent_side = args.size // 16
    tokens = latent_frames * (latent_side // 2) ** 2
    noise = torch.randn(1, 48, latent_frames, latent_side, latent_side, generator=generator)
    parameters = sum(p.numel() for p in transformer.parameters())
    console.print(
        f"transformer: {args.layers} blocks at real width, {parameters / 1e6:.0f} M parameters (fp32, random); "
        f"latent {latent_frames}×{latent_side}×{latent_side} = {tokens} tokens, {PROMPT_TOKENS} prompt tokens; "
        f"{args.steps} steps, guidance {GUIDANCE:g} (2 transformer calls a step); {args.threads} threads; "
        f"built in {time.perf_counter() - started:.0f} s"
    )

    # Which leaf computations run: the blocks' self-attention query projection and feed-forward output.
    counts = {"attn1": 0, "ffn": 0}
    for block in transformer.blocks:
        block.attn1.to_q.register_forward_hook(lambda *_: counts.__setitem__("attn1", counts["attn1"] + 1))
        block.ffn.net[2].register_forward_hook(lambda *_: counts.__setitem__("ffn", counts["ffn"] + 1))
    # CPU time of this process per transformer call: with one thread, other jobs on the machine barely move it
    # (wall time on 2 shared cores swung by 2× between identical runs).
    calls: list[float] = []
    transformer.register_forward_pre_hook(lambda *_: calls.append(-time.process_time()))
    transformer.register_forward_hook(lambda *_: calls.__setitem__(-1, calls[-1] + time.process_time()))
    # What first-block compares: the first block's residual, call by call (cond and uncond alternate).
    residuals: list[torch.Tensor] = []

    def first_block(module, args, kwargs, output):
        hidden = args[0] if args else kwargs["hidden_states"]
        residuals.append((output[0] if isinstance(output, tuple) else output) - hidden)

    watch = transformer.blocks[0].register_forward_hook(first_block, with_kwargs=True)

    with torch.inference_mode():  # one warm-up call, so the first mode does not pay for first-touch allocations
        transformer(noise, timestep=torch.tensor([500]), encoder_hidden_states=prompt, return_dict=False)

    configs = {"off": None, **CACHE_CONFIGS, **NOT_OFFERED}
    results: dict[str, dict[str, Any]] = {}
    for round_number, mode in ((r, m) for r in range(args.rounds) for m in configs):
        make = configs[mode]
        counts.update(attn1=0, ffn=0)
        calls.clear()
        held: list[int] = [0]

        def at_step(pipe, index: int, timestep, kwargs: dict, held: list[int] = held) -> dict:
            # The most at any step: MagCache drops its residual at the last one, the others hold the most there.
            held[0] = max(held[0], state_bytes(transformer))
            return kwargs

        if make is not None:
            transformer.enable_cache(make(pipeline, args.steps))
        try:
            with torch.inference_mode():
                latents = pipeline(
                    image=image, prompt_embeds=prompt, negative_prompt_embeds=negative, height=args.size,
                    width=args.size, num_frames=args.frames, num_inference_steps=args.steps, guidance_scale=GUIDANCE,
                    latents=noise.clone(), output_type="latent", callback_on_step_end=at_step,
                ).frames
        finally:
            if transformer.is_cache_enabled:
                transformer.disable_cache()
        seconds = sum(calls) / args.steps
        console.print(f"round {round_number + 1}, {mode}: {seconds:.2f} CPU s per step", highlight=False)
        if mode in results:
            results[mode]["seconds"] = min(results[mode]["seconds"], seconds)
            continue
        results[mode] = dict(
            seconds=seconds, latents=latents.float().numpy(), attn1=counts["attn1"], ffn=counts["ffn"], state=held[0],
        )
        if mode == "off":
            watch.remove()
            cond = residuals[0::2]
            changes = [float((b - a).abs().mean() / a.abs().mean()) for a, b in itertools.pairwise(cond)]
            residuals.clear()

    off = results["off"]
    table = Table(title=f"Wan step caches vs off: {args.layers} of 30 blocks at real width, {tokens} tokens, {args.steps} steps, CFG")
    columns = ("cache", "transformer CPU s/step", "vs off", "attn1 run", "ffn run", "cache state",
               "state at 720p×121 (bf16)", "PSNR vs off (latents)")
    for column in columns:
        table.add_column(column, justify="left" if column == "cache" else "right")
    for mode, result in results.items():
        score = psnr(result["latents"], off["latents"])
        per_block, model_dtype = STATE_SCALING.get(mode, (False, True))
        real = result["state"] * REAL_TOKENS / tokens * (REAL_BLOCKS / args.layers if per_block else 1) / (2 if model_dtype else 1)
        table.add_row(
            mode, f"{result['seconds']:.2f}", f"{result['seconds'] / off['seconds']:.2f}×",
            f"{result['attn1']}/{off['attn1']}", f"{result['ffn']}/{off['ffn']}",
            f"{result['state'] / 2**20:.1f} MiB", f"{real / 2**30:.2f} GiB",
            "identical" if math.isinf(score) else f"{score:.1f} dB",
        )
    console.print(table)
    console.print(
        "* not offered, for comparison. "
        "First block's residual, relative change from step to step (cond branch, off): "
        + " ".join(f"{change:.2f}" for change in changes)
        + "; first-block skips the other blocks while the change since the last full step is under its threshold "
        "(0.1 as offered). magcache skips by its authors' curve for the trained model, the same calls as on it. "
        "State at 720p × 121 frames: the most state measured here at any step, scaled to 27280 tokens, to 30 blocks "
        "where it is kept per block, and to bf16 where it is kept in the model's dtype (the Taylor factors stay fp32). "
        "PSNR on random weights measures how far a setting moves the output (how aggressive it is), not visual "
        "quality. Times are CPU seconds at this small shape; the ratios, not the seconds, are the result.",
        highlight=False,
    )


if __name__ == "__main__":
    main()
