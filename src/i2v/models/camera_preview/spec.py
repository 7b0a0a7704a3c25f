"""What camera-preview can be asked: any length and size the image allows, nothing a diffusion model needs."""

from i2v.models.spec import FrameRule, IntRange, ModelSpec, PromptBudget, SizeRule, Tier

SPEC = ModelSpec(
    backend="camera-preview",
    label="Camera preview (instant, no model)",
    description="The prompt's camera motion drawn over the still image in about a second on a CPU; nothing to download",
    frames=FrameRule(min=2, max=240, default=16),
    # Even sides: H.264 in 4:2:0 needs them. The image itself is limited to 8:1.
    size=SizeRule(
        multiple=2, grid=16, min_side=64, max_side=2048, max_aspect=8.0,
        presets={"256p": 256, "512p": 512, "768p": 768, "1024p": 1024}, default_preset="512p",
    ),
    fps=IntRange(min=4, max=60, default=16),
    steps=None,
    guidance=None,
    negative_prompt=None,
    # Only the refiner's camera tags are drawn; the prompt's words are not read by any model.
    prompt=PromptBudget(tokens=None, words=None, languages="en,zh"),
    tiers={name: Tier(resolution=preset) for name, preset in (("fast", "512p"), ("standard", "768p"), ("quality", "1024p"))},
)
