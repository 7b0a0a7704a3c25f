"""The Python API: one validated request in, frames + everything needed to reproduce them out."""

from __future__ import annotations

import functools
import platform
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata as package_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from i2v.errors import OutputWriteError
from i2v.media.files import write_json
from i2v.media.images import LoadedImage, load_image
from i2v.media.previews import write_thumbnail
from i2v.media.video import DEFAULT_CRF, encode_video, format_for
from i2v.models.base import Hooks
from i2v.request import GenerationRequest

if TYPE_CHECKING:
    from i2v.models.base import Backend
    from i2v.models.plan import RunPlan
    from i2v.refine import Refiner
    from i2v.refine.llm import LLMSettings

_PACKAGES = ("i2v", "torch", "diffusers", "transformers", "accelerate", "av", "pillow", "numpy")


@dataclass
class GenerationResult:
    frames: np.ndarray  # uint8, F×H×W×3
    fps: int
    seed: int
    metadata: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def save(self, path: str | Path, *, fmt: str | None = None, crf: int = DEFAULT_CRF) -> Path:
        """The write stage every caller ends in (CLI, job worker, Python API): the video, its thumbnail beside it
        (same name, `.jpg`: the first frame) and then its metadata (`.json`), each atomically. Returns the video's
        path; `thumbnail_for` and `metadata_for` name the other two."""
        path = Path(path).expanduser()
        video_format = format_for(path, fmt)
        thumbnail = thumbnail_for(path)
        image = self.metadata.get("request", {}).get("image")
        if image and thumbnail.exists() and thumbnail.samefile(image):
            raise OutputWriteError(f"{thumbnail} is the input image and would be overwritten by the clip's thumbnail: "
                                   f"choose another output name than {path.name}")
        started = time.perf_counter()
        encode_video(self.frames, path, fps=self.fps, fmt=video_format, crf=crf)
        write_thumbnail(self.frames[0], thumbnail)
        self.metadata["timings"]["write"] = round(time.perf_counter() - started, 4)
        self.metadata["output"] = {"path": str(path.resolve()), "format": video_format, "crf": crf}
        write_json(metadata_for(path), self.metadata)
        return path


def thumbnail_for(video: Path) -> Path:
    """Where `GenerationResult.save` puts a clip's thumbnail."""
    return video.with_suffix(".jpg")


def metadata_for(video: Path) -> Path:
    """Where `GenerationResult.save` puts a clip's metadata."""
    return video.with_suffix(".json")


_backend_lock = threading.Lock()
_backend: Backend | None = None
_backend_key: tuple | None = None


def get_backend(model: str, *, device: str | None = None, dtype: str | None = None) -> Backend:
    """The loaded backend for `model`, kept between calls; loading another model releases the previous one.

    A model that cannot be found is refused before anything is released, and a load that fails after the
    release brings the previous model back, so one bad job never leaves a worker without the model it served.
    """
    global _backend, _backend_key
    from i2v.models.registry import built_in

    if model in built_in():
        return _built_in(model)  # no weights: it never takes the loaded model's place
    key = (model, device, dtype)
    with _backend_lock:
        if _backend is None or _backend_key != key:
            from i2v.models.loading import free_memory
            from i2v.models.registry import load_backend, plugin_for

            plugin_for(model)  # a model that cannot be found is refused before the loaded one is released
            previous = _backend_key if _backend is not None else None
            _backend = None
            free_memory()
            try:
                _backend = load_backend(model, device=device, dtype=dtype)
            except Exception:
                if previous is not None:
                    _backend = load_backend(previous[0], device=previous[1], dtype=previous[2])
                    _backend_key = previous
                raise
            _backend_key = key
        return _backend


@functools.cache
def _built_in(model: str) -> Backend:
    from i2v.models.registry import load_backend

    return load_backend(model)


def loaded_backend() -> Backend | None:
    """The backend currently held in memory, if any (for health checks)."""
    return _backend


