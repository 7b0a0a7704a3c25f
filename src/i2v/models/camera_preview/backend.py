"""`camera-preview`: a backend without a model, so a user sees in a second what the camera will do.

It renders the camera motion the refiner read from the prompt (its tags) over the still image, through the same
request, refine, queue, progress, cancel and video writing as a diffusion model: a meaningful first run on a
machine with no GPU and no weights, and a check that "镜头慢慢推近" became `zoom_in` before spending GPU minutes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from i2v.models.base import BackendOutput, Hooks
from i2v.models.camera_preview.render import describe_motion, render_camera

if TYPE_CHECKING:
    from PIL import Image

    from i2v.models.loading import ModelSource
    from i2v.models.plan import RunPlan

from i2v.models.camera_preview.spec import SPEC

NAME = SPEC.backend


class CameraPreviewBackend:
    """Frames are crops of the image along the camera path; a frame is this backend's step."""

    name = NAME
    model_id = NAME
    revision: str | None = None
    device = "cpu"
    dtype = "uint8"

    @classmethod
    def load(cls, source: ModelSource | None = None, *, device: str | None = None, dtype: str | None = None) -> CameraPreviewBackend:
        """Nothing to load; device and dtype are ignored (it draws with Pillow on the CPU)."""
        return cls()

    def generate(
        self,
        plan: RunPlan,
        image: Image.Image,
        hooks: Hooks,
        *,
        tags: Sequence[str] = (),
    ) -> BackendOutput:
        hooks.stage("render")
        started = time.perf_counter()
        frames = render_camera(
            image, tags, width=plan.width, height=plan.height, num_frames=plan.num_frames, seed=plan.seed,
            cancelled=hooks.stop_requested, on_frame=hooks.step,
        )
        note = f"camera preview: the camera {describe_motion(tags)} (no model ran; the scene itself does not move)"
        return BackendOutput(frames=frames, timings={"render": round(time.perf_counter() - started, 4)}, notes=[note])
