"""`RunPlan`: every setting of one run, concrete. `ModelSpec.resolve` makes it from a request (the one place a
model's defaults and rules are applied), the advisor narrows it for a device, and a backend runs it and reads
nothing else.

Field names are the request's where the request has the setting (`num_frames`, `steps`, `guidance_scale`, …),
so the plan reads like the request it came from with every blank filled in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from i2v.models.base import Attention, CfgMode, Offload

if TYPE_CHECKING:
    from i2v.request import GenerationRequest

#: The kind of device a run is for: the cost models' runtime overhead and the ladder's rungs depend on it.
DeviceKind = Literal["cuda", "mps", "cpu"]
#: The request fields a plan keeps as the user gave them or as the model's defaults filled them in.
REQUEST_FIELDS = (
    "negative_prompt", "resolution", "width", "height", "num_frames", "fps", "motion_fps", "steps", "guidance_scale",
    "scheduler", "cache", "seed",
)


class LoraWeight(BaseModel):
    """One LoRA and how strongly it applies (room for the LoRA feature: no backend reads it yet)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=512)
    strength: float = Field(default=1.0, ge=-10.0, le=10.0)


class RunPlan(BaseModel):
    """One run with nothing left to decide: what the model makes (size, frames, steps, …) and how the device runs
    it (dtype, offload, tiling, guidance passes, chunking). Frozen: a change is a new plan (`model_copy`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The backend whose spec resolved this plan and whose cost model predicts it.
    backend: str
    #: The text the model reads: the user's prompt, the refiner's once the prompt is refined.
    prompt: str = ""
    negative_prompt: str | None = None
    #: The model's size preset the size came from (the default one when the user gave an explicit size).
    resolution: str | None = None
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    num_frames: int = Field(ge=1)
    fps: int = Field(default=8, ge=1)
    #: fps conditioning the model embeds; None: the model has none.
    motion_fps: int | None = None
    #: Denoising steps; None: the model does not denoise.
    steps: int | None = None
    #: None: the model takes no guidance.
    guidance_scale: float | None = None
    scheduler: str | None = None
    #: The step cache (one of the model's `spec.caches`); None: the model has none. The advisor only ever turns
    #: it off, never on.
    cache: str | None = None
    seed: int = Field(default=0, ge=0)

    #: How the device runs it. `device` and `dtype` are the loaded backend's (generate sets them) or the probed
    #: device's (the advisor sets them); resolve cannot know them, so a plan fresh from resolve says "cuda" and
    #: None (the loaded model's own dtype).
    device: DeviceKind = "cuda"
    dtype: str | None = None
    offload: Offload = "none"
    cfg_mode: CfgMode = "batch"
    decode_chunk_size: int = Field(default=1, ge=1)
    vae_tiling: bool = False
    #: Run the denoiser's feed-forward layers a slice at a time (less peak memory, somewhat slower).
    ff_chunking: bool = False
    #: Stream the denoiser's blocks to the device group by group (diffusers' group offload).
    group_offload: bool = False
    #: Keep the denoiser's weights in FP8 and compute in the run's dtype (diffusers' layerwise casting).
    fp8_weights: bool = False
    attention: Attention = "efficient"

    #: The settings the user set (of REQUEST_FIELDS, and "dtype" when the caller pinned it): without
    #: `allow_degrade` the advisor never lowers them.
    user_set: frozenset[str] = frozenset()
    allow_degrade: bool = False

    #: Room for what comes next; nothing reads these yet. LoRAs with their strengths; the window of a long video
    #: continued window by window (0: the first, or the only one); which expert of a mixture runs (None: all).
    loras: tuple[LoraWeight, ...] = ()
    window: int = Field(default=0, ge=0)
    expert: str | None = None

    @property
    def guided(self) -> bool:
        """Guidance runs a second, unconditional pass (a scale of 1 or less is the conditional pass alone)."""
        return (self.guidance_scale or 0) > 1

    @property
    def frames_fixed(self) -> bool:
        return "num_frames" in self.user_set and not self.allow_degrade

    @property
    def size_fixed(self) -> bool:
        return bool({"width", "height", "resolution"} & self.user_set) and not self.allow_degrade

    @property
    def dtype_fixed(self) -> bool:
        return "dtype" in self.user_set and not self.allow_degrade

    def as_request(self, request: GenerationRequest) -> GenerationRequest:
        """`request` with the settings this plan filled in written back (for the clip's metadata), remembering
        which ones the user set. The size stays as the user gave it: the resolution preset says it otherwise."""
        filled = request.model_copy(update={
            name: getattr(self, name) for name in REQUEST_FIELDS if name not in ("width", "height") or name in self.user_set
        })
        object.__setattr__(filled, "__pydantic_fields_set__", set(request.model_fields_set) & (self.user_set | _OTHERS))
        return filled


#: Request fields a plan does not hold (they are the job's, not the run's): kept as the user set them.
_OTHERS = frozenset({"image", "prompt", "model", "allow_degrade", "refiner", "advice"})
