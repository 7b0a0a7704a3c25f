"""Atomic file writes: a crash or a full disk never leaves a half file where a finished one is expected."""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from i2v.errors import OutputWriteError


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffix, so encoders can sniff it); rename over `path` on success."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputWriteError(f"cannot create the output folder {path.parent}: {exc.strerror}") from None
    temp = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    try:
        yield temp
        with open(temp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        raise _write_error(path, exc) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def write_json(path: Path, payload: Any) -> None:
    with atomic_path(path) as temp:
        temp.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def _write_error(path: Path, exc: OSError) -> OutputWriteError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputWriteError(f"disk full while writing {path}: free some space or choose another -o folder")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputWriteError(f"no permission to write {path}: choose another output path")
    return OutputWriteError(f"could not write {path}: {exc.strerror or exc}")
