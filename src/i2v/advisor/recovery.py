"""Out of memory during a run: free what the failed attempt held, step one rung down the ladder, run again.

A prediction can be wrong (another process took memory, the overhead constant is off for this card), so the
plan is a first guess and this loop is the safety net: it steps the run plan down. Each retry is recorded for
the job's metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch

from i2v.advisor.plan import MemoryFit, next_rung, part_names
from i2v.errors import MEMORY_EXHAUSTED, I2VError
from i2v.models.base import STAGE_VERBS, Hooks
from i2v.models.loading import free_memory
from i2v.models.plan import RunPlan
from i2v.models.spec import CACHE_OFF

T = TypeVar("T")
#: Retry record: attempt number, stage that ran out ("encode" / "denoise" / "decode" / None), the error's first
#: line, the rung taken and the new plan's full list of changes and settings.
Retry = dict[str, Any]


class MemoryExhaustedError(I2VError):
    """Out of device memory on every rung of the ladder the plan allowed."""

    code = MEMORY_EXHAUSTED

    def __init__(self, plan: MemoryFit, stage: str | None, retries: list[Retry]):
        fixed = [name for name, flag in (("frames", plan.run.frames_fixed), ("resolution", plan.run.size_fixed)) if flag]
        advice = (
            f"let the advisor lower the {' and '.join(fixed)} you fixed, or lower them yourself"
            if fixed else "lower the resolution or the number of frames"
        )
        super().__init__(
            f"out of device memory{f' while {STAGE_VERBS.get(stage, stage)}' if stage else ''} after {len(retries)} "
            f"retries; the last plan tried was {describe_plan(plan.run)}. To go on: {advice}, close other programs "
            "using the GPU, or use a card with more memory"
        )
        self.plan = plan
        self.stage = stage
        self.retries = retries


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's OutOfMemoryError, or the RuntimeError MPS raises for the same thing."""
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "MPS backend out of memory" in str(error)
    )


def run_with_recovery(
    plan: MemoryFit,
    attempt: Callable[[MemoryFit], T],
    *,
    hooks: Hooks | None = None,
    on_retry: Callable[[Retry], None] | None = None,
) -> tuple[T, list[Retry]]:
    """`attempt(plan)`, and on out-of-memory at any stage again one rung lower (a narrower run) until it succeeds. Returns the
    result and the retries taken; raises MemoryExhaustedError (memory already freed) when no rung is left.

    The stage that ran out is the one `hooks` was in when the error came (the backend reports its stages there).
    """
    retries: list[Retry] = []
    while True:
        if hooks is not None:
            hooks.stage_now = None  # a failure before the attempt reports a stage must not blame the last one's
        try:
            return attempt(plan), retries
        except Exception as error:  # noqa: BLE001 - anything but out-of-memory is re-raised untouched
            if not is_out_of_memory(error):
                raise
            stage = hooks.stage_now if hooks is not None else None
            message = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        # Out of the except block the error and its traceback are gone, and with them every tensor the failed
        # attempt's frames still pinned: only now can the allocator give memory back.
        free_memory()
        lower = next_rung(plan, stage=stage)
        if lower is None:
            raise MemoryExhaustedError(plan, stage, retries) from None
        record: Retry = dict(
            attempt=len(retries) + 1, stage=stage, error=message, rung=lower.changes[-1],
            changes=list(lower.changes), plan=describe_plan(lower.run),
        )
        retries.append(record)
        if on_retry is not None:
            on_retry(record)
        plan = lower


def describe_plan(plan: RunPlan) -> str:
    """One line a user can act on: size, frames, dtype and every setting the ladder can change (naming the
    model's own parts), and the step cache when there is one (its state is memory too)."""
    denoiser = part_names(plan.backend)["denoiser"]
    extras = [f"offload={plan.offload}", f"guidance={'one pass' if plan.cfg_mode == 'batch' else 'two passes'}",
              f"decode chunk {plan.decode_chunk_size}{' tiled' if plan.vae_tiling else ''}"]
    if plan.ff_chunking:
        extras.append("feed-forward chunking")
    if plan.group_offload:
        extras.append(f"{denoiser} streamed block by block (group offload)")
    if plan.fp8_weights:
        extras.append(f"{denoiser}'s weights in FP8")
    if plan.cache not in (None, CACHE_OFF):
        extras.append(f"{plan.cache} step cache")
    return f"{plan.width}×{plan.height}, {plan.num_frames} frames, {plan.dtype}, " + ", ".join(extras)
