#!/usr/bin/env bash
# The Python wheels bench/gpu_check.py needs on a lent nvidia-h200 device machine and that its image lacks.
#
# That machine (CPython 3.12, x86-64, torch 2.11 / transformers 5.17 / huggingface_hub 1.33 ...) reaches no
# package registry, so what is missing travels with the working tree: this script downloads exactly those wheels
# into .whl/ at the repository root (ignored by .gitignore; the device tool's `carry` takes ignored paths).
#
#   bench/gpu_wheels.sh            download what is not already in .whl/ (idempotent), print the total size
#   bench/gpu_wheels.sh --check    no download: check .whl/ is complete, statically: each wheel's Requires-Dist
#                                  (markers evaluated for Linux x86-64 CPython 3.12, extras skipped) must be met
#                                  by the device image's packages (DEVICE below, versions where known) or by
#                                  another carried wheel; exits 1 on a gap
#
# Missing there, and needed on gpu_check's import path: diffusers, pydantic (i2v.request, i2v.advisor) with
# pydantic-core, annotated-types and typing-inspection, platformdirs (i2v.paths); and for the Wan parts ftfy with
# wcwidth: diffusers' Wan pipelines clean every text prompt with ftfy.fix_text and, without it, fail on a
# NameError (they import it only when it is installed). PyAV is not needed: i2v imports it only where it encodes a
# video, which gpu_check never does. Pins are the versions this repository is tested
# with; pydantic-core must be the one pydantic pins (==).
#
# The device run (docstring of bench/gpu_check.py) installs them with
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/.whl"
WHEELS=(
    diffusers==0.42.1
    pydantic==2.13.4
    pydantic-core==2.46.4
    annotated-types==0.7.0
    typing-inspection==0.4.2
    platformdirs==4.14.8
    ftfy==6.3.1
    wcwidth==0.7.0
)
LIMIT_MIB=32  # the device tool carries 64 MiB in all, the working tree included

