"""Sizes and rates as people write them: ``256M``, ``2GiB``, ``512k``."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def parse_size(text: str) -> int:
    """Bytes for ``text`` (binary units: ``1M`` is 1 MiB); ValueError if malformed."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size like 256M or 2GiB")
    number, unit, _ = match.groups()
    return int(float(number) * (1024 ** _POWERS[unit.lower()]))
