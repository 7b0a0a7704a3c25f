"""Wan 2.2 TI2V-5B (Wan-AI/Wan2.2-TI2V-5B-Diffusers) on diffusers' maintained WanImageToVideoPipeline: its
spec, backend, cost model and tiny builder."""

from i2v.models.base import KnownModel, ModelPlugin
from i2v.models.wan22.spec import SPEC

PLUGIN = ModelPlugin(
    spec=SPEC,
    backend="i2v.models.wan22.backend:WanBackend",
    cost="i2v.models.wan22.cost:COST",
    known=(
        KnownModel(
            "wan2.2-ti2v-5b",
            "Wan 2.2 TI2V-5B, 5 B-parameter diffusion transformer, 720p at 24 fps, Apache-2.0",
            "about 23 GB (bf16: transformer ≈10 GB, UMT5-XXL text encoder ≈11 GB, VAE ≈1.4 GB)",
            hub_id="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
        ),
    ),
    # The hub folder is saved as WanPipeline (with expand_timesteps); our tiny one as WanImageToVideoPipeline.
    pipeline_classes=("WanImageToVideoPipeline", "WanPipeline"),
    tiny="i2v.models.wan22.tiny:make_tiny_model",
)