check() {
    python3 - "$DEST" "${WHEELS[@]}" <<'PY'
"""Static completeness check of .whl/ against the device image (no install, no network)."""

import re
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

# The nvidia-h200 image's Python packages (/work/.library/device/KINDS.md, read 2026-11-17), with the versions
# that page's `pip list` row states; None: present, version not stated.
DEVICE_VERSIONS = {
    "accelerate": "1.15.0", "botorch": "0.18.1", "cupy-cuda13x": "14.2.0", "gpytorch": "1.15.2",
    "huggingface-hub": "1.33.0", "jax": "0.11.2", "jaxlib": "0.11.2", "jaxtyping": "0.3.11", "numpy": "2.5.2",
    "numpyro": "0.21.0", "onnx": "1.23.1", "onnxruntime": "1.30.0", "pytorch-lightning": "2.6.6",
    "safetensors": "0.8.0", "sentence-transformers": "6.0.1", "sentencepiece": "0.2.2", "tiktoken": "0.14.0",
    "tokenizers": "0.23.2", "torch": "2.11.0", "torchaudio": "2.11.0", "torchvision": "0.26.0",
    "transformers": "5.17.0", "triton": "3.6.0",
}
DEVICE = """
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools
formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna
imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe
matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals
networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc
nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse
nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir
onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging
pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow
pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov
pytest-mock pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu
safetensors scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers
setuptools shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio
torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope triton typer typing-extensions
typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
""".split()
DEVICE = {canonicalize_name(name): DEVICE_VERSIONS.get(name) for name in DEVICE}  # name -> version or None
# Declared but never imported on the device's Python: a wheel for them would be dead weight.
WAIVED = {
    ("diffusers", "importlib-metadata"): "imported only on Python < 3.8 (diffusers/utils/import_utils.py)",
}
# Linux x86-64 CPython 3.12, as on the device; `extra` empty: extras are never installed there.
TARGET = {
    **default_environment(), "implementation_name": "cpython", "platform_python_implementation": "CPython",
    "python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux", "platform_system": "Linux",
    "platform_machine": "x86_64", "os_name": "posix", "extra": "",
}
TAG_OK = re.compile(r"^(py3|py312|cp312)-(none|abi3|cp312)-(any|(manylinux\w*|linux)_x86_64)$")

dest, pins = Path(sys.argv[1]), sys.argv[2:]
wheels = sorted(dest.glob("*.whl")) if dest.is_dir() else []
problems, carried = [], {}
for wheel in wheels:
    name, version, _, tags = parse_wheel_filename(wheel.name)
    if name in carried:
        problems.append(f"two wheels of {name}: {carried[name][1].name} and {wheel.name} (the install stops)")
    carried[name] = (version, wheel)
    if not all(TAG_OK.match(str(tag)) for tag in tags):
        problems.append(f"{wheel.name}: tags {sorted(map(str, tags))} do not all install on CPython 3.12 x86-64")
    if name in DEVICE:
        print(f"note: {name} is already on the device ({DEVICE[name] or 'version not stated'}); "
              f"the carried {version} shadows it")
for pin in map(Requirement, pins):
    name = canonicalize_name(pin.name)
    if name not in carried:
        problems.append(f"{pin} is missing from {dest} (run bench/gpu_wheels.sh)")
    elif not pin.specifier.contains(carried[name][0], prereleases=True):
        problems.append(f"{carried[name][1].name} is not {pin}")

print(f"{len(wheels)} wheels in {dest}:")
for name, (version, wheel) in sorted(carried.items()):
    with zipfile.ZipFile(wheel) as archive:
        member = next(n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
        metadata = Parser().parsestr(archive.read(member).decode())
    print(f"  {wheel.name} ({wheel.stat().st_size / 2**20:.2f} MiB)")
    python = metadata.get("Requires-Python")
    if python and not Requirement(f"python{python}").specifier.contains("3.12.3"):
        problems.append(f"{wheel.name}: Requires-Python {python} excludes 3.12")
    for line in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate(TARGET):
            continue  # an extra, or a marker for another Python or platform
        needed = canonicalize_name(requirement.name)
        if needed in carried:
            have, where = carried[needed][0], "carried"
        elif needed in DEVICE:
            have, where = DEVICE[needed], "device"
        elif (name, needed) in WAIVED:
            print(f"    {requirement}: waived, {WAIVED[name, needed]}")
            continue
        else:
            problems.append(f"{name} needs {requirement}: neither on the device nor carried")
            print(f"    {requirement}: MISSING")
            continue
        if have is None:
            verdict = "ok (version not stated for the device)" if requirement.specifier else "ok"
        elif requirement.specifier.contains(Version(str(have)), prereleases=True):
            verdict = "ok"
        else:
            problems.append(f"{name} needs {requirement}, the {where} has {have}")
            verdict = "VERSION CONFLICT"
        print(f"    {requirement}: {where} {have or ''}".rstrip() + f" - {verdict}")

total = sum(wheel.stat().st_size for wheel in wheels)
print(f"total {total} bytes ({total / 2**20:.2f} MiB)")
if problems:
    print("\nNOT complete:", *problems, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print("complete: every requirement of every carried wheel is met on the device or by the wheels")
PY
}

if [[ "${1:-}" == "--check" ]]; then
    check
    exit
fi
if [[ $# -gt 0 ]]; then
    echo "usage: bench/gpu_wheels.sh [--check]" >&2
    exit 2
fi

mkdir -p "$DEST"
for pin in "${WHEELS[@]}"; do
    name="${pin%%==*}" version="${pin##*==}"
    file_name="${name//-/_}"
    # Another version of the same package would stop the whole install there: drop it first.
    for old in "$DEST/$file_name"-*.whl; do
        if [[ -e "$old" && "$(basename "$old")" != "$file_name-$version-"* ]]; then
            rm -v -- "$old"
        fi
    done
    if compgen -G "$DEST/$file_name-$version-*.whl" >/dev/null; then
        continue  # already here: no index needed
    fi
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$DEST" "$pin"
done

ls -l "$DEST"
total=$(find "$DEST" -maxdepth 1 -type f -name '*.whl' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
echo "total $total bytes ($(awk -v b="$total" 'BEGIN { printf "%.2f", b / 1048576 }') MiB) in $DEST"
if (( total > LIMIT_MIB * 1048576 )); then
    echo "over $LIMIT_MIB MiB: the device tool carries 64 MiB with the working tree" >&2
    exit 1
fi
