"""Measuring a real-size model's call on the meta device: peak bytes of the tensors it creates and its FLOPs.

No weights and no memory are needed to know what a call costs: a model built on the meta device runs its real
forward with tensors that have shapes and dtypes but no storage behind them. `trace_call` runs such a call once
and reports the peak of the bytes its tensors would have held (what a caching allocator must find, before
fragmentation) and the FLOPs torch counts for it. Attention is counted as the kernel that would run on a GPU:
"efficient" (flash / memory-efficient SDPA: only the output is stored) or "math" (the full score matrix).

Shared by every model folder's `architecture.py`; each builds its own meta models and calls.
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import diffusers.models.attention as diffusers_attention
import torch
import torch.nn.functional as F
from diffusers.utils import logging as diffusers_logging
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode
from transformers import PretrainedConfig

from i2v.models.base import Attention


@dataclass(frozen=True)
class Trace:
    """One traced call: peak bytes of the tensors it created (inputs built inside count) and its FLOPs."""

    peak_bytes: int
    flops: int


class _Measure(TorchDispatchMode):
    """Counts, for every op a traced call makes, its FLOPs (torch's formulas, as `FlopCounterMode` counts them)
    and every storage it creates until the last tensor viewing it dies (a weakref finalizer on the storage), so
    the peak is what a caching allocator would have had to hold, before fragmentation.

    An op seen before with the same inputs (shapes, strides, dtypes, scalars) gets fresh outputs of the shapes,
    strides and storage sizes the meta kernel gave it the first time, and the FLOPs counted then, instead of
    running the kernel and the formula again. A meta kernel's outputs are a function of its inputs' metadata
    alone, so this changes no number; it saves the time a repetitive model spends in torch's Python meta kernels
    (a VAE decoding dozens of tiles of one shape, frame after frame, runs the same few hundred ops thousands of
    times). Ops that return views or write to an input run every time."""

    def __init__(self, table: dict) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self.flops = 0
        self._sizes: dict[int, int] = {}
        self._table = table
        self._decomposing = 0

    def _release(self, key: int) -> None:
        self.live -= self._sizes.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _METADATA_OPS:
            return func(*args, **kwargs)
        out = NotImplemented
        # As FlopCounterMode: an op without a formula is decomposed where it can be, its parts counted instead.
        if func not in _FLOP_FORMULAS and func is not torch.ops.prim.device.default:
            self._decomposing += 1
            try:
                with self:
                    out = func.decompose(*args, **kwargs)
            finally:
                self._decomposing -= 1
        if out is NotImplemented:
            out = self._run(func, args, kwargs)
        if not self._decomposing:
            self._track(func, out)
        return out

    def _run(self, func, args, kwargs):
        """The op's outputs (from the table when seen before), its FLOPs added to the count."""
        key = _cache_key(func, args, kwargs)
        recipe = self._table.get(key) if key is not None else None
        if recipe is not None:
            self.flops += recipe[2]
            return _rebuild(recipe)
        out = func(*args, **kwargs)
        formula = _FLOP_FORMULAS.get(func._overloadpacket)
        flops = formula(*args, **kwargs, out_val=out) if formula is not None else 0
        self.flops += flops
        if key is not None:
            recipe = _recipe(out, flops)
            if recipe is not None:
                if len(self._table) > _CACHE_ENTRIES:
                    self._table.clear()
                self._table[key] = recipe
        return out

    def _track(self, func, out) -> None:
        aliases = [r.alias_info is not None for r in func._schema.returns]
        outputs = out if isinstance(out, (tuple, list)) else (out,)
        for index, value in enumerate(outputs):
            if index < len(aliases) and aliases[index]:
                continue  # a view or in-place result: no new memory
            for tensor in tree_leaves(value):
                if not isinstance(tensor, torch.Tensor):
                    continue
                storage = tensor.untyped_storage()
                key = storage._cdata
                if key in self._sizes:
                    continue
                self._sizes[key] = storage.nbytes()
                self.live += self._sizes[key]
                weakref.finalize(storage, self._release, key)
        self.peak = max(self.peak, self.live)


#: Metadata queries FlopCounterMode leaves alone: they create nothing and cost nothing.
_METADATA_OPS = frozenset({
    torch.ops.aten.sym_is_contiguous.default, torch.ops.aten.is_contiguous.default,
    torch.ops.aten.is_contiguous.memory_format, torch.ops.aten.is_strides_like_format.default,
    torch.ops.aten.is_non_overlapping_and_dense.default, torch.ops.aten.size.default,
    torch.ops.aten.sym_size.default, torch.ops.aten.stride.default, torch.ops.aten.sym_stride.default,
    torch.ops.aten.storage_offset.default, torch.ops.aten.sym_storage_offset.default,
    torch.ops.aten.numel.default, torch.ops.aten.sym_numel.default, torch.ops.aten.dim.default,
    torch.ops.prim.layout.default,
})
#: torch's FLOP formulas by op packet: what FlopCounterMode counts.
_FLOP_FORMULAS = FlopCounterMode(display=False).flop_registry


#: Distinct op signatures kept (a few hundred bytes each); the table is emptied when it grows past this.
_CACHE_ENTRIES = 200_000
_KERNEL_OUTPUTS: dict = {}
_SCALARS = (bool, int, float, complex, str, type(None), torch.dtype, torch.device, torch.layout, torch.memory_format)


def _cache_key(func, args, kwargs):
    """A hashable description of an op call, or None when it must run (views, in-place, unknown arguments)."""
    schema = func._schema
    if schema.is_mutable or any(r.alias_info is not None for r in schema.returns) or not schema.returns:
        return None
    try:
        return (func, _describe(args), _describe(tuple(sorted(kwargs.items()))))
    except _Uncacheable:
        return None


class _Uncacheable(Exception):
    pass


def _describe(value):
    if isinstance(value, torch.Tensor):
        if value.device.type != "meta" or type(value) is not torch.Tensor:
            raise _Uncacheable
        return ("T", tuple(value.shape), value.stride(), value.storage_offset(), value.dtype)
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, *(_describe(item) for item in value))
    if isinstance(value, _SCALARS):
        return (type(value).__name__, value)
    raise _Uncacheable


