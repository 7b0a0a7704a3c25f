"""What a run costs, in terms every model's cost model shares: stage peaks, the estimate, the runtime overhead,
and a cache for traces made on the meta device.

A model's cost model (`models/<name>/cost.py`) predicts the activations and resident weights of its own stages;
the constants here that only a real GPU can calibrate (RUNTIME_OVERHEAD_BYTES, FRAGMENTATION) are shared by all.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from i2v.errors import I2VError
from i2v.paths import data_dir
from i2v.units import GiB, parse_size

#: CUDA context + cuBLAS/cuDNN workspaces + lazily loaded kernels: typically 0.5-1.5 GiB on CUDA 12, not seen by
#: torch.cuda.max_memory_allocated but counted by nvidia-smi and by the OOM. Env: I2V_RUNTIME_OVERHEAD=1.5GiB.
RUNTIME_OVERHEAD_BYTES = {"cuda": 1 * GiB, "mps": GiB // 2, "cpu": GiB // 2}
#: Share of activation bytes lost to block rounding and blocks too fragmented to reuse (lower with expandable
#: segments, which `configure_allocator` turns on). Env: I2V_FRAGMENTATION=0.2.
FRAGMENTATION = 0.10


class StagePeak(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weights_bytes: int
    activation_bytes: int
    total_bytes: int
    #: Tensors a step cache keeps between denoiser calls (0 without one); in the total like activations.
    state_bytes: int = 0


class CacheCompute(BaseModel):
    """How much of the uncached denoise work a step cache is expected to leave, and what that rests on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cache: str
    #: Expected denoise FLOPs over the uncached run's (1.0: no saving predicted).
    fraction: float
    #: Why: the calls it skips and what fixes them, or why no saving is predicted. Empty without a cache.
    note: str = ""


class MemoryEstimate(BaseModel):
    """Predicted peak of a plan, where it happens, and the FLOPs behind each stage (for time estimates; the
    denoise stage's already scaled by the step cache's expected `cache.fraction`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    peak_bytes: int
    peak_stage: str
    overhead_bytes: int
    stages: dict[str, StagePeak]
    flops: dict[str, int]
    cache: CacheCompute | None = None

    @classmethod
    def of(
        cls, stages: dict[str, StagePeak], flops: dict[str, int], device: str, cache: CacheCompute | None = None
    ) -> MemoryEstimate:
        peak_stage = max(stages, key=lambda stage: stages[stage].total_bytes)
        return cls(
            peak_bytes=stages[peak_stage].total_bytes, peak_stage=peak_stage, overhead_bytes=runtime_overhead(device),
            stages=stages, flops=flops, cache=cache,
        )


def runtime_overhead(device: str) -> int:
    override = os.environ.get("I2V_RUNTIME_OVERHEAD")
    return parse_size(override) if override else RUNTIME_OVERHEAD_BYTES[device]


def fragmentation() -> float:
    override = os.environ.get("I2V_FRAGMENTATION")
    return float(override) if override else FRAGMENTATION



# -- traces, cached -----------------------------------------------------------------------------------------


class TraceCache:
    """Trace results by key, in memory, in a model's shipped traces and in `<data dir>/<file_name>` (entries
    from other library or tracer versions are ignored). A cache that cannot be written only costs time."""

    def __init__(
        self, file_name: str, version: str | Callable[[], str], shipped: Callable[[str], dict | None] | None = None
    ) -> None:
        self._file_name = file_name
        #: Prefix of every key: the tracer's version and the traced libraries' releases; a callable is asked on
        #: first use, not at import (reading package metadata costs a few milliseconds).
        self._version_source = version
        self._lookup_shipped = shipped
        self._entries: dict[str, dict] = {}
        self._shipped: set[str] = set()
        self._loaded: set[Path] = set()
        self._lock = threading.Lock()
        #: Answer from the shipped traces before tracing; False traces every shape anew (the shipped-traces
        #: build and its tests).
        self.use_shipped = True

    @property
    def version(self) -> str:
        if callable(self._version_source):
            self._version_source = self._version_source()
        return self._version_source

    def get(self, key: str, compute) -> dict:
        shape_key, key = key, f"{self.version}|{key}"
        with self._lock:
            if key in self._entries:
                return self._entries[key]
            if self.use_shipped and self._lookup_shipped is not None:
                found = self._lookup_shipped(shape_key)
                if found is not None:
                    self._entries[key] = found  # kept out of the JSON file: the package has it
                    self._shipped.add(key)
                    return found
            path = self._path()
            if path is not None and path not in self._loaded:
                self._entries.update(self._read(path))
                self._loaded.add(path)
            if key in self._entries:
                return self._entries[key]
            self._entries[key] = compute()
            if path is not None:
                self._write(path, {name: value for name, value in self._entries.items() if name not in self._shipped})
            return self._entries[key]

    def clear(self) -> None:
        """Forget what is in memory (the file stays): for tests and benchmarks of a cold start."""
        with self._lock:
            self._entries.clear()
            self._shipped.clear()
            self._loaded.clear()

    def _path(self) -> Path | None:
        try:
            return data_dir() / self._file_name
        except OSError:
            return None  # no writable data folder: trace again in the next process

    def _read(self, path: Path) -> dict[str, dict]:
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(entries, dict):
            return {}
        current = self.version + "|"
        return {key: value for key, value in entries.items() if key.startswith(current)}

    @staticmethod
    def _write(path: Path, entries: dict[str, dict]) -> None:
        from i2v.media.files import write_json

        try:
            write_json(path, entries)
        except (OSError, I2VError):
            pass  # a cache that cannot be written only costs time


def trace_key(kind: str, **shape) -> str:
    """The cache key of one trace, less the versions: 'vae_decode|attention=efficient|chunk=1|dtype=half|…'."""
    return kind + "|" + "|".join(f"{name}={value}" for name, value in sorted(shape.items()))


@functools.cache
def library_versions(libraries: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of `libraries`, read from package metadata (nothing is imported)."""
    return {name: metadata.version(name) for name in libraries}


def stage_totals(
    resident: dict[str, int], activations: dict[str, int], device: str, state: dict[str, int] | None = None
) -> dict[str, StagePeak]:
    """Each stage's peak: resident weights, activations and cache state (both allocated anew every call, so both
    with fragmentation), and the runtime overhead."""
    overhead, frag = runtime_overhead(device), fragmentation()
    state = state or {}
    return {
        stage: StagePeak(
            weights_bytes=resident[stage],
            activation_bytes=activations[stage],
            state_bytes=state.get(stage, 0),
            total_bytes=int(resident[stage] + (activations[stage] + state.get(stage, 0)) * (1 + frag) + overhead),
        )
        for stage in activations
    }
