"""Which model is which: plugins by name, the spec and cost model of any model a request names.

A new video model is one new folder under `i2v/models/` with a `PLUGIN`, listed in PLUGIN_MODULES; a package
outside i2v can add one through the `i2v.models` entry-point group (the entry point names its ModelPlugin).
Nothing here imports torch or diffusers: asking for a spec stays cheap.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
from importlib import metadata
from pathlib import Path

from i2v.errors import ModelNotFoundError
from i2v.models.base import Backend, KnownModel, ModelPlugin
from i2v.models.spec import ModelSpec

log = logging.getLogger(__name__)

#: The model a request gets when it names none (`I2V_MODEL` overrides it).
DEFAULT_MODEL = "ali-vilab/i2vgen-xl"
PLUGIN_MODULES = ("i2v.models.i2vgenxl", "i2v.models.wan22", "i2v.models.camera_preview")
ENTRY_POINT_GROUP = "i2v.models"


@functools.cache
def plugins() -> dict[str, ModelPlugin]:
    """Every model family by backend name: ours first, then any installed through the entry-point group."""
    found = [importlib.import_module(name).PLUGIN for name in PLUGIN_MODULES]
    ours = {plugin.name for plugin in found}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            plugin = entry.load()
        except Exception as error:  # noqa: BLE001 - a broken third-party plugin must not take i2v down
            log.warning("model plugin %s could not be loaded: %s", entry.value, error)
            continue
        if isinstance(plugin, ModelPlugin) and plugin.name in ours:
            log.warning("model plugin %s is named %r like a built-in one; ignored", entry.value, plugin.name)
        elif isinstance(plugin, ModelPlugin):
            found.append(plugin)
    return {plugin.name: plugin for plugin in found}


def known_models() -> dict[str, tuple[KnownModel, ModelPlugin]]:
    """Model names `i2v models list` shows and `i2v models pull` fetches, with the plugin serving each."""
    return {known.model_id: (known, plugin) for plugin in plugins().values() for known in plugin.known}


def built_in() -> frozenset[str]:
    """Models that need no weights: always offered, never looked up on disk or on the hub."""
    return frozenset(known.model_id for plugin in plugins().values() if plugin.built_in for known in plugin.known)


def plugin(backend: str) -> ModelPlugin:
    found = plugins().get(backend)
    if found is None:
        raise ModelNotFoundError(f"no backend named {backend!r}; known: {', '.join(sorted(plugins()))}")
    return found


def plugin_for(model: str, *, download: bool = False) -> ModelPlugin:
    """The plugin that runs `model`: a name from the registry, or a folder (or cached hub snapshot) whose
    model_index.json names a pipeline class a plugin runs. Raises ModelNotFoundError with what to do."""
    known = known_models().get(model)
    if known is not None:
        return known[1]
    return plugin_for_folder(resolve(model, download=download).folder, model)


def plugin_for_folder(folder: Path, model: str) -> ModelPlugin:
    try:
        class_name = json.loads((folder / "model_index.json").read_text()).get("_class_name", "")
    except (OSError, ValueError, AttributeError):
        class_name = ""
    for candidate in plugins().values():
        if class_name in candidate.pipeline_classes:
            return candidate
    supported = sorted(name for candidate in plugins().values() for name in candidate.pipeline_classes)
    raise ModelNotFoundError(
        f"{model} holds a {class_name or 'unnamed'} pipeline, which i2v cannot run; supported: {', '.join(supported)}"
    )


def spec_for(model: str, *, download: bool = False) -> ModelSpec:
    """What a request may ask of `model`. A hub id the registry does not know is read from its downloaded
    model_index.json; with `download` (the CLI and the Python API, never the server) it is fetched first."""
    return plugin_for(model, download=download).spec


def variant_for(model: str) -> str | None:
    known = known_models().get(model)
    return known[0].variant if known else None


def repository_for(model: str) -> str:
    """Where `model`'s weights come from: its hub repository when it is a registry name or alias, else itself
    (a hub id or a folder)."""
    known = known_models().get(model)
    return known[0].repository if known else model


def resolve(model: str, *, download: bool = False):
    """`model` found on disk (ModelSource), through its alias and weight variant when the registry knows it."""
    from i2v.models.loading import resolve_model

    return resolve_model(repository_for(model), download=download, variant=variant_for(model))


def downloaded(model: str) -> bool:
    """Whether `model` is on disk: built in, a folder, or complete in the Hugging Face cache. A hub model whose
    model_index.json is not even cached is answered from the cache's layout alone, without importing torch and
    diffusers (seconds), so `i2v models list` stays quick before anything is pulled."""
    if model in built_in():
        return True
    repository = repository_for(model)
    if not Path(repository).expanduser().exists():
        from huggingface_hub import constants

        # The cache's documented layout, models--<org>--<name>/snapshots/<revision>/: no snapshot with a
        # model_index.json, nothing to ask diffusers about (huggingface_hub's own lookup imports its HTTP stack).
        cached = Path(constants.HF_HUB_CACHE) / ("models--" + repository.replace("/", "--"))
        if not any(cached.glob("snapshots/*/model_index.json")):
            return False
    try:
        resolve(model)
    except ModelNotFoundError:
        return False
    return True


def load_backend(model: str, *, device: str | None = None, dtype: str | None = None, download: bool = True) -> Backend:
    """Resolve `model` (name, hub id or folder), pick the backend that runs it, and load it."""
    if model in built_in():
        return known_models()[model][1].backend_class().load(None, device=device, dtype=dtype)
    source = resolve(model, download=download)
    return plugin_for_folder(source.folder, model).backend_class().load(source, device=device, dtype=dtype)
