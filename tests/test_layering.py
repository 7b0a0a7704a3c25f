"""The package's boundaries, checked on the source: a model's classes and quirks stay in its folder, heavy
libraries stay where they belong. A grep, so a boundary broken by a new line fails here, not in review."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "i2v"
I2VGENXL = SRC / "models" / "i2vgenxl"

#: What only the I2VGen-XL folder may name: its classes, its conditioning, its text encoder's budget, its files.
I2VGENXL_QUIRKS = re.compile(
    r"I2VGenXL|I2VGen-XL|i2vgen|clip_skip|target_fps|\b77\b|variant=\"fp16\"|\bCLIP|\bUNet\b|\bunet\b|\b(ddim|DDIM|dpmpp)\b"
)
WAN = SRC / "models" / "wan22"
#: What only the Wan 2.2 folder may name: its classes, its text encoder, its timestep and scheduler settings.
WAN_QUIRKS = re.compile(r"\bWan[A-Z]\w*|AutoencoderKLWan|UMT5|\bT5\b|expand_timesteps|flow_shift|\bunipc\b|UniPC|wan2\.2|Wan2\.2")
#: The registry names the models it offers: the default model's hub id and the plugins' modules.
ALLOWED = {
    ("models/registry.py", 'DEFAULT_MODEL = "ali-vilab/i2vgen-xl"'),
    ("models/registry.py", 'PLUGIN_MODULES = ("i2v.models.i2vgenxl", "i2v.models.wan22", "i2v.models.camera_preview")'),
}
#: Heavy or edge libraries -> the only places that may import them.
IMPORTS = {
    "diffusers": ("models/",),
    "transformers": ("models/",),
    "gradio": ("web/",),
    "fastapi": ("web/",),
    "starlette": ("web/",),
}


def sources(outside: Path | None = None) -> list[Path]:
    return [path for path in sorted(SRC.rglob("*.py")) if outside is None or outside not in path.parents]


def test_the_layout_is_the_one_this_test_checks():
    """The folders the checks below rely on exist, so a move cannot make them pass by finding nothing."""
    assert (I2VGENXL / "sampler.py").is_file() and (I2VGENXL / "spec.py").is_file()
    assert (WAN / "backend.py").is_file() and (WAN / "spec.py").is_file()
    assert len(sources(I2VGENXL)) > 40, "too few files outside the model folder: wrong SRC?"


@pytest.mark.parametrize(("folder", "quirks"), [(I2VGENXL, I2VGENXL_QUIRKS), (WAN, WAN_QUIRKS)], ids=["i2vgenxl", "wan22"])
def test_nothing_outside_a_model_folder_names_its_classes_or_quirks(folder, quirks):
    found = []
    for path in sources(folder):
        relative = path.relative_to(SRC).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if quirks.search(line) and (relative, line.strip()) not in ALLOWED:
                found.append(f"{relative}:{number}: {line.strip()}")
    assert not found, f"{folder.name} leaks out of its folder:\n" + "\n".join(found)


def test_the_grep_catches_a_leak():
    """The patterns themselves find each quirk (a pattern that matched nothing would pass the test above)."""
    for leak in ("from i2v.models.i2vgenxl.sampler import I2VGenXLSampler", "clip_skip=1", "target_fps=16",
                 "CLIP reads 77 tokens", 'variant="fp16"', "scheduler='ddim'", "the UNet step"):
        assert I2VGENXL_QUIRKS.search(leak), leak
    for leak in ("WanImageToVideoPipeline(", "UMT5EncoderModel", "expand_timesteps=True", "flow_shift=5.0",
                 "scheduler='unipc'", "Wan2.2-TI2V-5B-Diffusers", "enable WanTransformer3DModel caching"):
        assert WAN_QUIRKS.search(leak), leak


@pytest.mark.parametrize("library", sorted(IMPORTS))
def test_heavy_libraries_are_imported_only_where_they_belong(library):
    pattern = re.compile(rf"^\s*(from|import)\s+{library}\b", re.MULTILINE)
    offenders = [
        path.relative_to(SRC).as_posix()
        for path in sources()
        if pattern.search(path.read_text(encoding="utf-8"))
        and not path.relative_to(SRC).as_posix().startswith(IMPORTS[library])
    ]
    assert not offenders, f"{library} imported outside {IMPORTS[library]}: {offenders}"


def test_only_the_registry_imports_a_model_folder():
    """Everything else reaches a model through the registry (its spec, its backend, its cost model)."""
    pattern = re.compile(r"i2v\.models\.(i2vgenxl|wan22|camera_preview)\b")
    offenders = []
    for path in sources():
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith(("models/i2vgenxl/", "models/wan22/", "models/camera_preview/")) or relative == "models/registry.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert not offenders, "a model folder reached around the registry:\n" + "\n".join(offenders)