def _recipe(out, flops: int):
    """How to make `out` again: per tensor its dtype, shape, stride, offset and (shared) storage size; and the
    op's FLOPs."""
    outputs = out if isinstance(out, (tuple, list)) else (out,)
    storages: dict[int, int] = {}
    recipe = []
    for tensor in outputs:
        if not isinstance(tensor, torch.Tensor) or tensor.device.type != "meta" or type(tensor) is not torch.Tensor:
            return None
        storage = tensor.untyped_storage()
        index = storages.setdefault(storage._cdata, len(storages))
        recipe.append((index, storage.nbytes(), tensor.dtype, tuple(tensor.shape), tensor.stride(), tensor.storage_offset()))
    return (type(out) if isinstance(out, (tuple, list)) else None, tuple(recipe), flops)


def _rebuild(recipe):
    kind, tensors, _ = recipe
    storages: dict[int, torch.UntypedStorage] = {}
    made = []
    for index, nbytes, dtype, shape, stride, offset in tensors:
        if index not in storages:
            storages[index] = torch.UntypedStorage(nbytes, device="meta")
        made.append(torch.empty(0, dtype=dtype, device="meta").set_(storages[index], offset, shape, stride))
    return made[0] if kind is None else kind(made)


#: Traces share the meta models and swap two library functions for their duration: one at a time. The swapped-in
#: versions act only in the tracing thread, so a model running for real on another thread is unaffected.
TRACE_LOCK = threading.RLock()
_tracing = threading.local()
_SDPA = F.scaled_dot_product_attention
_CHUNKED_FEED_FORWARD = diffusers_attention._chunked_feed_forward


def _efficient_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **kwargs):
    """What flash / memory-efficient SDPA stores: the output (and a small log-sum-exp), never the scores."""
    if getattr(_tracing, "attention", None) != "efficient":
        return _SDPA(query, key, value, attn_mask, dropout_p, is_causal, scale=scale, **kwargs)
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        attn_mask = torch.zeros(attn_mask.shape, dtype=query.dtype, device=query.device)
    if attn_mask is not None:
        attn_mask = attn_mask.expand(query.shape[0], query.shape[1], query.shape[2], key.shape[2])
    return torch.ops.aten._scaled_dot_product_efficient_attention(
        query, key, value, attn_mask, False, dropout_p, is_causal, scale=scale
    )[0]


