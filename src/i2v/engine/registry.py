"""Which backend serves which model. A new video model is one new backend file plus one line here."""

from __future__ import annotations

import json
from dataclasses import dataclass

from i2v.engine.base import Backend
from i2v.engine.loading import resolve_model
from i2v.errors import ModelNotFoundError


@dataclass(frozen=True)
class KnownModel:
    model_id: str
    backend: str
    summary: str
    download_size: str


KNOWN_MODELS = {
    "ali-vilab/i2vgen-xl": KnownModel(
        "ali-vilab/i2vgen-xl", "i2vgenxl", "I2VGen-XL, 1.4 B-parameter 3D UNet, 1280×704 training size", "about 6 GB (fp16)"
    ),
    "camera-preview": KnownModel(
        "camera-preview", "camera-preview", "Camera preview: the prompt's camera motion over the still image, instant, no model",
        "nothing",
    ),
}
#: Models that need no weights: always offered, never resolved on disk or on the hub.
BUILT_IN = frozenset({"camera-preview"})

#: model_index.json `_class_name` -> backend name. Our own sampler saves under the reference's class name.
PIPELINE_CLASSES = {"I2VGenXLPipeline": "i2vgenxl", "I2VGenXLSampler": "i2vgenxl"}


def backend_class(name: str) -> type:
    if name == "i2vgenxl":
        from i2v.engine.i2vgenxl import I2VGenXLBackend

        return I2VGenXLBackend
    if name == "camera-preview":
        from i2v.models.camera_preview.backend import CameraPreviewBackend

        return CameraPreviewBackend
    raise ModelNotFoundError(f"no backend named {name!r}; known: {', '.join(sorted(set(PIPELINE_CLASSES.values())))}")


def load_backend(model: str, *, device: str | None = None, dtype: str | None = None, download: bool = True) -> Backend:
    """Resolve `model` (hub id or folder), pick the backend its model_index.json names, and load it."""
    if model in BUILT_IN:
        return backend_class(KNOWN_MODELS[model].backend).load(None, device=device, dtype=dtype)
    source = resolve_model(model, download=download)
    class_name = json.loads((source.folder / "model_index.json").read_text()).get("_class_name", "")
    if class_name not in PIPELINE_CLASSES:
        raise ModelNotFoundError(
            f"{model} holds a {class_name or 'unnamed'} pipeline, which i2v cannot run; "
            f"supported: {', '.join(sorted(PIPELINE_CLASSES))}"
        )
    return backend_class(PIPELINE_CLASSES[class_name]).load(source, device=device, dtype=dtype)
