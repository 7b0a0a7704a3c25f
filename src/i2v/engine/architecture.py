"""The real-size I2VGen-XL architecture with random weights: for benchmarks and for tracing cost on the meta device.

No weights are needed to know what a step costs: the released configs are the classes' defaults (UNet, SD VAE)
plus OpenCLIP ViT-H/14 encoders, so FLOPs and activation sizes can be traced on the meta device in about a
second, and per-step time measured on random weights.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, DDIMScheduler, I2VGenXLUNet
from torch.utils.flop_counter import FlopCounterMode
from transformers import (
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

from i2v.engine.tiny import SCHEDULER_CONFIG, tiny_vocab

TEXT_CONFIG = dict(
    hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=23, projection_dim=1024,
    hidden_act="gelu", vocab_size=49408, max_position_embeddings=77,
)
VISION_CONFIG = dict(
    hidden_size=1280, intermediate_size=5120, num_attention_heads=16, num_hidden_layers=32, patch_size=14,
    image_size=224, projection_dim=1024, hidden_act="gelu",
)
VAE_CONFIG = dict(
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    latent_channels=4,
    layers_per_block=2,
    sample_size=512,
)


def real_size_unet(device: str | torch.device = "meta", dtype: torch.dtype = torch.float32) -> I2VGenXLUNet:
    with torch.device(device):
        return I2VGenXLUNet().to(dtype).eval()


def real_size_components(dtype: torch.dtype = torch.float32) -> dict:
    """Random-weight components of the released shapes, ready for `I2VGenXLSampler(**components)` on the CPU."""
    torch.manual_seed(0)
    return dict(
        vae=AutoencoderKL(**VAE_CONFIG).to(dtype).eval(),
        text_encoder=CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG)).to(dtype).eval(),
        tokenizer=CLIPTokenizer(vocab=tiny_vocab(), merges=[], model_max_length=77),
        image_encoder=CLIPVisionModelWithProjection(CLIPVisionConfig(**VISION_CONFIG)).to(dtype).eval(),
        feature_extractor=CLIPImageProcessor(crop_size={"height": 224, "width": 224}, size={"shortest_edge": 224}),
        unet=real_size_unet("cpu", dtype),
        scheduler=DDIMScheduler(**SCHEDULER_CONFIG),
    )


def unet_step_inputs(
    unet: I2VGenXLUNet, width: int, height: int, frames: int, batch: int = 2, device: str | torch.device = "meta"
) -> dict:
    """The arguments of one UNet call: batch 2 is classifier-free guidance in one pass."""
    dtype = unet.dtype
    latent_shape = (batch, unet.config.in_channels, frames, height // 8, width // 8)
    context = unet.config.cross_attention_dim
    return dict(
        sample=torch.empty(latent_shape, device=device, dtype=dtype),
        timestep=torch.tensor(999, device=device),
        encoder_hidden_states=torch.empty((batch, 77, context), device=device, dtype=dtype),
        fps=torch.full((batch,), 16, device=device),
        image_latents=torch.empty(latent_shape, device=device, dtype=dtype),
        image_embeddings=torch.empty((batch, 1, context), device=device, dtype=dtype),
        return_dict=False,
    )


def unet_step_flops(width: int, height: int, frames: int, batch: int = 2, unet: I2VGenXLUNet | None = None) -> int:
    """FLOPs of one denoising step (one UNet call at `batch`), counted on the meta device: no memory, no weights."""
    unet = unet or real_size_unet("meta", torch.float16)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        unet(**unet_step_inputs(unet, width, height, frames, batch))
    return counter.get_total_flops()
