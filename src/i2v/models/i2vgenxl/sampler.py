"""I2VGen-XL: our own sampler on diffusers' maintained model classes (the backend that serves it: `backend.py`).

diffusers' I2VGenXLPipeline is deprecated (frozen at 0.33.1), breaks on transformers 5 at its default
`clip_skip`, and has no progress callback or cancel. This file re-implements its algorithm as one plain loop:

1. text: CLIP text encoder, penultimate layer + final LayerNorm (`clip_skip=1`), negative prompt for guidance;
2. image: CLIP image embedding of a square wide-crop, and the VAE latent of the first frame followed by a
   per-frame position mask (the UNet concatenates it to the noisy latents);
3. motion: `target_fps` embedded as a micro-condition;
4. denoise with classifier-free guidance (one batch-2 pass, or two batch-1 passes to halve activations);
5. decode the latents frame-chunk by frame-chunk with the VAE.

Every random number comes from generators seeded by the request, so a seed reproduces a clip exactly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DiffusionPipeline,
    DPMSolverMultistepScheduler,
    I2VGenXLUNet,
    Transformer2DModel,
    TransformerTemporalModel,
)
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image
from transformers import (
    CLIPImageProcessorPil,
    CLIPTextModel,
    CLIPTokenizer,
    CLIPVisionModelWithProjection,
)

from i2v.errors import GenerationCancelled, NonFiniteOutputError
from i2v.media.images import cover_crop
from i2v.models.base import CfgMode, Hooks
from i2v.models.i2vgenxl.spec import SPEC
from i2v.models.loading import dtype_name, free_memory
from i2v.models.preview import LatentSpace, live_preview

SCHEDULERS = SPEC.schedulers


@dataclass
class SamplerOutput:
    frames: torch.Tensor  # float32 in [0, 1], F×H×W×3, on the CPU
    timings: dict[str, float] = field(default_factory=dict)


class I2VGenXLSampler(DiffusionPipeline):
    """Image-to-video sampling for I2VGen-XL checkpoints in the hub's layout (`ali-vilab/i2vgen-xl`)."""

    model_cpu_offload_seq = "text_encoder->image_encoder->unet->vae"

    def __init__(
        self,
        vae: AutoencoderKL,
        text_encoder: CLIPTextModel,
        tokenizer: CLIPTokenizer,
        image_encoder: CLIPVisionModelWithProjection,
        feature_extractor: CLIPImageProcessorPil,
        unet: I2VGenXLUNet,
        scheduler: DDIMScheduler,
    ):
        super().__init__()
        self.register_modules(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            image_encoder=image_encoder,
            feature_extractor=feature_extractor,
            unet=unet,
            scheduler=scheduler,
        )
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1)

    # -- conditioning ---------------------------------------------------------------------------------------

    def count_prompt_tokens(self, prompt: str) -> int:
        """Tokens including start/end markers; CLIP reads `tokenizer.model_max_length` (77) of them."""
        return len(self.tokenizer(prompt, truncation=False).input_ids)

    def encode_text(self, prompt: str, clip_skip: int | None = 1) -> torch.Tensor:
        """CLIP text embedding, 1×77×D. `clip_skip=k` takes the hidden state k layers before the last, then the
        final LayerNorm (as the released model was run); works with transformers 4's nested `text_model` and 5's
        flat `CLIPTextModel` alike."""
        ids = self.tokenizer(
            prompt, padding="max_length", max_length=self.tokenizer.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids.to(self._execution_device)
        if clip_skip is None:
            return self.text_encoder(ids)[0]
        hidden = self.text_encoder(ids, output_hidden_states=True).hidden_states[-(clip_skip + 1)]
        inner = getattr(self.text_encoder, "text_model", self.text_encoder)
        return inner.final_layer_norm(hidden)

    def encode_image(self, image: Image.Image, width: int) -> torch.Tensor:
        """CLIP image embedding (1×1×D) of a width×width wide-crop resized to the image encoder's input size."""
        crop = self.feature_extractor.crop_size
        square = cover_crop(image, (width, width)).resize((crop["width"], crop["height"]), Image.BILINEAR)
        pixels = _to_tensor(square)
        mean = torch.tensor(self.feature_extractor.image_mean).view(1, 3, 1, 1)
        std = torch.tensor(self.feature_extractor.image_std).view(1, 3, 1, 1)
        pixels = ((pixels - mean) / std).to(self._execution_device, self.image_encoder.dtype)
        return self.image_encoder(pixels).image_embeds.unsqueeze(1)

    def encode_first_frame(
        self, image: Image.Image, width: int, height: int, num_frames: int, generator: torch.Generator
    ) -> torch.Tensor:
        """VAE latent of the first frame (1×C×1×h×w) followed by num_frames-1 constant frames holding each frame's
        position in (0, 1]: the UNet's image conditioning."""
        pixels = _to_tensor(cover_crop(image, (width, height))) * 2 - 1
        pixels = pixels.to(self._execution_device, self.image_encoder.dtype)
        latent = self.vae.encode(pixels).latent_dist.sample(generator) * self.vae.config.scaling_factor
        latent = latent.unsqueeze(2)
        positions = [torch.full_like(latent, (index + 1) / (num_frames - 1)) for index in range(num_frames - 1)]
        return torch.cat([latent, *positions], dim=2)

    def decode(self, latents: torch.Tensor, chunk_size: int = 1) -> torch.Tensor:
        """Latents (1×C×F×h×w) to float32 frames in [0, 1], F×H×W×3 on the CPU, `chunk_size` frames at a time
        (tiled when the run enabled VAE tiling)."""
        latents = latents / self.vae.config.scaling_factor
        per_frame = latents[0].permute(1, 0, 2, 3)
        frames = []
        for start in range(0, per_frame.shape[0], chunk_size):
            decoded = self.vae.decode(per_frame[start : start + chunk_size]).sample
            frames.append((decoded.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu())
        return torch.cat(frames)

    def latent_space(self) -> LatentSpace:
        """The latents this sampler denoises, for the live preview's fit: the SD VAE's mean, scaled, frame by frame."""

        def encode(pixels: torch.Tensor) -> torch.Tensor:
            frames = [self.vae.encode(pixels[:, :, index]).latent_dist.mode() for index in range(pixels.shape[2])]
            return torch.stack(frames, dim=2) * self.vae.config.scaling_factor

        def decode(latents: torch.Tensor) -> torch.Tensor:
            return self.decode(latents, chunk_size=latents.shape[2]).permute(3, 0, 1, 2)[None] * 2 - 1

        return LatentSpace("i2vgenxl", self.vae, encode, decode, spatial=self.vae_scale_factor)

    def make_scheduler(self, name: str):
        """A fresh scheduler per run (they are stateful), configured like the checkpoint's own."""
        if name == "ddim":
            return DDIMScheduler.from_config(self.scheduler.config)
        if name == "dpmpp":
            return DPMSolverMultistepScheduler.from_config(
                self.scheduler.config, algorithm_type="dpmsolver++", solver_order=2, final_sigmas_type="zero"
            )
        raise ValueError(f"scheduler must be one of {SCHEDULERS}, got {name!r}")

    # -- sampling -------------------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        image: Image.Image,
        prompt: str,
        negative_prompt: str = "",
        *,
        width: int = 1280,
        height: int = 704,
        num_frames: int = 16,
        target_fps: int = 16,
        num_inference_steps: int = 50,
        guidance_scale: float = 9.0,
        seed: int = 0,
        scheduler: str = "ddim",
        clip_skip: int | None = 1,
        decode_chunk_size: int = 1,
        vae_tiling: bool = False,
        cfg_mode: CfgMode = "batch",
        offload_encoders: bool = False,
        hooks: Hooks | None = None,
    ) -> SamplerOutput:
        """Sample one clip. Noise comes from a CPU generator seeded with `seed` (same noise on every device, and
        the same as diffusers' pipeline given that generator); the first-frame VAE sample from `seed + 1`.
        `offload_encoders` moves the text and image encoders to the CPU once encoding is done."""
        if width % 8 or height % 8:
            raise ValueError(f"width and height must be multiples of 8, got {width}x{height}")
        device = self._execution_device
        guided = guidance_scale > 1
        timings: dict[str, float] = {}
        hooks = hooks or Hooks()

        # 1. Encode the prompt, the negative prompt and the image.
        hooks.stage("encode")
        started = time.perf_counter()
        # Tiling is VAE state: set it for this run, so the first-frame encode never inherits the last job's.
        self.vae.enable_tiling() if vae_tiling else self.vae.disable_tiling()
        text = self.encode_text(prompt, clip_skip)
        negative_text = self.encode_text(negative_prompt, clip_skip) if guided else None
        image_embeds = self.encode_image(image, width)
        first_frame = self.encode_first_frame(
            image, width, height, num_frames, torch.Generator("cpu").manual_seed(seed + 1)
        )
        fps = torch.tensor([target_fps], device=device)
        # The preview's projection is fitted here on the first run that wants one (then cached), with the VAE.
        preview = live_preview(hooks, num_inference_steps, self.latent_space)
        timings["encode"] = time.perf_counter() - started
        if offload_encoders:
            self.text_encoder.to("cpu")
            self.image_encoder.to("cpu")
            free_memory(device)

        # 2. Prepare the timesteps and the initial noise.
        sampler = self.make_scheduler(scheduler)
        sampler.set_timesteps(num_inference_steps, device=device)
        shape = (1, self.unet.config.in_channels, num_frames, height // self.vae_scale_factor, width // self.vae_scale_factor)
        latents = randn_tensor(shape, generator=torch.Generator("cpu").manual_seed(seed), device=device, dtype=text.dtype)
        latents = latents * sampler.init_noise_sigma

        # 3. Prepare the conditioning for guidance: one batch-2 pass, or two batch-1 passes.
        if guided and cfg_mode == "batch":
            # Unconditional first, conditional second; the unconditional image embedding is all zeros.
            conditions = [
                dict(
                    encoder_hidden_states=torch.cat([negative_text, text]),
                    fps=fps.repeat(2),
                    image_latents=torch.cat([first_frame] * 2),
                    image_embeddings=torch.cat([torch.zeros_like(image_embeds), image_embeds]),
                )
            ]
        else:
            conditions = [dict(encoder_hidden_states=text, fps=fps, image_latents=first_frame, image_embeddings=image_embeds)]
            if guided:
                conditions.insert(
                    0,
                    dict(
                        encoder_hidden_states=negative_text,
                        fps=fps,
                        image_latents=first_frame,
                        image_embeddings=torch.zeros_like(image_embeds),
                    ),
                )

        # 4. Denoise.
        hooks.stage("denoise")
        started = time.perf_counter()
        total = len(sampler.timesteps)
        stopped_at = None
        for index, timestep in enumerate(sampler.timesteps):
            if hooks.stop_requested():
                stopped_at = index
                break
            model_input = sampler.scale_model_input(latents, timestep)
            if len(conditions) == 1 and guided:
                prediction = self.unet(torch.cat([model_input] * 2), timestep, **conditions[0], return_dict=False)[0]
                uncond, cond = prediction.chunk(2)
            else:
                predictions = [self.unet(model_input, timestep, **c, return_dict=False)[0] for c in conditions]
                uncond, cond = predictions if guided else (None, predictions[0])
            noise_pred = uncond + guidance_scale * (cond - uncond) if guided else cond
            stepped = sampler.step(noise_pred, timestep, latents)
            latents = stepped.prev_sample
            if preview is not None and preview.due(index + 1):
                # DDIM returns its x0 estimate; DPM-Solver++ keeps it as its last converted model output.
                x0 = getattr(stepped, "pred_original_sample", None)
                preview.show(index + 1, x0 if x0 is not None else sampler.model_outputs[-1])
            hooks.step(index + 1, total)
        timings["denoise"] = time.perf_counter() - started

        if stopped_at is not None:
            # Drop every activation before raising, so the traceback does not pin them in device memory.
            del latents, conditions, text, negative_text, image_embeds, first_frame
            free_memory(device)
            raise GenerationCancelled(stopped_at, total)
        if not torch.isfinite(latents).all():
            raise NonFiniteOutputError(
                f"the sampler produced NaN/inf latents in {dtype_name(latents.dtype)}; run again with --dtype bf16 or fp32"
            )

        # 5. Decode the latents to frames.
        hooks.stage("decode")
        started = time.perf_counter()
        frames = self.decode(latents, decode_chunk_size)
        timings["decode"] = time.perf_counter() - started
        return SamplerOutput(frames=frames, timings=timings)


def set_ff_chunking(unet: I2VGenXLUNet, enabled: bool) -> None:
    """Feed-forward chunking, one slice of the longest cheap axis at a time: spatial blocks (B·F, h·w, C) per
    frame (dim 0), temporal blocks (B·h·w, F, C) per frame (dim 1). diffusers' `enable_forward_chunking(1, dim=1)`
    would give the spatial blocks h·w (up to 16k) one-token slices: the same memory, far more kernel launches."""
    for module in unet.modules():
        if isinstance(module, (Transformer2DModel, TransformerTemporalModel)):
            dim = 0 if isinstance(module, Transformer2DModel) else 1
            for block in module.transformer_blocks:
                block.set_chunk_feed_forward(1 if enabled else None, dim if enabled else 0)


def _to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> float32 1×3×H×W in [0, 1]."""
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)
