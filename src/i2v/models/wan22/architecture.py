"""The real-size Wan 2.2 TI2V-5B on the meta device: weight bytes per component and traced cost of each call.

No weights are needed to know what a run costs. The three models are built at the released configs on the meta
device (no memory, about a second) and each call the backend makes is run once there with the shared tracer
(`i2v.models.tracing`): the peak bytes of the tensors it creates and its FLOPs.

The configs: the transformer's and the VAE's are those diffusers' conversion script writes for
"Wan2.2-TI2V-5B" (`scripts/convert_wan_to_diffusers.py`, the same numbers as Wan's own `wan_ti2v_5B.py`: dim
3072, ffn 14336, 24 heads, 30 layers); the text encoder is google/umt5-xxl's encoder as the Wan 2.x Diffusers
repositories ship it (`text_encoder/config.json` of Wan2.1-T2V-14B-Diffusers and its mirrors: d_model 4096,
d_ff 10240, 24 layers, 64 heads, d_kv 64, vocabulary 256,384, gated GELU, 32 relative-position buckets; 11.4 GB
in bf16, which is the size of the TI2V-5B repository's text_encoder folder). Parameters: transformer 5.000 B,
VAE 704.7 M (encoder 149.6 M, decoder 555.0 M), text encoder 5.68 B.

Each model is cast as `from_pretrained` would load it: diffusers keeps the transformer's `_keep_in_fp32_modules`
(rope, time embedder, scale-shift tables, block norms) in float32 in either half precision; transformers keeps
the text encoder's `wo` projections in float32 only under fp16. The backend loads the VAE in float32 whatever
the run's dtype (as Wan's authors run it), so the VAE is traced in float32.

What is traced, each as the backend calls it:
- `trace_text_encoder`: the text encoder on one prompt of 512 tokens (the pipeline pads to max_sequence_length;
  a guided run calls it twice, for the prompt and the negative prompt, one after the other);
- `trace_vae_encode`: the VAE encoding the image as one frame (the first-frame condition);
- `trace_transformer`: one transformer call at batch 1, with the per-token timesteps of TI2V (the pipeline runs
  the conditional and unconditional passes as two such calls);
- `trace_vae_decode`: the VAE decoding every latent frame of the clip, tiled or not, then the pipeline's
  post-processing on the device (un-normalise, decode, scale to [0, 1]).
"""

from __future__ import annotations

import functools

import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from transformers import UMT5Config, UMT5EncoderModel

from i2v.models.base import Attention
from i2v.models.tracing import (
    TRACE_LOCK,
    Trace,
    model_bytes,
    quiet_diffusers,
    trace_call,
    weight_sizes,
)

#: diffusers' conversion script, "Wan2.2-TI2V-5B" (transformer/config.json of the Diffusers repository).
TRANSFORMER_CONFIG = dict(
    patch_size=(1, 2, 2), num_attention_heads=24, attention_head_dim=128, in_channels=48, out_channels=48,
    text_dim=4096, freq_dim=256, ffn_dim=14336, num_layers=30, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
    eps=1e-6, image_dim=None, added_kv_proj_dim=None, rope_max_seq_len=1024,
)
#: The Wan 2.2 VAE: 16× space (8× in the network, 2× patchify), 4× time, 48 channels. Its mean and std (48
#: values each) change no shape or cost: zeros and ones here.
VAE_CONFIG = dict(
    base_dim=160, decoder_base_dim=256, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
    temperal_downsample=[False, True, True], is_residual=True, in_channels=12, out_channels=12, patch_size=2,
    scale_factor_spatial=16, scale_factor_temporal=4, latents_mean=[0.0] * 48, latents_std=[1.0] * 48,
)
#: google/umt5-xxl's encoder, as in the Wan Diffusers repositories' text_encoder/config.json.
TEXT_CONFIG = dict(
    vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
    relative_attention_num_buckets=32, relative_attention_max_distance=128, feed_forward_proj="gated-gelu",
    dense_act_fn="gelu_new", is_gated_act=True, layer_norm_epsilon=1e-6, tie_word_embeddings=False,
    scalable_attention=True, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
)
#: The prompt length the pipeline pads every prompt to (our spec's token budget).
MAX_SEQUENCE_LENGTH = 512
#: FP8 storage for the transformer's weights (diffusers' layerwise casting), computed in the run's dtype.
FP8 = torch.float8_e4m3fn


# -- the models ----------------------------------------------------------------------------------------------


