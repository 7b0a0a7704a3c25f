"""The `Backend` for Wan 2.2 TI2V-5B, on diffusers' maintained `WanImageToVideoPipeline`.

Unlike the default model, whose diffusers pipeline is deprecated, this runs the maintained pipeline and only
takes over the parts our promises need:

1. encode: the prompt and negative prompt through the pipeline's own `encode_prompt`, as a stage of its own (so
   the UMT5 encoder, 11 GB at real size, can leave the GPU before denoising);
2. noise: the initial latents drawn from a CPU generator seeded by the plan, the same on every device (the
   pipeline draws nothing else: the image is encoded with the VAE's mode, and UniPC adds no noise);
3. denoise: the pipeline's loop with `output_type="latent"`; its step callback reports each step and, when a
   cancel is asked for, stops before the next step by raising, so a cancelled run skips the VAE decode. The step
   cache the plan names (the advisor may have turned the request's off to fit; `CACHE_CONFIGS`) is put on the
   transformer for this stage only and taken off
   after it, cancelled or not: "off" never touches the transformer, so it is the uncached pipeline exactly;
4. decode: the latents through the VAE exactly as the pipeline does, as a stage of its own.

The image is cover-cropped to the target size first (the pipeline would stretch it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from diffusers import (
    AutoencoderKLWan,
    FirstBlockCacheConfig,
    MagCacheConfig,
    PyramidAttentionBroadcastConfig,
    TaylorSeerCacheConfig,
    WanImageToVideoPipeline,
)
from diffusers.utils import logging as diffusers_logging
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image
from transformers.utils import logging as transformers_logging

from i2v.errors import GenerationCancelled, ModelNotFoundError, NonFiniteOutputError
from i2v.media.images import cover_crop
from i2v.models.base import BackendOutput, Hooks
from i2v.models.plan import RunPlan
from i2v.models.loading import (
    ModelSource,
    dtype_name,
    free_memory,
    pick_device,
    pick_dtype,
)
from i2v.models.preview import LatentSpace, live_preview
from i2v.models.spec import CACHE_OFF
from i2v.models.wan22 import cost, magcache
from i2v.models.wan22.spec import SPEC

#: The spec's step caches (all but "off") -> their diffusers config for a pipeline and the run's step count, built
#: per run. Measured side by side on this CPU in bench/wan_cache.py. Each has been checked to change what Wan
#: computes: diffusers' own defaults do not always reach Wan's module names.
CACHE_CONFIGS: dict[str, Callable[[WanImageToVideoPipeline, int], Any]] = {
    # While the first block's residual changes by under 10% (relative mean) from the last step that ran every
    # block, the other blocks are skipped and their last residual reused. Separate state per guidance branch.
    "first-block": lambda pipeline, steps: FirstBlockCacheConfig(threshold=0.1),
    # TaylorSeer, with Wan's own module names: diffusers' default patterns ("^blocks.*attn", full match) match
    # none of Wan's `blocks.N.attn1`/`attn2`, so the default config silently caches nothing. After 3 full steps,
    # 2 of every 3 steps skip all blocks (`blocks.N`, returning placeholders) and extrapolate the output
    # projection (`proj_out`) to first order. Not the per-module form (`blocks.N.attn1|attn2|ffn`): its Taylor
    # factors are two full-width tensors per module per branch, about 60 GB in bf16 at 720p × 121 frames.
    "taylorseer": lambda pipeline, steps: TaylorSeerCacheConfig(
        cache_interval=cost.TAYLOR_INTERVAL, disable_cache_before_step=cost.TAYLOR_WARMUP, max_order=cost.TAYLOR_ORDER,
        taylor_factors_dtype=torch.float32,
        skip_predict_identifiers=[r"blocks\.\d+"], cache_identifiers=[r"proj_out"],
    ),
    # Pyramid attention broadcast: self-attention (`attn1`) computed every other call while the timestep is in
    # 100-800 (the middle of the schedule), reused otherwise. Its state is not kept per guidance branch, and Wan
    # runs the two branches as separate calls, so with guidance the unconditional pass reuses the conditional
    # pass's self-attention of the same step; without guidance, every other step reuses the last one's.
    "pab": lambda pipeline, steps: PyramidAttentionBroadcastConfig(
        spatial_attention_block_skip_range=cost.PAB_SKIP_RANGE, spatial_attention_timestep_skip_range=cost.PAB_TIMESTEPS,
        current_timestep_callback=lambda: pipeline.current_timestep,
    ),
    # MagCache with its authors' curve and setting for this checkpoint (magcache.py: where from, and how a branch
    # and another step count read it): after the first 20% of the steps, a call adds its last residual to the
    # first block's input instead of running the blocks while the accumulated magnitude-ratio error stays at most
    # 0.06, for at most 2 calls in a row. Separate state per guidance branch. The curve is resampled to `steps`.
    "magcache": lambda pipeline, steps: MagCacheConfig(
        mag_ratios=list(magcache.CONDITIONAL), num_inference_steps=steps, threshold=magcache.THRESHOLD,
        max_skip_steps=magcache.MAX_SKIP_STEPS, retention_ratio=magcache.RETENTION_RATIO,
    ),
}


class _Stop(Exception):
    """Raised from the step callback to leave the pipeline's loop at once (its own interrupt still decodes)."""

    def __init__(self, step: int, total: int):
        super().__init__(step, total)
        self.step, self.total = step, total


