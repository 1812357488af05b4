"""Parsing and printing durations such as ``"90s"``, ``"15m"``, ``"1h30m"``."""

from __future__ import annotations

import functools
import re
from datetime import timedelta

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|w|d|h|m|s))+$")


#: The longest duration any setting accepts (about ten years): past it a
#: ``timedelta`` overflows, and no schedule setting means anything there.
MAX_DURATION = timedelta(days=3660)


def parse_duration(
    text: str,
    *,
    minimum: timedelta | None = None,
    maximum: timedelta = MAX_DURATION,
) -> timedelta:
    """Parse ``"90s"``, ``"15m"``, ``"2h"``, ``"1d"``, ``"1h30m"`` into a timedelta.

    Units: ``w`` weeks, ``d`` days, ``h`` hours, ``m`` minutes, ``s`` seconds,
    ``ms`` milliseconds; parts combine largest first.  Raises ``ValueError``
    with a message fit for the user when the text is not a positive duration,
    or lies outside ``minimum`` (default: anything above zero) and ``maximum``.
    """
    if not isinstance(text, str):
        raise ValueError(f'expected a duration string such as "15m", got {text!r}')
    return _parse(text, minimum, maximum)


# Cached: 1,000 pipeline files hold a handful of distinct durations ("1d", "10m").
# Errors are not cached (they raise), and a timedelta is immutable.
@functools.lru_cache(maxsize=1024)
def _parse(text: str, minimum: timedelta | None, maximum: timedelta) -> timedelta:
    compact = text.strip().replace(" ", "").lower()
    if not compact or not _WHOLE.match(compact):
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise ValueError(
            f'invalid duration "{shown}": expected a number and a unit, '
            'such as "90s", "15m", "2h", "1d" or "1h30m"'
        )
    # float() of a long digit string is inf, never an exception: the bound catches it.
    seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(compact))
    shown = compact if len(compact) <= 40 else compact[:40] + "…"
    if seconds > maximum.total_seconds():
        raise ValueError(f'invalid duration "{shown}": must be at most {format_duration(maximum)}')
    delta = timedelta(seconds=seconds)
    if delta <= timedelta(0):
        # Also a positive value below a microsecond, which timedelta rounds to 0.
        raise ValueError(f'invalid duration "{shown}": must be greater than zero')
    if minimum is not None and delta < minimum:
        raise ValueError(f'invalid duration "{shown}": must be at least {format_duration(minimum)}')
    return delta


def check_duration(
    delta: timedelta, *, minimum: timedelta | None = None, maximum: timedelta = MAX_DURATION
) -> timedelta:
    """The bounds of :func:`parse_duration` for a value that is already a timedelta."""
    if delta <= timedelta(0):
        raise ValueError('invalid duration "0s": must be greater than zero')
    if delta > maximum:
        shown = format_duration(delta)
        raise ValueError(f'invalid duration "{shown}": must be at most {format_duration(maximum)}')
    if minimum is not None and delta < minimum:
        shown = format_duration(delta)
        raise ValueError(f'invalid duration "{shown}": must be at least {format_duration(minimum)}')
    return delta


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
