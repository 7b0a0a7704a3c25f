"""What Wan 2.2 TI2V-5B can be asked: its authors' settings (121 frames at 24 fps, 720p, 50 steps, guidance 5)."""

from i2v.models.spec import FloatRange, FrameRule, IntRange, ModelSpec, PromptBudget, SizeRule, Tier

#: The negative prompt Wan's authors use for every Wan 2.x model (it reads Chinese as well as English).
NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，"
    "丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，"
    "静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)

SPEC = ModelSpec(
    backend="wan22",
    label="Wan 2.2 TI2V-5B",
    description=(
        "Wan 2.2 TI2V-5B (2025, Apache-2.0): 5 B-parameter diffusion transformer with a 16×16×4 VAE, "
        "720p at 24 fps, prompts up to 512 tokens in English or Chinese"
    ),
    # The VAE compresses time 4×: 4k+1 frames. 121 frames is 5 s at 24 fps, the trained length.
    frames=FrameRule(min=5, max=121, default=121, step=4, offset=1, validated=121),
    # 16× VAE and a 2×2 patch: sides are multiples of 32. Presets are the trained pixel counts: 720p is
    # 1280×704 at 16:9 (and 704×1280 upright), 480p is 832×480.
    size=SizeRule(
        multiple=32, grid=32, min_side=64, max_side=1920, max_aspect=2.0,
        presets={"480p": 632, "720p": 949}, default_preset="720p",
    ),
    fps=IntRange(min=8, max=30, default=24),
    steps=IntRange(min=1, max=100, default=50),
    guidance=FloatRange(min=1.0, max=20.0, default=5.0),
    # Flow-matching UniPC (shift 5.0), as the model was released with.
    schedulers=("unipc",),
    # diffusers' step caches on the transformer, configured in backend.py (CACHE_CONFIGS): "first-block" skips the
    # other blocks while the first block's output barely changes; "taylorseer" extrapolates the output on 2 of
    # every 3 steps; "pab" (pyramid attention broadcast) reuses self-attention in the middle of the schedule;
    # "magcache" skips all 30 blocks of a call by a magnitude-ratio curve its authors calibrated on these weights
    # (magcache.py, Apache-2.0, with their threshold 0.06, at most 2 skips in a row, first 20% of steps kept).
    caches=("off", "first-block", "taylorseer", "pab", "magcache"),
    negative_prompt=NEGATIVE_PROMPT,
    motion_fps=None,
    prompt=PromptBudget(
        tokens=512, words=120, languages="en,zh",
        style=(
            "one detailed paragraph of 80-120 words: the subject and what is visible of it, its motion (what moves, "
            "how, how fast), the camera, then the light, colours and style already in the image"
        ),
        form="detailed",
    ),
    tiers={
        "fast": Tier(resolution="480p", steps=30, note="480p, 30 steps"),
        "standard": Tier(resolution="720p", steps=40, note="720p, 40 steps"),
        "quality": Tier(resolution="720p", steps=50, note="720p, the reference 50 steps"),
    },
)
