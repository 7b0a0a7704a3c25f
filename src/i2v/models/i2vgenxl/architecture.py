"""The real-size I2VGen-XL architecture with random weights: for benchmarks and for tracing cost on the meta device.

No weights are needed to know what a step costs: the released configs are the classes' defaults (UNet, SD VAE)
plus OpenCLIP ViT-H/14 encoders, so FLOPs and activation sizes can be traced on the meta device in about a
second, and per-step time measured on random weights.

`trace_*` run one real forward on the meta device and report the peak bytes of the tensors it creates (what
the advisor's memory model is built from) and its FLOPs, with the tracer every model shares
(`i2v.models.tracing`). Attention is counted as the kernel that would run on a GPU: "efficient" (flash /
memory-efficient SDPA: only the output is stored) or "math" (the full score matrix).
"""

from __future__ import annotations

import functools

import torch
from diffusers import AutoencoderKL, DDIMScheduler, I2VGenXLUNet
from torch.utils.flop_counter import FlopCounterMode
from transformers import (
    CLIPImageProcessorPil,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

from i2v.models.base import Attention
from i2v.models.i2vgenxl.sampler import set_ff_chunking
from i2v.models.i2vgenxl.tiny import SCHEDULER_CONFIG, tiny_vocab
from i2v.models.tracing import TRACE_LOCK as _TRACE_LOCK
from i2v.models.tracing import (
    Trace,
    _efficient_attention,  # noqa: F401  (the tracer's tests look for it here)
    quiet_diffusers,
    trace_call,
    weight_sizes,
)

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
        feature_extractor=CLIPImageProcessorPil(crop_size={"height": 224, "width": 224}, size={"shortest_edge": 224}),
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


# -- tracing cost on the meta device (the tracer itself is shared: i2v.models.tracing) ----------------------


@functools.lru_cache(maxsize=4)
def meta_components(dtype: torch.dtype = torch.float16) -> dict[str, torch.nn.Module]:
    """The four real-size models on the meta device (no memory): for weight counts and traces."""
    with quiet_diffusers(), torch.device("meta"):  # "modules that should be kept in float32: []" on every cast
        return dict(
            text_encoder=CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG)).to(dtype).eval(),
            image_encoder=CLIPVisionModelWithProjection(CLIPVisionConfig(**VISION_CONFIG)).to(dtype).eval(),
            unet=I2VGenXLUNet().to(dtype).eval(),
            vae=AutoencoderKL(**VAE_CONFIG).to(dtype).eval(),
        )


def weight_bytes(dtype: torch.dtype = torch.float16) -> dict[str, dict[str, int]]:
    """Per component: bytes of all parameters and buffers, and of the largest single layer's own parameters
    (what sequential offload holds on the device at once)."""
    return {name: weight_sizes(model) for name, model in meta_components(dtype).items()}


def trace_unet_step(
    width: int,
    height: int,
    frames: int,
    batch: int = 2,
    dtype: torch.dtype = torch.float16,
    attention: Attention = "efficient",
    ff_chunking: bool = False,
) -> Trace:
    """One UNet call: batch 2 is guidance in one pass, batch 1 one of two split passes."""
    unet = meta_components(dtype)["unet"]
    with _TRACE_LOCK:
        set_ff_chunking(unet, ff_chunking)
        try:
            return trace_call(lambda: unet(**unet_step_inputs(unet, width, height, frames, batch)), attention)
        finally:
            set_ff_chunking(unet, False)


def trace_vae_decode(
    width: int, height: int, chunk: int = 1, tiling: bool = False, dtype: torch.dtype = torch.float16,
    attention: Attention = "efficient",
) -> Trace:
    """Decoding `chunk` frames at once, as the sampler does (output converted to float32 before leaving the device)."""
    vae = meta_components(dtype)["vae"]
    latent = (chunk, vae.config.latent_channels, height // 8, width // 8)
    with _TRACE_LOCK:
        vae.enable_tiling() if tiling else vae.disable_tiling()
        # Tile blending is in place, one row at a time: no memory to speak of, but thousands of ops to trace.
        vae.blend_v = vae.blend_h = lambda a, b, extent: b
        try:
            return trace_call(
                lambda: vae.decode(torch.empty(latent, device="meta", dtype=dtype)).sample.float(), attention
            )
        finally:
            vae.disable_tiling()
            del vae.blend_v, vae.blend_h


def trace_vae_encode(
    width: int, height: int, dtype: torch.dtype = torch.float16, attention: Attention = "efficient"
) -> Trace:
    """Encoding the first frame (the UNet's image conditioning)."""
    vae = meta_components(dtype)["vae"]
    return trace_call(lambda: vae.encode(torch.empty((1, 3, height, width), device="meta", dtype=dtype)), attention)


def trace_encoders(dtype: torch.dtype = torch.float16, attention: Attention = "efficient") -> dict[str, Trace]:
    """The CLIP text (77 tokens, all hidden states kept, as our clip_skip does) and image (224²) encoders."""
    models = meta_components(dtype)
    ids = (1, models["text_encoder"].config.max_position_embeddings)
    pixels = (1, 3, VISION_CONFIG["image_size"], VISION_CONFIG["image_size"])
    return dict(
        text_encoder=trace_call(
            lambda: models["text_encoder"](torch.zeros(ids, dtype=torch.long, device="meta"), output_hidden_states=True),
            attention,
        ),
        image_encoder=trace_call(
            lambda: models["image_encoder"](torch.empty(pixels, dtype=dtype, device="meta")), attention
        ),
    )
