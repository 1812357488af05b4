"""A schedule's settings to its trigger: :func:`build_trigger`.

It sits above :mod:`.triggers` and :mod:`.cron` because it knows every kind
of trigger, and :class:`~.cron.CronTrigger` is built on the base classes in
:mod:`.triggers`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta

from .cron import CronTrigger
from .durations import parse_duration
from .triggers import DailyTrigger, EveryTrigger, Trigger
from .zones import get_zone

__all__ = ["build_trigger"]


def _parse_clock(text: str) -> time:
    parts = text.strip().split(":")
    if not (2 <= len(parts) <= 3 and all(p.isascii() and p.isdigit() for p in parts)):
        raise ValueError(f'invalid time "{text}": expected "HH:MM", such as "08:00"')
    if len(parts[0]) > 2 or any(len(p) != 2 for p in parts[1:]):
        raise ValueError(f'invalid time "{text}": expected "HH:MM", such as "08:00"')
    numbers = [int(p) for p in parts]
    try:
        return time(numbers[0], numbers[1], numbers[2] if len(numbers) == 3 else 0)
    except ValueError:
        raise ValueError(f'invalid time "{text}": hour must be 0-23 and minute 0-59') from None


def build_trigger(
    *,
    cron: str | None = None,
    every: timedelta | str | None = None,
    daily: time | str | Sequence[time | str] | None = None,
    days: Sequence[str] | None = None,
    timezone: str | None = None,
    start: datetime | None = None,
) -> Trigger:
    """The trigger for a schedule's settings: exactly one of ``cron``, ``every``, ``daily``.

    ``every`` may be a timedelta or a duration such as ``"90m"``; ``daily`` a
    time, ``"HH:MM"``, or a list of either.  ``days`` goes with ``daily`` and
    ``start`` with ``every``.  ``timezone`` is an IANA name; ``None`` means the
    machine's zone.  Raises ``ValueError`` with a message fit for the user.
    """
    given = [k for k, v in (("cron", cron), ("every", every), ("daily", daily)) if v is not None]
    if len(given) != 1:
        if not given:
            raise ValueError('give one of "cron", "every" or "daily"')
        both = " and ".join(f'"{k}"' for k in given)
        raise ValueError(f'give exactly one of "cron", "every" or "daily", not {both}')
    if days is not None and daily is None:
        raise ValueError('"days" only goes with "daily"')
    if start is not None and every is None:
        raise ValueError('"start" only goes with "every"')
    zone = get_zone(timezone)
    if cron is not None:
        return CronTrigger(cron, zone)
    if every is not None:
        interval = parse_duration(every) if isinstance(every, str) else every
        return EveryTrigger(interval, zone, start)
    assert daily is not None  # exactly one of the three is given
    items = [daily] if isinstance(daily, (str, time)) else list(daily)
    times = [_parse_clock(t) if isinstance(t, str) else t for t in items]
    return DailyTrigger(times, days, zone)
