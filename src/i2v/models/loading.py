"""Where weights come from and what they run on: hub id or local folder, device and dtype, clear errors."""

from __future__ import annotations

import gc
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from textwrap import shorten

import torch

from i2v.errors import InvalidInputError, ModelNotFoundError

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class ModelSource:
    """A model resolved to a folder on disk; `revision` is the hub commit when it came from the hub."""

    model_id: str
    folder: Path
    revision: str | None
    variant: str | None


def available_devices() -> list[str]:
    """The devices this torch build can run on, as `--device` takes them."""
    cuda = [f"cuda:{index}" for index in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return [*cuda, *(["mps"] if torch.backends.mps.is_available() else []), "cpu"]


def pick_device(requested: str | None = None) -> torch.device:
    """The device asked for, refused before anything loads when this machine lacks it; else the best available."""
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError:
            raise InvalidInputError(f"device must be cpu, cuda, cuda:N or mps, got {requested!r}") from None
        here = f"devices here: {', '.join(available_devices())}"
        if device.type == "cuda" and not torch.cuda.is_available():
            raise InvalidInputError(f"device {requested!r} asked for, but torch {torch.__version__} sees no CUDA GPU; {here}")
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise InvalidInputError(f"device {requested!r} asked for, but there is no such CUDA GPU; {here}")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise InvalidInputError(f"device 'mps' asked for, but Metal is not available here; {here}")
        if device.type not in ("cpu", "cuda", "mps"):
            raise InvalidInputError(f"device must be cpu, cuda, cuda:N or mps, got {requested!r}; {here}")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, requested: str | None = None) -> torch.dtype:
    """bf16 where the hardware has it (fp16 overflows to NaN in video models more easily), else fp16 on GPUs, fp32 on CPU."""
    if requested:
        if requested not in DTYPES:
            raise InvalidInputError(f"dtype must be one of {', '.join(DTYPES)}, got {requested!r}")
        return DTYPES[requested]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.bfloat16 if _cpu_has_bf16() else torch.float32


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def dtype_name(dtype: torch.dtype) -> str:
    return {value: key for key, value in DTYPES.items()}[dtype]


def resolve_model(model: str, *, download: bool = True, variant: str | None = None) -> ModelSource:
    """Find `model` on disk: a local folder as given, or a hub id in the Hugging Face cache (downloading if allowed).

    `variant` is the weights' file variant on the hub (the registry knows it per model: "fp16" for
    `*.fp16.safetensors`); a local folder's is read from its files."""
    folder = Path(model).expanduser()
    if folder.exists() or not _HUB_ID.match(model):
        if not folder.is_dir():
            raise ModelNotFoundError(_missing_message(model, f"no model folder at {folder.resolve()}"))
        if not (folder / "model_index.json").is_file():
            raise ModelNotFoundError(
                f"{folder.resolve()} is not a diffusers model folder (no model_index.json): point --model at the "
                "folder that holds model_index.json, or make one with `i2v make-tiny-model DIR`"
            )
        variant = "fp16" if any(folder.glob("*/*.fp16.safetensors")) else None
        return ModelSource(model_id=str(folder.resolve()), folder=folder.resolve(), revision=None, variant=variant)

    from diffusers import DiffusionPipeline
    from huggingface_hub import constants

    offline = not download or constants.HF_HUB_OFFLINE
    try:
        path = DiffusionPipeline.download(model, variant=variant, local_files_only=True)
    except Exception as cached_error:  # noqa: BLE001 - any miss in the cache means "not here yet"
        if offline:
            raise ModelNotFoundError(_missing_message(model, f"not in the Hugging Face cache {constants.HF_HUB_CACHE}")) from cached_error
        log.warning("downloading %s to %s (first use: %s)", model, constants.HF_HUB_CACHE, _download_size(model))
        try:
            path = DiffusionPipeline.download(model, variant=variant)
        except Exception as error:  # noqa: BLE001 - network, auth and missing repo all end the same way for the user
            reason = shorten(str(error).strip().splitlines()[0], 200, placeholder=" …") if str(error).strip() else type(error).__name__
            raise ModelNotFoundError(
                _missing_message(model, f"not in the Hugging Face cache {constants.HF_HUB_CACHE}, and downloading failed: {reason}")
            ) from None
    path = Path(path)
    return ModelSource(model_id=model, folder=path, revision=path.name if path.parent.name == "snapshots" else None, variant=variant)


def _download_size(model: str) -> str:
    from i2v.models.registry import known_models

    known = known_models().get(model)
    return known[0].download_size if known else "size unknown"


def _missing_message(model: str, where: str) -> str:
    from i2v.models.registry import DEFAULT_MODEL

    return (
        f"model {model!r} not found: {where}. Get it with `i2v models pull {model if _HUB_ID.match(model) else DEFAULT_MODEL}` "
        "(set HF_HOME to keep it elsewhere), or pass --model PATH to a downloaded folder "
        "(`i2v make-tiny-model DIR` writes a small random-weight one for smoke runs)"
    )


def free_memory(device: torch.device | str | None = None) -> None:
    """Give cached blocks back so the next job starts from the resident-weights baseline."""
    gc.collect()
    kind = torch.device(device).type if device is not None else None
    if kind in (None, "cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()
    if kind in (None, "mps") and torch.backends.mps.is_available():
        torch.mps.empty_cache()


def save_pipeline(pipeline, folder: Path) -> None:
    """`save_pretrained` in safetensors without transformers' "Writing model shards" bar per sub-model, which
    interleaved with our own output (a tiny model is written in a fraction of a second)."""
    from transformers.utils import logging as transformers_logging

    shown = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        pipeline.save_pretrained(folder, safe_serialization=True)
    finally:
        if shown:
            transformers_logging.enable_progress_bar()