class WanBackend:
    """Loads the pipeline once; places weights as each plan says; turns run plans into frames."""

    name = SPEC.backend

    def __init__(self, pipeline: WanImageToVideoPipeline, source: ModelSource, device: torch.device, dtype: torch.dtype):
        self.pipeline = pipeline
        self.source = source
        self.model_id = source.model_id
        self.revision = source.revision
        self._device = device
        self._dtype = dtype
        #: What the weights' placement is now: offload mode, group offload, FP8 storage.
        self._placement: tuple[str, bool, bool] = ("none", False, False)

    @property
    def device(self) -> str:
        return str(self._device)

    @property
    def dtype(self) -> str:
        return dtype_name(self._dtype)

    @classmethod
    def load(cls, source: ModelSource, *, device: str | None = None, dtype: str | None = None) -> WanBackend:
        torch_device = pick_device(device)
        torch_dtype = pick_dtype(torch_device, dtype)
        return cls(_load_pipeline(source, torch_device, torch_dtype), source, torch_device, torch_dtype)

    def generate(
        self,
        plan: RunPlan,
        image: Image.Image,
        hooks: Hooks,
        *,
        tags: Sequence[str] = (),
    ) -> BackendOutput:
        notes: list[str] = []
        self._place_weights(plan, notes)
        pipeline, device = self.pipeline, self._device
        width, height, frames, guided = plan.width, plan.height, plan.num_frames, plan.guided
        timings: dict[str, float] = {}
        pipeline.vae.enable_tiling() if plan.vae_tiling else pipeline.vae.disable_tiling()
        try:
            # 1. Encode the prompt (and the negative prompt, for guidance).
            hooks.stage("encode")
            started = time.perf_counter()
            tokens = len(pipeline.tokenizer(plan.prompt).input_ids)
            if tokens > SPEC.prompt.tokens:
                notes.append(f"prompt is {tokens} tokens; the text encoder reads the first {SPEC.prompt.tokens}")
            with torch.inference_mode():
                prompt_embeds, negative_embeds = pipeline.encode_prompt(
                    plan.prompt, plan.negative_prompt or "", do_classifier_free_guidance=guided,
                    max_sequence_length=SPEC.prompt.tokens, device=self._execution_device(),
                )
            if plan.offload == "encoders":
                pipeline.text_encoder.to("cpu")
                free_memory(device)
            # The preview's projection is fitted here on the first run that wants one (then cached), with the VAE.
            preview = live_preview(hooks, plan.steps, lambda: latent_space(pipeline))
            crop = cover_crop(image, (width, height))
            timings["encode"] = time.perf_counter() - started

            # 2. The initial noise, from a CPU generator: the same clip for a seed on any device.
            latent_frames = (frames - 1) // pipeline.vae_scale_factor_temporal + 1
            shape = (1, pipeline.vae.config.z_dim, latent_frames, height // pipeline.vae_scale_factor_spatial,
                     width // pipeline.vae_scale_factor_spatial)
            noise = randn_tensor(shape, generator=torch.Generator("cpu").manual_seed(plan.seed),
                                 device=self._execution_device(), dtype=torch.float32)

            # 3. Denoise with the pipeline's loop; its callback reports steps and stops on cancel.
            hooks.stage("denoise")
            started = time.perf_counter()
            total = plan.steps
            if hooks.stop_requested():
                raise _Stop(0, total)
            cache = plan.cache or CACHE_OFF
            if cache != CACHE_OFF:
                pipeline.transformer.enable_cache(CACHE_CONFIGS[cache](pipeline, total))
                notes.append(f"{cache} cache: faster, slightly different frames from the uncached run")

            def on_step_end(pipe, index: int, timestep, kwargs: dict) -> dict:
                if preview is not None and preview.due(index + 1):
                    # UniPC keeps its x0 estimate as the last converted model output. Latent frame 0 is the image's
                    # own (the pipeline puts the condition back there at the end), so the preview shows the image.
                    preview.show(index + 1, pipe.scheduler.model_outputs[-1], first_frame=crop)
                hooks.step(index + 1, total)
                if index + 1 < total and hooks.stop_requested():
                    raise _Stop(index + 1, total)
                return kwargs

            with torch.inference_mode():
                latents = pipeline(
                    image=crop, prompt_embeds=prompt_embeds,
                    negative_prompt_embeds=negative_embeds if guided else None, height=height, width=width,
                    num_frames=frames, num_inference_steps=total, guidance_scale=plan.guidance_scale,
                    latents=noise, output_type="latent", callback_on_step_end=on_step_end,
                    max_sequence_length=SPEC.prompt.tokens,
                ).frames
            timings["denoise"] = time.perf_counter() - started
            if not torch.isfinite(latents).all():
                raise NonFiniteOutputError(
                    f"the sampler produced NaN/inf latents in {self.dtype}; run again with --dtype bf16 or fp32"
                )

            # 4. Decode the latents to frames, as the pipeline does.
            hooks.stage("decode")
            started = time.perf_counter()
            with torch.inference_mode():
                video = decode(pipeline, latents)
            timings["decode"] = time.perf_counter() - started
        except _Stop as stop:
            raise GenerationCancelled(stop.step, stop.total) from None
        finally:
            # After a cancel or an error too: the step cache comes off (the next job starts uncached, or with
            # fresh cache state), and offload hooks start clean.
            if pipeline.transformer.is_cache_enabled:
                pipeline.transformer.disable_cache()
            pipeline.maybe_free_model_hooks()
            free_memory(device)
        frames_out = (np.clip(video[0], 0.0, 1.0) * 255).round().astype(np.uint8)
        return BackendOutput(frames=frames_out, timings=timings, notes=notes)

    def _execution_device(self) -> torch.device:
        return self.pipeline._execution_device

    def _place_weights(self, plan: RunPlan, notes: list[str]) -> None:
        """Put the weights where the plan wants them. Group offload and FP8 storage hook the transformer
        for good, so leaving either one reloads the pipeline."""
        offload, group, fp8 = plan.offload, plan.group_offload, plan.fp8_weights
        if self._device.type != "cuda" and (offload in ("model", "sequential") or group):
            notes.append(f"offload={offload}{' with group offload' if group else ''} needs a CUDA device; "
                         f"the weights stay on {self._device.type}")
            offload, group = ("none" if offload in ("model", "sequential") else offload), False
        wanted = (offload, group, fp8)
        if wanted == self._placement and offload in ("model", "sequential"):
            return
        current_offload, current_group, current_fp8 = self._placement
        if (current_group and not group) or (current_fp8 and not fp8):
            self.pipeline = _load_pipeline(self.source, self._device, self._dtype)
            current_offload, current_group, current_fp8 = "none", False, False
        if current_offload in ("model", "sequential"):
            self.pipeline.remove_all_hooks()
        if fp8 and not current_fp8:
            self.pipeline.transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=self._dtype)
        if group and not current_group:
            self.pipeline.transformer.enable_group_offload(
                onload_device=self._device, offload_device=torch.device("cpu"), offload_type="block_level",
                num_blocks_per_group=1, use_stream=self._device.type == "cuda",
            )
        if offload == "model":
            self.pipeline.enable_model_cpu_offload(device=self._device)
        elif offload == "sequential":
            self.pipeline.enable_sequential_cpu_offload(device=self._device)
        else:
            for name in ("text_encoder", "vae") + (() if group else ("transformer",)):
                getattr(self.pipeline, name).to(self._device)  # also brings back an encoder an "encoders" run moved off
        self._placement = wanted
        free_memory(self._device)