def _chunked_feed_forward_peak(ff, hidden_states: torch.Tensor, chunk_dim: int, chunk_size: int) -> torch.Tensor:
    """Same memory as diffusers' chunked feed-forward at its worst moment (every other chunk's output held,
    one chunk in flight, then the concatenation) for one chunk's worth of ops instead of thousands."""
    if getattr(_tracing, "attention", None) is None:
        return _CHUNKED_FEED_FORWARD(ff, hidden_states, chunk_dim, chunk_size)
    chunk = ff(hidden_states.narrow(chunk_dim, 0, chunk_size))
    rest_shape = list(chunk.shape)
    rest_shape[chunk_dim] = hidden_states.shape[chunk_dim] - chunk_size
    rest = chunk.new_empty(rest_shape)
    return torch.cat([chunk, rest], dim=chunk_dim)


@contextmanager
def _tracing_as(attention: Attention) -> Iterator[None]:
    with TRACE_LOCK:
        F.scaled_dot_product_attention = _efficient_attention
        diffusers_attention._chunked_feed_forward = _chunked_feed_forward_peak
        _tracing.attention = attention
        try:
            yield
        finally:
            _tracing.attention = None
            F.scaled_dot_product_attention = _SDPA
            diffusers_attention._chunked_feed_forward = _CHUNKED_FEED_FORWARD


def trace_call(call: Callable[[], object], attention: Attention = "efficient") -> Trace:
    """Run `call` (on meta tensors) once and measure it; whatever it returns is dropped before the end."""
    measure = _Measure(_KERNEL_OUTPUTS)
    with _tracing_as(attention), torch.no_grad(), measure:
        result = call()
        del result
    return Trace(peak_bytes=measure.peak, flops=measure.flops)


@contextmanager
def quiet_diffusers() -> Iterator[None]:
    """diffusers warns on every dtype cast of a model with float32 modules ("should be kept in float32"): not
    news when building meta models."""
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(verbosity)


def own_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's own parameters (not its children's)."""
    return sum(t.nbytes for t in module.parameters(recurse=False))


def model_bytes(model: torch.nn.Module) -> int:
    """Bytes of all parameters and buffers."""
    return sum(t.nbytes for t in model.parameters()) + sum(t.nbytes for t in model.buffers())


def weight_sizes(model: torch.nn.Module) -> dict[str, int]:
    """Bytes of all parameters and buffers, and of the largest single layer's own parameters (what sequential
    offload holds on the device at once)."""
    return dict(total=model_bytes(model), largest_leaf=max(own_bytes(module) for module in model.modules()))


#: Config entries that say where a model came from, not what it is (and diffusers' private "_…" ones).
_BOOKKEEPING = frozenset({"transformers_version", "architectures"})


def architecture_fingerprint(models: dict[str, torch.nn.Module]) -> str:
    """A digest of what a trace runs, as the installed libraries build it: every module's name and class (and
    the class of the attention processor a diffusers `Attention` runs), every parameter's and buffer's name,
    shape and dtype, and each model's config (less bookkeeping, and less a transformers config's generic
    settings left at their defaults), with the attention implementation it chose. Equal digests: the same
    architecture, whichever library releases built it."""
    summary = {name: _describe_model(model) for name, model in sorted(models.items())}
    text = json.dumps(summary, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _describe_model(model: torch.nn.Module) -> dict:
    modules = [
        [name, type(module).__name__, type(getattr(module, "processor", None)).__name__]
        for name, module in model.named_modules()
    ]
    tensors = [
        [name, list(tensor.shape), str(tensor.dtype)]
        for name, tensor in (*model.named_parameters(), *model.named_buffers())
    ]
    return dict(modules=modules, tensors=tensors, config=_config(getattr(model, "config", None)))


def _config(config) -> dict:
    if config is None:
        return {}
    if isinstance(config, PretrainedConfig):
        generic = PretrainedConfig().to_dict()
        entries = {key: value for key, value in config.to_dict().items() if key not in generic or generic[key] != value}
        entries["attention_implementation"] = getattr(config, "_attn_implementation", None)
    else:
        entries = dict(config)
    return {key: value for key, value in entries.items() if key not in _BOOKKEEPING and not key.startswith("_")}
