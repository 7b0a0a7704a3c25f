#!/usr/bin/env bash
# Install i2v and its dev tools into the active Python: make and activate a venv first (see the README).
#
# torch is installed first, because a plain `pip install torch` on Linux pulls the CUDA build (several GB of
# NVIDIA libraries) even where there is no NVIDIA GPU:
#   - a torch already installed (say, the CUDA build you chose) is kept;
#   - with an NVIDIA GPU (nvidia-smi lists one), the default index's build, which is the CUDA one;
#   - on Linux without one, the CPU build from PyTorch's CPU index (I2V_TORCH_CPU_INDEX to use a mirror);
#     where that index cannot be reached, the newest CPU build another configured index or wheel folder offers,
#     else the default index's build, with a warning that it may be the large CUDA one;
#   - elsewhere (macOS, Windows), the default index's build, which has no CUDA libraries there.
# Environment: PYTHON (default: python), I2V_TORCH_CPU_INDEX (default: https://download.pytorch.org/whl/cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
CPU_INDEX=${I2V_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
TORCH="torch>=2.4"  # the floor pyproject.toml has; no exact version: pip takes the newest that fits

say() { echo "install.sh: $*" >&2; }

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  say "error: no '$PYTHON' on PATH. Make a venv with Python 3.11 or newer and activate it:"
  say "  python3 -m venv .venv && . .venv/bin/activate"
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  say "error: i2v needs Python 3.11 or newer; $PYTHON is $("$PYTHON" -c 'import platform; print(platform.python_version())')."
  say "Make a venv with a newer one, e.g.: python3.12 -m venv .venv && . .venv/bin/activate"
  exit 1
fi
if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
  say "error: $PYTHON has no pip. Make a venv (python3 -m venv .venv && . .venv/bin/activate; on Debian/Ubuntu"
  say "first: apt install python3-venv), or install pip for it."
  exit 1
fi

reachable() {  # whether a package index answers within 15 s
  "$PYTHON" - "$1" <<'EOF'
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=15).close()
except Exception as error:
    print(f"install.sh: {sys.argv[1]} cannot be reached ({error})", file=sys.stderr)
    sys.exit(1)
EOF
}

newest_cpu_build() {  # the newest torch version ending in +cpu among the configured indexes and wheel folders
  "$PYTHON" -m pip index versions torch 2>/dev/null | sed -n 's/^Available versions: //p' | tr ',' '\n' \
    | tr -d ' ' | grep '+cpu$' | sort -V | tail -n 1 || true
}

if "$PYTHON" -c "import torch" 2>/dev/null; then
  say "keeping the installed torch $("$PYTHON" -c 'import torch; print(torch.__version__)')"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  say "NVIDIA GPU found: installing torch's CUDA build from the default index"
  "$PYTHON" -m pip install "$TORCH"
elif [ "$(uname -s)" = Linux ]; then
  if reachable "$CPU_INDEX"; then
    say "no NVIDIA GPU: installing torch's CPU build from $CPU_INDEX"
    "$PYTHON" -m pip install --index-url "$CPU_INDEX" "$TORCH"
  elif cpu=$(newest_cpu_build) && [ -n "$cpu" ]; then
    say "no NVIDIA GPU: installing torch $cpu, the newest CPU build the configured indexes offer"
    "$PYTHON" -m pip install "torch==$cpu"
  else
    say "warning: no CPU build of torch found; installing the default index's torch, which on Linux is the CUDA"
    say "build (several GB). To avoid that, point I2V_TORCH_CPU_INDEX at a reachable mirror of $CPU_INDEX."
    "$PYTHON" -m pip install "$TORCH"
  fi
else
  "$PYTHON" -m pip install "$TORCH"
fi
"$PYTHON" -m pip install -e ".[dev]"
say "done: $("$PYTHON" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda or "none")')"
