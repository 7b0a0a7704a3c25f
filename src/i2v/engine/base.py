"""The contract between the engine and everything above it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from i2v.engine.loading import ModelSource
    from i2v.request import GenerationRequest

#: on_step(step, total, elapsed_seconds): called once after every denoising step.
StepCallback = Callable[[int, int, float], None]
#: cancelled(): polled before every denoising step; True stops the run with GenerationCancelled.
CancelCheck = Callable[[], bool]
#: on_stage(name): "load", "encode", "denoise", "decode" (or "render" for camera-preview) as the run moves on.
StageCallback = Callable[[str], None]
CfgMode = Literal["batch", "split"]
#: Where the weights live during a run: all on the device; text/image encoders moved off after encoding;
#: one whole model on the device at a time (accelerate hooks); one layer at a time (slowest, least memory).
Offload = Literal["none", "encoders", "model", "sequential"]
#: The SDPA kernel that runs: flash / memory-efficient (stores the output only) or math (the full score matrix).
Attention = Literal["efficient", "math"]


@dataclass
class RunOptions:
    """How to execute a request on this device (the advisor's plan narrows these; defaults are the reference's)."""

    width: int
    height: int
    decode_chunk_size: int = 1
    vae_tiling: bool = False
    cfg_mode: CfgMode = "batch"
    offload: Offload = "none"
    #: Run the UNet's feed-forward layers a slice at a time (less peak memory, somewhat slower).
    ff_chunking: bool = False
    #: Frames to generate when the advisor lowered them; None keeps the request's.
    num_frames: int | None = None


@dataclass
class BackendOutput:
    frames: np.ndarray  # uint8, F×H×W×3
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Backend(Protocol):
    """One video model, loaded once and kept between jobs."""

    name: str
    model_id: str
    revision: str | None
    device: str
    dtype: str

    @classmethod
    def load(cls, source: ModelSource, *, device: str | None = None, dtype: str | None = None) -> Backend: ...

    def generate(
        self,
        request: GenerationRequest,
        image: Image.Image,
        options: RunOptions,
        *,
        on_step: StepCallback | None = None,
        cancelled: CancelCheck | None = None,
        on_stage: StageCallback | None = None,
        tags: Sequence[str] = (),
    ) -> BackendOutput:
        """`tags` are the refiner's motion and camera tags; a diffusion model reads them in the prompt's text, a
        model-free backend (camera-preview) renders them."""
        ...
