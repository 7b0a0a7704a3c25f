"""camera-preview's cost model: no weights, frames drawn on the CPU; memory is the frames themselves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from i2v.models.cost import MemoryEstimate, StagePeak

if TYPE_CHECKING:
    from i2v.models.plan import RunPlan

#: Pillow resamples a staged copy of the image about twice the frame's size, per frame, in float.
_WORK_BYTES_PER_PIXEL = 4 * 3 * 4
#: Pillow's bicubic and perspective resampling per output pixel, roughly.
_FLOPS_PER_PIXEL = 200


class CameraPreviewCost:
    """One stage, render: the finished frames (uint8 RGB) plus a working copy; nothing to offload or tile."""

    rungs = frozenset({"fewer_frames", "lower_resolution"})

    def predict_peak(self, plan: RunPlan) -> MemoryEstimate:
        """Host memory, whatever device was planned for: it draws on the CPU and starts no GPU runtime, so no
        runtime overhead is added either."""
        pixels = plan.width * plan.height
        frames = plan.num_frames * pixels * 3 + pixels * _WORK_BYTES_PER_PIXEL
        render = StagePeak(weights_bytes=0, activation_bytes=frames, total_bytes=frames)
        return MemoryEstimate(
            peak_bytes=frames, peak_stage="render", overhead_bytes=0, stages={"render": render},
            flops={"render": plan.num_frames * pixels * _FLOPS_PER_PIXEL},
        )

    def copy_bytes(self, plan: RunPlan) -> int:
        return 0


COST = CameraPreviewCost()
