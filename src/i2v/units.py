"""Memory sizes as people write them and read them: '24GiB' in, '9.8 GiB' out. No dependencies."""

from __future__ import annotations

import re

from i2v.errors import InvalidInputError

GiB = 2**30
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'24GiB', '24GB', '24G', '12000MiB', '24' (GiB) -> bytes. K/M/G/T are powers of 1024 with or without the
    'i', as memory is sold: a "24 GB" RTX 4090 has 24 GiB."""
    match = _SIZE.match(str(text))
    number, unit, suffix = match.groups() if match else ("0", "", "")
    if not unit and suffix.lower() == "i":
        number = "0"
    power = " kmgt".index(unit.lower()) if unit else (0 if suffix else 3)  # a bare number is GiB: "--vram 24"
    size = int(float(number) * 1024**power)
    if size <= 0:
        raise InvalidInputError(f"memory size must be a positive amount like 24GiB, 24GB, 24G or 12000MiB, got {text!r}")
    return size


def format_bytes(size: int) -> str:
    """Binary units, one decimal: 9.8 GiB, 512.0 MiB."""
    for unit, scale in (("GiB", GiB), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(size) >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"
