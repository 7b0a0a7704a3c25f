"""What a client sees of the server's own details: models by name, never a folder's path; messages without paths.

A local model folder is offered under its folder's name (the page's picker, /health, the workers panel), and any
path in a message the page shows (a failed job's error, a checker's refusal) is cut to its last part.
"""

from __future__ import annotations

import re
from pathlib import Path

#: An absolute POSIX path: a slash not inside a word, a URL (`://`) or another path, then at least one part.
PATH = re.compile(r"(?<![\w:/.~])/(?:[\w.~+@-]+/)*[\w.~+@-]+")


def model_name(model: str) -> str:
    """A model as clients see it: a local folder (one here, or a path a worker named) by its folder's name; hub
    ids ("org/name") and built-in names as they are."""
    path = Path(model).expanduser()
    if model.startswith(("/", "~", ".")) or path.is_dir():
        return path.name or model
    return model


def hide_paths(text: str | None) -> str | None:
    """`text` with each absolute path cut to its last part ("cannot load /srv/i2v/models/tiny" → "… tiny")."""
    return PATH.sub(lambda found: found[0].rstrip("/").rsplit("/", 1)[-1], text) if text else text
