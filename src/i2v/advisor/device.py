"""What the device offers: name, memory, compute capability, bf16 — probed, or given (`--vram`, `I2V_VRAM`) to
plan for a card that is not in this machine.

torch is imported only to probe a device (about 1-2 s on 2 cores): planning for a given size with a torch build
that cannot reach a GPU (no CUDA or ROCm libraries, not macOS) needs nothing of it, so a cold `i2v plan --vram`
stays quick."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from i2v.units import GiB, format_bytes, parse_size

__all__ = ["GiB", "format_bytes", "parse_size"]  # re-exported: the advisor's callers read them here

DeviceKind = Literal["cuda", "mps", "cpu"]
#: Less fragmentation for the big, shape-varying activations of a video denoiser (PyTorch's own advice for OOMs).
ALLOCATOR_SETTING = "expandable_segments:True"
_ALLOCATOR_VARIABLES = ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF")


class DeviceInfo(BaseModel):
    """One accelerator (or the CPU) as the planner sees it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: DeviceKind
    name: str
    total_bytes: int
    #: Memory this process could use now: free on the device plus what our own allocator already holds.
    free_bytes: int
    capability: tuple[int, int] | None = None
    bf16: bool = False
    #: "nvml", "torch", "system" (CPU RAM), or "given" when planning for a size from --vram / I2V_VRAM.
    source: str = "torch"

    @property
    def planned(self) -> bool:
        return self.source == "given"


def configure_allocator() -> bool:
    """Turn on expandable segments unless the user configured the allocator; only possible before CUDA starts.
    Returns whether this call set it."""
    torch = sys.modules.get("torch")  # not imported yet: CUDA has not started
    if any(os.environ.get(name) for name in _ALLOCATOR_VARIABLES) or (torch is not None and torch.cuda.is_initialized()):
        return False
    os.environ["PYTORCH_CUDA_ALLOC_CONF"] = ALLOCATOR_SETTING
    return True


def probe_device(device: str | None = None, vram: str | None = None) -> DeviceInfo:
    """The device a run would use (`device` as for `--device`, else the best available). `vram` (or `I2V_VRAM`)
    replaces its memory with a planned size: a CUDA card of that size, named after this one when there is one."""
    configure_allocator()
    planned = vram or os.environ.get("I2V_VRAM")
    if not planned:
        return _probe(device)
    size = parse_size(planned)
    gigabytes = f"{size / GiB:g} GiB"
    probed = _probe(device) if _gpu_possible() else None
    if probed is not None and probed.kind == "cuda":
        return probed.model_copy(update=dict(total_bytes=size, free_bytes=size, source="given"))
    return DeviceInfo(
        kind="cuda", name=f"CUDA GPU with {gigabytes}", total_bytes=size, free_bytes=size,
        capability=None, bf16=True, source="given",
    )


def _gpu_possible() -> bool:
    """Whether the installed torch could see a GPU here: macOS (MPS), or a build with CUDA or ROCm libraries
    (`torch/lib/libtorch_cuda.so`, `torch_cuda.dll`, `libtorch_hip.so`). Looked up on disk, not imported."""
    if sys.platform == "darwin":
        return True
    found = importlib.util.find_spec("torch")
    if found is None or found.origin is None:
        return True  # cannot tell: probe
    libraries = Path(found.origin).parent / "lib"
    return any(libraries.glob("*torch_cuda*")) or any(libraries.glob("*torch_hip*"))


def _probe(device: str | None) -> DeviceInfo:
    import torch

    kind = torch.device(device).type if device else None
    if kind in (None, "cuda") and torch.cuda.is_available():
        index = torch.device(device).index if device else None
        return _probe_cuda(index or 0)
    if kind in (None, "mps") and torch.backends.mps.is_available():
        return _probe_mps()
    return _probe_cpu()


def _probe_cuda(index: int) -> DeviceInfo:
    """NVML when present (no CUDA context needed, so the allocator setting can still change), else torch."""
    import torch

    nvml = _probe_nvml(index) if not torch.cuda.is_initialized() else None
    if nvml is not None:
        return nvml
    free, total = torch.cuda.mem_get_info(index)
    capability = torch.cuda.get_device_capability(index)
    return DeviceInfo(
        kind="cuda", name=torch.cuda.get_device_name(index), total_bytes=total,
        free_bytes=free + torch.cuda.memory_reserved(index), capability=capability,
        bf16=capability >= (8, 0), source="torch",
    )


def _probe_nvml(index: int) -> DeviceInfo | None:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        ids = [item.strip() for item in visible.split(",")]
        if index >= len(ids) or not ids[index].isdigit():
            return None  # UUIDs or MIG names: let torch resolve them
        index = int(ids[index])
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            capability = tuple(pynvml.nvmlDeviceGetCudaComputeCapability(handle))
        finally:
            pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        return None
    return DeviceInfo(
        kind="cuda", name=name.decode() if isinstance(name, bytes) else name, total_bytes=int(memory.total),
        free_bytes=int(memory.free), capability=capability, bf16=capability >= (8, 0), source="nvml",
    )


def _probe_mps() -> DeviceInfo:
    """Apple GPUs share system memory; Metal's recommended working set is the practical ceiling."""
    import torch

    total = int(torch.mps.recommended_max_memory())
    # Metal reports only this process's allocations, which we could reuse: all of the working set is ours.
    return DeviceInfo(
        kind="mps", name="Apple GPU (Metal)", total_bytes=total, free_bytes=total, bf16=True, source="torch"
    )


def _probe_cpu() -> DeviceInfo:
    total, available = _system_memory()
    return DeviceInfo(
        kind="cpu", name="CPU", total_bytes=total, free_bytes=available,
        bf16=_cpu_bf16(), source="system",
    )


def _system_memory() -> tuple[int, int]:
    try:
        import psutil

        memory = psutil.virtual_memory()
        return int(memory.total), int(memory.available)
    except ImportError:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        return pages * size, os.sysconf("SC_AVPHYS_PAGES") * size


def _cpu_bf16() -> bool:
    import torch

    from i2v.models.loading import pick_dtype

    return pick_dtype(torch.device("cpu")) == torch.bfloat16
