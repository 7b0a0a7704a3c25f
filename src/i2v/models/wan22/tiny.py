"""Tiny random-weight Wan 2.2 TI2V-5B pipelines in the hub's layout, for tests and smoke runs without downloads.

The VAE and transformer are diffusers' own test configuration for this model (48 latent channels, 16×16×4
compression, a 2×2 patch, `expand_timesteps`), so the real code path runs; the text encoder is a two-layer UMT5
and the tokenizer a T5 unigram vocabulary built in memory (diffusers' tests take both from the hub). The folder
is saved the way the hub's is, as a `WanPipeline` with `expand_timesteps`, and the flow-matching UniPC
scheduler has the released shift (5.0). About 0.4 MB; a 64×64, 9-frame, 3-step run takes well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKLWan,
    UniPCMultistepScheduler,
    WanImageToVideoPipeline,
    WanTransformer3DModel,
)
from transformers import T5Tokenizer, UMT5Config, UMT5EncoderModel

from i2v.models.loading import save_pipeline

#: The released scheduler: flow matching with UniPC, shift 5.0.
SCHEDULER_CONFIG = dict(prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000, flow_shift=5.0)
#: UMT5's width must equal the transformer's `text_dim`.
TEXT_DIM = 32
WORDS = "a the cat dog turns head runs walks on in snow beach sea waves camera slowly pans left right zoom".split()


def tiny_tokenizer() -> T5Tokenizer:
    """T5's layout (<pad> 0, </s> 1, <unk> 2), whole words and single letters: any English text tokenizes."""
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [("\u2581" + word, -3.0) for word in WORDS]
    vocab += [(letter, -6.0) for letter in "abcdefghijklmnopqrstuvwxyz"]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=512)


def tiny_components(seed: int = 0) -> dict:
    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(tokenizer), d_model=TEXT_DIM, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
            relative_attention_num_buckets=8, feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1,
            decoder_start_token_id=0,
        )
    )
    torch.manual_seed(seed)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=48, in_channels=12, out_channels=12, is_residual=True, patch_size=2,
        latents_mean=[0.0] * 48, latents_std=[1.0] * 48, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
        scale_factor_spatial=16, scale_factor_temporal=4, temperal_downsample=[False, True, True],
    )
    torch.manual_seed(seed)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=48, out_channels=48,
        text_dim=TEXT_DIM, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    )
    return dict(
        tokenizer=tokenizer, text_encoder=text_encoder.eval(), vae=vae.eval(), transformer=transformer.eval(),
        scheduler=UniPCMultistepScheduler(**SCHEDULER_CONFIG), transformer_2=None, image_encoder=None,
        image_processor=None, boundary_ratio=None, expand_timesteps=True,
    )


def make_tiny_model(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny random-weight pipeline to `folder` and return it."""
    folder = Path(folder).expanduser().resolve()
    save_pipeline(WanImageToVideoPipeline(**tiny_components(seed)), folder)
    # The hub's checkpoint is saved as a WanPipeline (no image encoder entries): keep the layout identical.
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    index["_class_name"] = "WanPipeline"
    for component in ("image_encoder", "image_processor"):
        index.pop(component, None)
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    return folder
