"""Where i2v keeps its own files: `I2V_HOME`, else the platform's user data folder."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_dir


def data_dir() -> Path:
    folder = Path(os.environ.get("I2V_HOME") or user_data_dir("i2v", appauthor=False)).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return folder
