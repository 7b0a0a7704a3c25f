#!/usr/bin/env bash
# Install i2v and its dev tools into the active Python (use a venv if you like).
# On a machine without an NVIDIA GPU, take the CPU build of torch first: a plain `pip install torch`
# would pull a multi-GB CUDA build. GPU users who already installed their CUDA torch keep it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}

if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    "$PYTHON" -m pip install "torch>=2.4"
  else
    "$PYTHON" -m pip install "torch==2.13.0"
  fi
fi
"$PYTHON" -m pip install -e ".[dev]"
