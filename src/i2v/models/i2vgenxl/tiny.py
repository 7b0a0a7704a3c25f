"""Tiny random-weight I2VGen-XL pipelines in the hub's layout, for tests and smoke runs without downloads.

The folder has the same model_index.json and component folders as `ali-vilab/i2vgen-xl` (class name
`I2VGenXLPipeline`), so our loader and diffusers' `DiffusionPipeline.from_pretrained` both read it. The VAE has
four levels like the real one (scale factor 8), which keeps latents small and a 64×64×8-frame run well under a
second; the scheduler is configured like the released one (v-prediction, zero-SNR cosine betas).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, I2VGenXLUNet
from tokenizers.pre_tokenizers import ByteLevel
from transformers import (
    CLIPImageProcessorPil,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

#: The released checkpoint's scheduler settings (see docs/architecture.md, "Measured facts").
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_schedule="squaredcos_cap_v2",
    rescale_betas_zero_snr=True,
    prediction_type="v_prediction",
    timestep_spacing="leading",
    clip_sample=False,
)


def tiny_vocab() -> dict[str, int]:
    """A byte-level BPE vocabulary with no merges: every character is a token. No hub access needed."""
    alphabet = sorted(ByteLevel.alphabet())
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for symbol in alphabet:
        vocab[symbol] = len(vocab)
    for symbol in alphabet:
        vocab[symbol + "</w>"] = len(vocab)
    return vocab


def tiny_components(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    unet = I2VGenXLUNet(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=4,
        attention_head_dim=4,
        num_attention_heads=None,
        norm_num_groups=2,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 8, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        sample_size=32,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=4,
            intermediate_size=16,
            layer_norm_eps=1e-05,
            num_attention_heads=2,
            num_hidden_layers=2,
            vocab_size=1000,
            hidden_act="gelu",
            projection_dim=32,
        )
    )
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=4,
            projection_dim=4,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            intermediate_size=16,
            patch_size=1,
        )
    )
    tokenizer = CLIPTokenizer(vocab=tiny_vocab(), merges=[], model_max_length=77)
    return dict(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        image_encoder=image_encoder.eval(),
        feature_extractor=CLIPImageProcessorPil(crop_size={"height": 32, "width": 32}, size={"shortest_edge": 32}),
        unet=unet.eval(),
        scheduler=DDIMScheduler(**SCHEDULER_CONFIG),
    )


def make_tiny_model(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny random-weight pipeline to `folder` and return it."""
    from i2v.models.i2vgenxl.sampler import I2VGenXLSampler
    from i2v.models.loading import save_pipeline

    folder = Path(folder).expanduser().resolve()
    pipeline = I2VGenXLSampler(**tiny_components(seed))
    save_pipeline(pipeline, folder)
    # The hub's tokenizer folder carries vocab.json + merges.txt (transformers 4 reads only those); so does ours.
    (folder / "tokenizer" / "vocab.json").write_text(json.dumps(tiny_vocab()), encoding="utf-8")
    (folder / "tokenizer" / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    # The hub's checkpoint names the reference pipeline class; keep the layout identical so either loader works.
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    index["_class_name"] = "I2VGenXLPipeline"
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    return folder
