"""The contract between a video model and everything above it: Backend, Hooks, CostModel, ModelPlugin.

A model is one folder under `i2v/models/` whose `__init__` declares a `PLUGIN`: its spec (what a request may
ask), where its backend and cost model live (imported only when used), the hub ids it serves and the
`model_index.json` class names it runs.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from i2v.models.cost import MemoryEstimate
    from i2v.models.loading import ModelSource
    from i2v.models.plan import RunPlan
    from i2v.models.spec import ModelSpec

#: One vocabulary for where a job is, shared by the CLI, the job store, SSE events and the UI, in the order a run
#: goes through them: load the model (first, so a missing model fails before any LLM call), refine the prompt,
#: encode the inputs (prompt and image), denoise, render (a model-free backend drawing frames), decode latents to
#: frames, write the video file.
Stage = Literal["load", "refine", "encode", "denoise", "render", "decode", "write"]
STAGES: tuple[Stage, ...] = ("load", "refine", "encode", "denoise", "render", "decode", "write")
STAGE_VERBS: dict[str, str] = {
    "refine": "refining the prompt", "load": "loading the model", "encode": "encoding the prompt and image",
    "denoise": "denoising", "render": "rendering frames", "decode": "decoding frames", "write": "writing the video",
}

CfgMode = Literal["batch", "split"]
#: Where the weights live during a run: all on the device; text/image encoders moved off after encoding;
#: one whole model on the device at a time (accelerate hooks); one layer at a time (slowest, least memory).
Offload = Literal["none", "encoders", "model", "sequential"]
#: The SDPA kernel that runs: flash / memory-efficient (stores the output only) or math (the full score matrix).
Attention = Literal["efficient", "math"]

#: on_step(step, total, elapsed_seconds): after every denoising step (or rendered frame).
StepCallback = Callable[[int, int, float], None]
#: on_stage(name): as the run enters a stage of STAGES.
StageCallback = Callable[[str], None]
#: cancelled(): True stops the run with GenerationCancelled at the next step.
CancelCheck = Callable[[], bool]
#: on_preview(step, total, frames): a cheap look at the clip while it forms (uint8 F×H×W×3, ≤256 px, one frame per
#: latent frame), after denoising step `step` of `total`: about 8 a run, at most one a second, always after the
#: last step (`i2v.models.preview`). Nothing is computed for it when no callback is set.
PreviewCallback = Callable[[int, int, "np.ndarray"], None]


@dataclass
class Hooks:
    """What a run reports and obeys, passed as one object from the caller down to the sampler.

    It only reports and answers "stop?": it never moves weights or changes the run. It remembers the stage the
    run is in, so after a failure the caller knows where it happened (the out-of-memory ladder steps down by
    stage).
    """

    on_step: StepCallback | None = None
    on_stage: StageCallback | None = None
    cancelled: CancelCheck | None = None
    on_preview: PreviewCallback | None = None
    stage_now: str | None = None
    _started: float = field(default_factory=time.perf_counter, repr=False)

    def stage(self, name: Stage) -> None:
        self.stage_now = name
        self._started = time.perf_counter()
        if self.on_stage is not None:
            self.on_stage(name)

    def step(self, done: int, total: int) -> None:
        """Step `done` of `total` finished; the elapsed time counts from the start of the stage."""
        if self.on_step is not None:
            self.on_step(done, total, time.perf_counter() - self._started)

    def stop_requested(self) -> bool:
        """Polled before each step; the backend frees what it holds, then raises GenerationCancelled."""
        return self.cancelled is not None and bool(self.cancelled())

    def preview(self, step: int, total: int, frames: np.ndarray) -> None:
        if self.on_preview is not None:
            self.on_preview(step, total, frames)

    @property
    def wants_preview(self) -> bool:
        return self.on_preview is not None


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
    def load(cls, source: ModelSource | None, *, device: str | None = None, dtype: str | None = None) -> Backend: ...

    def generate(
        self,
        plan: RunPlan,
        image: Image.Image,
        hooks: Hooks,
        *,
        tags: Sequence[str] = (),
    ) -> BackendOutput:
        """Run `plan` (the model's spec resolved it, the advisor may have narrowed it): the backend reads every
        setting from it and nothing else. `tags` are the refiner's motion and camera tags: a diffusion model
        reads them in the prompt's text, a model-free backend (camera-preview) renders them."""
        ...


class CostModel(Protocol):
    """What a run of one model costs: the advisor plans over this and nothing else of the model."""

    #: Names of the advisor's ladder rungs this backend can take (see `i2v.advisor.plan.LADDER`).
    rungs: frozenset[str]

    def predict_peak(self, plan: RunPlan) -> MemoryEstimate:
        """Peak device bytes of a run, stage by stage, and the FLOPs behind each stage."""
        ...

    def copy_bytes(self, plan: RunPlan) -> int:
        """Weight bytes copied to the device per job under the plan's offload mode (for time estimates)."""
        ...


@dataclass(frozen=True)
class KnownModel:
    """A model the registry can fetch or run by name."""

    #: The name users pass (`--model`, the API's `model`): a hub id, or a short alias of one.
    model_id: str
    summary: str
    download_size: str
    #: The weights' file variant on the hub ("fp16" for `*.fp16.safetensors`), None for the default files.
    variant: str | None = None
    #: The hub repository when `model_id` is a short alias of it ("a-model" → "Some-Org/A-Model-Diffusers").
    hub_id: str | None = None

    @property
    def repository(self) -> str:
        return self.hub_id or self.model_id


@dataclass(frozen=True)
class ModelPlugin:
    """One model family: its spec and where its parts live ("module:attribute", imported on first use)."""

    spec: ModelSpec
    backend: str
    cost: str
    #: Hub ids (or built-in names) this backend serves, with what `i2v models list` says of them.
    known: tuple[KnownModel, ...] = ()
    #: `_class_name` values in model_index.json that this backend runs.
    pipeline_classes: tuple[str, ...] = ()
    #: No weights: always offered, never resolved on disk.
    built_in: bool = False
    #: Builds a tiny random-weight copy in the hub's layout: make(folder, seed=0) -> Path.
    tiny: str | None = None

    @property
    def name(self) -> str:
        return self.spec.backend

    def backend_class(self) -> type[Backend]:
        return _attribute(self.backend)

    def cost_model(self) -> CostModel:
        return _attribute(self.cost)

    def tiny_builder(self) -> Callable[..., Any] | None:
        return _attribute(self.tiny) if self.tiny else None


def _attribute(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)
