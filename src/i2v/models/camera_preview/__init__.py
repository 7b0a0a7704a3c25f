"""camera-preview: the refined camera motion drawn over the still image, with no model (see backend.py)."""

from i2v.models.base import KnownModel, ModelPlugin
from i2v.models.camera_preview.spec import SPEC

PLUGIN = ModelPlugin(
    spec=SPEC,
    backend="i2v.models.camera_preview.backend:CameraPreviewBackend",
    cost="i2v.models.camera_preview.cost:COST",
    known=(KnownModel("camera-preview", "Camera preview: the prompt's camera motion over the still image, instant, no model", "nothing"),),
    built_in=True,
)