def _keep_in_fp32(model: torch.nn.Module, names: list[str] | None) -> None:
    """Cast back to float32 every parameter whose dotted name has one of `names` as a component, as
    `from_pretrained` leaves them."""
    for name, parameter in model.named_parameters():
        if names and any(part in names for part in name.split(".")):
            parameter.data = parameter.data.float()


def build_transformer(dtype: torch.dtype, device: str | torch.device = "meta") -> WanTransformer3DModel:
    with quiet_diffusers(), torch.device(device):
        model = WanTransformer3DModel(**TRANSFORMER_CONFIG).to(dtype).eval()
    if dtype != torch.float32:
        _keep_in_fp32(model, model._keep_in_fp32_modules)
    return model


def build_vae(dtype: torch.dtype = torch.float32, device: str | torch.device = "meta") -> AutoencoderKLWan:
    with quiet_diffusers(), torch.device(device):
        return AutoencoderKLWan(**VAE_CONFIG).to(dtype).eval()


def build_text_encoder(dtype: torch.dtype, device: str | torch.device = "meta") -> UMT5EncoderModel:
    with torch.device(device):
        model = UMT5EncoderModel(UMT5Config(**TEXT_CONFIG)).to(dtype).eval()
    if dtype == torch.float16:  # transformers' rule: `_keep_in_fp32_modules` apply under fp16 only
        _keep_in_fp32(model, list(model._keep_in_fp32_modules or ()))
    return model


@functools.lru_cache(maxsize=4)
def meta_components(dtype: torch.dtype = torch.bfloat16, vae_dtype: torch.dtype = torch.float32) -> dict[str, torch.nn.Module]:
    """The three real-size models on the meta device (no memory): for weight counts and traces."""
    return dict(
        text_encoder=build_text_encoder(dtype), transformer=build_transformer(dtype), vae=build_vae(vae_dtype)
    )


# -- weights -------------------------------------------------------------------------------------------------


def transformer_sizes(transformer: WanTransformer3DModel) -> dict[str, int]:
    """What each placement of the transformer keeps on the device: all of it; one layer (sequential offload);
    what group offload (one block a group, the next prefetched) never streams, and its largest block."""
    blocks = list(transformer.blocks)
    block_bytes = [model_bytes(block) for block in blocks]
    return dict(
        **weight_sizes(transformer), blocks=sum(block_bytes), largest_block=max(block_bytes),
        outside_blocks=model_bytes(transformer) - sum(block_bytes),
    )


def fp8_sizes(compute_dtype: torch.dtype) -> dict[str, int]:
    """The transformer's sizes with its weights stored in FP8 by diffusers' layerwise casting (which skips the
    patch and condition embedders, the norms and the float32 modules), plus `upcast`: the largest layer cast to
    the compute dtype while it runs (one at a time). On a meta copy of its own: the casting hooks it for good."""
    casted = build_transformer(compute_dtype)
    with quiet_diffusers():
        casted.enable_layerwise_casting(storage_dtype=FP8, compute_dtype=compute_dtype)
    sizes = transformer_sizes(casted)
    stored = [
        module for module in casted.modules()
        if any(t.dtype == FP8 for t in module.parameters(recurse=False))
    ]
    sizes["upcast"] = max(
        sum(t.numel() * compute_dtype.itemsize for t in module.parameters(recurse=False)) for module in stored
    )
    return sizes


def weight_bytes(dtype: torch.dtype = torch.bfloat16, vae_dtype: torch.dtype = torch.float32) -> dict[str, dict[str, int]]:
    """Per component ("text_encoder", "transformer", "vae"): bytes of all parameters and buffers ("total") and
    of the largest single layer's own parameters ("largest_leaf", what sequential offload holds at once). The
    transformer's entry adds its blocks, its largest block and what is outside the blocks (group offload), and
    "fp8": the same with its weights stored in FP8."""
    models = meta_components(dtype, vae_dtype)
    sizes = {name: weight_sizes(model) for name, model in models.items()}
    sizes["transformer"] = transformer_sizes(models["transformer"])
    sizes["transformer"]["fp8"] = fp8_sizes(dtype)
    return sizes


def parameter_counts() -> dict[str, int]:
    """Parameters per component (dtype-free): for checking the configs against published counts."""
    return {name: sum(t.numel() for t in model.parameters()) for name, model in meta_components().items()}


# -- traces --------------------------------------------------------------------------------------------------