def latent_space(pipeline: WanImageToVideoPipeline) -> LatentSpace:
    """The latents the pipeline denoises, for the live preview's fit: the VAE's mode, normalised by the VAE's
    latents mean and std as the pipeline normalises its image condition."""
    vae = pipeline.vae

    def encode(pixels: torch.Tensor) -> torch.Tensor:
        shape = (1, vae.config.z_dim, 1, 1, 1)
        mean = torch.tensor(vae.config.latents_mean).view(shape).to(pixels.device)
        std = torch.tensor(vae.config.latents_std).view(shape).to(pixels.device)
        return (vae.encode(pixels.to(vae.dtype)).latent_dist.mode().float() - mean) / std

    def decode(latents: torch.Tensor) -> torch.Tensor:
        shape = (1, vae.config.z_dim, 1, 1, 1)
        mean = torch.tensor(vae.config.latents_mean).view(shape).to(latents.device)
        std = torch.tensor(vae.config.latents_std).view(shape).to(latents.device)
        return vae.decode((latents.float() * std + mean).to(vae.dtype), return_dict=False)[0]

    return LatentSpace("wan22", vae, encode, decode, spatial=pipeline.vae_scale_factor_spatial,
                       temporal=pipeline.vae_scale_factor_temporal)


def decode(pipeline: WanImageToVideoPipeline, latents: torch.Tensor) -> np.ndarray:
    """Latents (normalised, as the pipeline's `output_type="latent"` gives them) to float frames in [0, 1],
    B×F×H×W×3: the pipeline's own un-normalising, VAE decode and post-processing."""
    vae = pipeline.vae
    latents = latents.to(device=pipeline._execution_device, dtype=vae.dtype)
    mean = torch.tensor(vae.config.latents_mean).view(1, vae.config.z_dim, 1, 1, 1).to(latents.device, latents.dtype)
    inverse_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, vae.config.z_dim, 1, 1, 1).to(latents.device, latents.dtype)
    video = vae.decode(latents / inverse_std + mean, return_dict=False)[0]
    return pipeline.video_processor.postprocess_video(video, output_type="np")


def _load_pipeline(source: ModelSource, device: torch.device, dtype: torch.dtype) -> WanImageToVideoPipeline:
    """The pipeline in `dtype`, with the VAE in fp32 as the model's authors run it (its decode loses detail in
    half precision); refuses a Wan folder that is not TI2V-5B."""
    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        vae = AutoencoderKLWan.from_pretrained(source.folder, subfolder="vae", dtype=torch.float32)
        pipeline = WanImageToVideoPipeline.from_pretrained(
            source.folder, vae=vae, dtype=dtype, variant=source.variant, transformer_2=None, image_encoder=None,
            image_processor=None,
        )
    finally:
        transformers_logging.set_verbosity(verbosity)
    transformer = pipeline.transformer
    if transformer is None or not pipeline.config.expand_timesteps or transformer.config.in_channels != vae.config.z_dim:
        raise ModelNotFoundError(
            f"{source.model_id} is a Wan pipeline but not Wan 2.2 TI2V-5B (expand_timesteps with a "
            f"{vae.config.z_dim}-channel VAE); i2v runs only that one of the Wan family"
        )
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(device)
