"""camera-preview's cost model: no weights, frames drawn on the CPU; memory is the frames themselves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from i2v.models.cost import MemoryEstimate, stage_totals

if TYPE_CHECKING:
    from i2v.advisor.plan import ExecutionPlan

#: Pillow resamples a staged copy of the image about twice the frame's size, per frame, in float.
_WORK_BYTES_PER_PIXEL = 4 * 3 * 4
#: Pillow's bicubic and perspective resampling per output pixel, roughly.
_FLOPS_PER_PIXEL = 200


class CameraPreviewCost:
    """One stage, render: the finished frames (uint8 RGB) plus a working copy; nothing to offload or tile."""

    rungs = frozenset({"fewer_frames", "lower_resolution"})

    def predict_peak(self, plan: ExecutionPlan) -> MemoryEstimate:
        pixels = plan.width * plan.height
        frames = plan.frames * pixels * 3 + pixels * _WORK_BYTES_PER_PIXEL
        stages = stage_totals({"render": 0}, {"render": frames}, plan.device)
        return MemoryEstimate.of(stages, {"render": plan.frames * pixels * _FLOPS_PER_PIXEL}, plan.device)

    def copy_bytes(self, plan: ExecutionPlan) -> int:
        return 0


COST = CameraPreviewCost()
