"""Before a run: what this device can do, how much memory a request will take, and which settings fit.
During a run: step down a ladder of cheaper settings instead of failing on out-of-memory.

Nothing here imports diffusers: each model's cost model traces on the meta device lazily,
so a plan whose shapes are cached answers without loading any model code.
"""

from i2v.advisor.device import (
    DeviceInfo,
    configure_allocator,
    format_bytes,
    parse_size,
    probe_device,
)
from i2v.advisor.plan import MemoryFit, make_plan, next_rung, predict_peak
from i2v.models.cost import MemoryEstimate

__all__ = [
    "DeviceInfo",
    "MemoryEstimate",
    "MemoryExhaustedError",
    "MemoryFit",
    "configure_allocator",
    "format_bytes",
    "make_plan",
    "next_rung",
    "parse_size",
    "predict_peak",
    "probe_device",
    "run_with_recovery",
]


def __getattr__(name: str):
    """The recovery loop on first use: it imports torch, which planning does not need."""
    if name in ("MemoryExhaustedError", "run_with_recovery"):
        from i2v.advisor import recovery

        return getattr(recovery, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
