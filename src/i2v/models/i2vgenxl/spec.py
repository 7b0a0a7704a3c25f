"""What I2VGen-XL can be asked: its upstream authors' limits and the reference pipeline's defaults."""

from i2v.models.spec import (
    FloatRange,
    FrameRule,
    IntRange,
    ModelSpec,
    MotionRule,
    PromptBudget,
    SizeRule,
    Tier,
)

NEGATIVE_PROMPT = (
    "Distorted, discontinuous, Ugly, blurry, low resolution, motionless, static, disfigured, "
    "disconnected limbs, Ugly faces, incomplete arms"
)

SPEC = ModelSpec(
    backend="i2vgenxl",
    label="I2VGen-XL",
    description="I2VGen-XL (2023): 1.4 B-parameter 3D UNet, trained at 1280×704, 16 frames; about 6 GB of fp16 weights",
    # 16 frames is the validated length; at 32 motion can stop after frame 16.
    frames=FrameRule(min=8, max=32, default=16, validated=16),
    # Sizes on a 64-px grid (the UNet's natural one); the reference's wide crop loses content past 2:1.
    size=SizeRule(
        multiple=8, grid=64, min_side=64, max_side=2048, max_aspect=2.0,
        presets={"256p": 256, "512p": 512, "768p": 768, "1024p": 1024}, default_preset="512p",
        hint="64 is best for this model",
    ),
    fps=IntRange(min=4, max=30, default=16),
    steps=IntRange(min=1, max=100, default=50),
    guidance=FloatRange(min=1.0, max=20.0, default=9.0),
    schedulers=("ddim", "dpmpp"),
    negative_prompt=NEGATIVE_PROMPT,
    # `target_fps` is embedded by the UNet; training clips were sampled at 8 or 16 fps.
    motion_fps=MotionRule(min=4, max=30, trained=(8, 16)),
    # CLIP reads 77 tokens; about 60 English words is where a prompt starts to be cut off.
    prompt=PromptBudget(
        tokens=77, words=60, languages="en",
        style="one or two plain English sentences: the subject, what moves and how, the camera",
    ),
    # DDIM degrades under 50 steps, so "fast" switches to DPM-Solver++; 1024p is near the training pixel count.
    tiers={
        "fast": Tier(resolution="512p", steps=25, scheduler="dpmpp", note="DPM-Solver++ at 25 steps"),
        "standard": Tier(resolution="768p", steps=50, scheduler="ddim", note="the reference sampler, 50 DDIM steps"),
        "quality": Tier(resolution="1024p", steps=80, scheduler="ddim", note="near the training size, 80 DDIM steps"),
    },
)
