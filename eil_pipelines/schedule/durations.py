"""Parsing and printing durations such as ``"90s"``, ``"15m"``, ``"1h30m"``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|w|d|h|m|s))+$")


def parse_duration(text: str) -> timedelta:
    """Parse ``"90s"``, ``"15m"``, ``"2h"``, ``"1d"``, ``"1h30m"`` into a timedelta.

    Units: ``w`` weeks, ``d`` days, ``h`` hours, ``m`` minutes, ``s`` seconds,
    ``ms`` milliseconds; parts combine largest first.  Raises ``ValueError``
    with a message fit for the user when the text is not a positive duration.
    """
    if not isinstance(text, str):
        raise ValueError(f'expected a duration string such as "15m", got {text!r}')
    compact = text.strip().replace(" ", "").lower()
    if not compact or not _WHOLE.match(compact):
        raise ValueError(
            f'invalid duration "{text}": expected a number and a unit, '
            'such as "90s", "15m", "2h", "1d" or "1h30m"'
        )
    seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(compact))
    if seconds <= 0:
        raise ValueError(f'invalid duration "{text}": must be greater than zero')
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """The inverse of :func:`parse_duration` for whole seconds: ``1h30m``, ``90s`` → ``1m30s``."""
    total = delta.total_seconds()
    if total < 1:
        return f"{round(total * 1000)}ms"
    total = round(total)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            count, total = divmod(total, size)
            parts.append(f"{count}{unit}")
    return "".join(parts)
