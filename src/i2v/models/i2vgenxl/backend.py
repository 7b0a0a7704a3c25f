"""The `Backend` for I2VGen-XL: loads our sampler once, places the weights as the plan says, runs plans."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from diffusers.utils import logging as diffusers_logging
from PIL import Image
from transformers.utils import logging as transformers_logging

from i2v.errors import NonFiniteOutputError
from i2v.models.base import BackendOutput, Hooks, Offload
from i2v.models.i2vgenxl.sampler import I2VGenXLSampler, SamplerOutput, set_ff_chunking
from i2v.models.loading import (
    ModelSource,
    dtype_name,
    free_memory,
    pick_device,
    pick_dtype,
)
from i2v.models.plan import RunPlan


class I2VGenXLBackend:
    """The `Backend` for I2VGen-XL: loads the sampler once and turns run plans into frames."""

    name = "i2vgenxl"

    def __init__(self, pipeline: I2VGenXLSampler, source: ModelSource, device: torch.device, dtype: torch.dtype):
        self.pipeline = pipeline
        self.model_id = source.model_id
        self.revision = source.revision
        self._device = device
        self._dtype = dtype
        self._offload: Offload = "none"

    @property
    def device(self) -> str:
        return str(self._device)

    @property
    def dtype(self) -> str:
        return dtype_name(self._dtype)

    @classmethod
    def load(cls, source: ModelSource, *, device: str | None = None, dtype: str | None = None) -> I2VGenXLBackend:
        torch_device = pick_device(device)
        torch_dtype = pick_dtype(torch_device, dtype)
        diffusers_logging.disable_progress_bar()
        transformers_logging.disable_progress_bar()
        verbosity = transformers_logging.get_verbosity()
        transformers_logging.set_verbosity_error()  # e.g. "CLIPImageProcessor requires torchvision": harmless here
        try:
            pipeline = I2VGenXLSampler.from_pretrained(source.folder, dtype=torch_dtype, variant=source.variant)
        finally:
            transformers_logging.set_verbosity(verbosity)
        pipeline.set_progress_bar_config(disable=True)
        pipeline.to(torch_device)
        return cls(pipeline, source, torch_device, torch_dtype)

    def generate(
        self,
        plan: RunPlan,
        image: Image.Image,
        hooks: Hooks,
        *,
        tags: Sequence[str] = (),
    ) -> BackendOutput:
        notes = []
        tokens = self.pipeline.count_prompt_tokens(plan.prompt)
        limit = self.pipeline.tokenizer.model_max_length
        if tokens > limit:
            notes.append(f"prompt is {tokens} tokens; CLIP reads the first {limit}, the rest was ignored")
        self._place_weights(plan.offload, notes)
        set_ff_chunking(self.pipeline.unet, plan.ff_chunking)
        arguments = dict(
            width=plan.width,
            height=plan.height,
            num_frames=plan.num_frames,
            target_fps=plan.motion_fps,
            num_inference_steps=plan.steps,
            guidance_scale=plan.guidance_scale,
            seed=plan.seed,
            scheduler=plan.scheduler,
            decode_chunk_size=plan.decode_chunk_size,
            vae_tiling=plan.vae_tiling,
            cfg_mode=plan.cfg_mode,
            offload_encoders=self._offload == "encoders",
            hooks=hooks,
        )
        try:
            output = self._sample(image, plan, arguments, notes)
        finally:
            # After a cancel or an error too: with model offload, nothing may stay on the device between jobs.
            self.pipeline.maybe_free_model_hooks()
        frames = (output.frames.numpy() * 255).round().astype(np.uint8)
        return BackendOutput(frames=frames, timings=output.timings, notes=notes)

    def _sample(self, image: Image.Image, plan: RunPlan, arguments: dict, notes: list[str]) -> SamplerOutput:
        try:
            return self.pipeline(image, plan.prompt, plan.negative_prompt, **arguments)
        except NonFiniteOutputError:
            if self._dtype != torch.float16:
                raise
            # A known fp16 failure of this model: retry once at a wider dtype rather than return black frames.
            wider = torch.bfloat16 if self._device.type != "cuda" or torch.cuda.is_bf16_supported() else torch.float32
            notes.append(f"fp16 produced NaN/inf; switched the model to {dtype_name(wider)} and ran again")
            self.pipeline.to(dtype=wider)
            self._dtype = wider
            free_memory(self._device)
            return self.pipeline(image, plan.prompt, plan.negative_prompt, **arguments)

    def _place_weights(self, offload: Offload, notes: list[str]) -> None:
        """Put the weights where `offload` wants them; any mode may follow any other between jobs."""
        if offload in ("model", "sequential") and self._device.type != "cuda":
            notes.append(f"offload={offload} needs a CUDA device; the weights stay on {self._device.type}")
            offload = "none"
        if offload == self._offload and offload in ("model", "sequential"):
            return
        hooked = self._offload in ("model", "sequential")
        if hooked:
            self.pipeline.remove_all_hooks()  # sequential offload puts the weights back on the CPU here
        if offload == "model":
            self.pipeline.enable_model_cpu_offload(device=self._device)
        elif offload == "sequential":
            self.pipeline.enable_sequential_cpu_offload(device=self._device)
        else:
            self.pipeline.to(self._device)  # also brings back encoders an "encoders" run left on the CPU
        self._offload = offload
        if hooked:
            free_memory(self._device)