def latent_shape(width: int, height: int, frames: int) -> tuple[int, int, int, int, int]:
    """(batch, channels, latent frames, latent height, latent width) of a clip: 4k+1 frames → k+1 latent frames."""
    return (1, VAE_CONFIG["z_dim"], (frames - 1) // VAE_CONFIG["scale_factor_temporal"] + 1,
            height // VAE_CONFIG["scale_factor_spatial"], width // VAE_CONFIG["scale_factor_spatial"])


def transformer_inputs(
    width: int, height: int, frames: int, dtype: torch.dtype = torch.bfloat16, device: str | torch.device = "meta"
) -> dict:
    """The arguments of one transformer call as the pipeline makes it for TI2V (`expand_timesteps`): batch 1, a
    float32 timestep per token (0 on the first latent frame, the image), the prompt's 512 embeddings."""
    shape = latent_shape(width, height, frames)
    _, p_h, p_w = TRANSFORMER_CONFIG["patch_size"]
    tokens = shape[2] * (shape[3] // p_h) * (shape[4] // p_w)
    return dict(
        hidden_states=torch.empty(shape, device=device, dtype=dtype),
        timestep=torch.empty((1, tokens), device=device, dtype=torch.float32),
        encoder_hidden_states=torch.empty(
            (1, MAX_SEQUENCE_LENGTH, TRANSFORMER_CONFIG["text_dim"]), device=device, dtype=dtype
        ),
        return_dict=False,
    )


def trace_transformer(
    width: int, height: int, frames: int, dtype: torch.dtype = torch.bfloat16, attention: Attention = "efficient"
) -> Trace:
    """One denoiser call at batch 1 (guidance runs two of them, one after the other)."""
    transformer = meta_components(dtype)["transformer"]
    return trace_call(lambda: transformer(**transformer_inputs(width, height, frames, dtype)), attention)


def trace_text_encoder(
    dtype: torch.dtype = torch.bfloat16, attention: Attention = "efficient", tokens: int = MAX_SEQUENCE_LENGTH
) -> Trace:
    """The text encoder on one prompt padded to `tokens`. Without its padding mask: building that mask reads the
    mask's values (which meta tensors have none of), and it is tokens², next to nothing."""
    encoder = meta_components(dtype)["text_encoder"]
    ids = torch.zeros((1, tokens), dtype=torch.long, device="meta")
    return trace_call(lambda: encoder(ids).last_hidden_state, attention)


def trace_vae_encode(
    width: int, height: int, dtype: torch.dtype = torch.float32, attention: Attention = "efficient"
) -> Trace:
    """Encoding the image as a one-frame video (the first-frame condition; its mode, no sampling)."""
    vae = _vae(dtype)
    pixels = torch.empty((1, 3, 1, height, width), device="meta", dtype=dtype)
    return trace_call(lambda: vae.encode(pixels).latent_dist.mode(), attention)


def trace_vae_decode(
    width: int, height: int, frames: int, tiling: bool = False, dtype: torch.dtype = torch.float32,
    attention: Attention = "efficient",
) -> Trace:
    """Decoding every latent frame of a `frames`-frame clip as the backend does: un-normalise the latents, VAE
    decode (one latent frame at a time through the causal cache, in spatial tiles when `tiling`), then the
    pipeline's post-processing on the device (to [0, 1]) before the frames leave it."""
    vae = _vae(dtype)
    shape = latent_shape(width, height, frames)
    stats = (1, vae.config.z_dim, 1, 1, 1)

    def decode() -> torch.Tensor:
        latents = torch.empty(shape, device="meta", dtype=dtype)
        mean, inverse_std = torch.empty(stats, device="meta", dtype=dtype), torch.empty(stats, device="meta", dtype=dtype)
        video = vae.decode(latents / inverse_std + mean, return_dict=False)[0]
        return (video[0].permute(1, 0, 2, 3) * 0.5 + 0.5).clamp(0, 1)

    with TRACE_LOCK:
        vae.enable_tiling() if tiling else vae.disable_tiling()
        # Tile blending is in place, one row of pixels at a time: no memory to speak of, but thousands of ops.
        vae.blend_v = vae.blend_h = lambda a, b, extent: b
        try:
            return trace_call(decode, attention)
        finally:
            vae.disable_tiling()
            del vae.blend_v, vae.blend_h


def _vae(dtype: torch.dtype) -> AutoencoderKLWan:
    return meta_components(torch.bfloat16, dtype)["vae"]