def generate(
    request: GenerationRequest,
    hooks: Hooks | None = None,
    *,
    plan: RunPlan | None = None,
    device: str | None = None,
    dtype: str | None = None,
    backend: Backend | None = None,
    refiner: Refiner | None = None,
    llm: LLMSettings | None = None,
    image: LoadedImage | None = None,
) -> GenerationResult:
    """Generate one clip. Raises `I2VError` subclasses with a message meant for the user.

    1. read the image (unless the caller has: `image`); resolve the request against the model's spec into a RunPlan (`spec.resolve`: its
       defaults fill what it leaves out), unless the caller brings the plan resolved already (a job's, resolved
       when it was submitted);
    2. load the model (a missing model fails before any LLM call);
    3. refine the prompt through `request.refiner` (never blocking: the LLM falls back to the rules), to the
       model's prompt budget; the plan takes the refined text, the metadata keeps both;
    4. on a GPU, let the advisor narrow the plan for the device and step it down on out-of-memory;
    5. run the backend on the plan, reporting stages and steps through `hooks` and stopping when it says so.
    """
    from i2v.models.registry import spec_for
    from i2v.refine import make_refiner

    hooks = hooks or Hooks()
    loaded = image or load_image(request.image)
    spec = spec_for(request.model, download=True)
    resolved = plan or spec.resolve(request, loaded.image.size)
    timings: dict[str, float] = {}

    hooks.stage("load")
    started = time.perf_counter()
    backend = backend or get_backend(request.model, device=device, dtype=dtype)
    timings["load"] = round(time.perf_counter() - started, 4)

    hooks.stage("refine")
    started = time.perf_counter()
    refined = (refiner or make_refiner(request.refiner, llm, spec=spec)).refine(resolved.prompt, loaded.image)
    timings["refine"] = round(time.perf_counter() - started, 4)
    # The refiner may tailor the model's default negative prompt (e.g. drop "static" for a still scene); a
    # negative prompt the user wrote always wins, and a model without one gets none.
    negative = resolved.negative_prompt
    if spec.negative_prompt is not None and "negative_prompt" not in resolved.user_set and refined.negative_prompt:
        negative = refined.negative_prompt
    conditioned = resolved.model_copy(update={
        "prompt": refined.prompt, "negative_prompt": negative, "device": _device_kind(backend.device),
        "dtype": backend.dtype,
    })

    fit, retries = None, []
    if backend.device.startswith(("cuda", "mps")):
        from i2v.advisor import make_plan, probe_device, run_with_recovery

        fit = make_plan(conditioned, probe_device(backend.device), dtype=backend.dtype)
        tried = [fit]

        def attempt(rung):
            tried.append(rung)
            return backend.generate(rung.run, loaded.image, hooks, tags=refined.tags)

        output, retries = run_with_recovery(fit, attempt, hooks=hooks)
        fit = tried[-1]
        ran = fit.run
    else:
        ran = conditioned
        output = backend.generate(ran, loaded.image, hooks, tags=refined.tags)
    timings.update({stage: round(seconds, 4) for stage, seconds in output.timings.items()})
    warnings = [*loaded.warnings, *spec.warnings(resolved), *refined.notes, *(fit.warnings if fit else []), *output.notes]
    return GenerationResult(
        frames=output.frames,
        fps=ran.fps,
        seed=ran.seed,
        warnings=warnings,
        metadata={
            "request": resolved.as_request(request).model_dump(mode="json"),
            "seed": ran.seed,
            "refined_prompt": refined.model_dump(mode="json"),
            "conditioning": {"prompt": ran.prompt, "negative_prompt": ran.negative_prompt},
            "image": {
                "sha256": loaded.sha256,
                "format": loaded.source_format,
                "size": list(loaded.source_size),
            },
            "video": {
                "width": ran.width,
                "height": ran.height,
                "num_frames": int(output.frames.shape[0]),
                "fps": ran.fps,
                "motion_fps": ran.motion_fps,
            },
            "model": {"id": backend.model_id, "revision": backend.revision, "backend": backend.name},
            "runtime": {"device": backend.device, **ran.model_dump(include=RUNTIME_FIELDS)},
            "plan": fit.record() if fit is not None else None,
            "advice": _advice(request, loaded.image, spec),
            "retries": retries,
            "timings": timings,
            "warnings": warnings,
            "versions": _versions(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    )


#: The plan's settings a clip's metadata keeps as how it ran (`runtime`), beside the device it ran on.
RUNTIME_FIELDS = frozenset({"dtype", "decode_chunk_size", "vae_tiling", "cfg_mode", "offload", "ff_chunking"})


def _device_kind(device: str) -> str:
    """"cuda:0" -> "cuda": the kind of device the loaded backend runs on."""
    return device.split(":")[0]


def _advice(request: GenerationRequest, image: Any, spec: Any) -> dict[str, Any]:
    """The advisor's record for the metadata: the assessment the request carries (else the offline one, ~50 ms),
    whether a recommendation was applied, and the troubleshooting chain this run came from."""
    from i2v.advisor.assess import assess

    record = request.advice.model_dump(mode="json") if request.advice else {"recommendation": None, "troubleshooting": []}
    if record.get("assessment") is None:
        record["assessment"] = assess(image, spec=spec).summary()
    record["recommendation_applied"] = bool(record.get("recommendation") and record["recommendation"]["applied"])
    return record


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = package_metadata.version(name)
        except package_metadata.PackageNotFoundError:
            continue
    return versions
