"""A cron expression in words: ``"every 15 minutes"``, ``"weekdays at 07:00 Europe/Berlin"``.

Expressions without a simpler reading are shown as themselves:
``"cron 0 7 1 * * (Europe/Berlin)"``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..words import days_phrase, join
from .match import Cron

__all__ = ["describe_cron", "weekdays"]


def weekdays(cron: Cron) -> frozenset[int] | None:
    """The weekdays (Monday 0) ``cron`` runs on, or None when days depend on the date."""
    if cron.dom.special or cron.dow.special or cron.month.values != frozenset(range(1, 13)):
        return None
    every_weekday = frozenset(range(7))
    if cron.dom.values != frozenset(range(1, 32)):
        return None
    if cron.dow.values == every_weekday or not (cron.dom.star or cron.dow.star):
        # With both fields restricted, a day matching either runs: here all of them.
        return every_weekday
    return frozenset((d - 1) % 7 for d in cron.dow.values)


def describe_cron(cron: Cron, zone_name: str) -> str:
    """``cron`` in words, read in the zone ``zone_name``."""
    fallback = f"cron {cron.source.strip()} ({zone_name})"
    days = weekdays(cron)
    if days is None:
        return fallback
    minutes = sorted(cron.minute.values)
    hours = sorted(cron.hour.values)
    phrase = days_phrase(days)
    on_days = "" if len(days) == 7 else f" {phrase.removeprefix('on ')}"
    on_days = on_days and f" on{on_days}"
    step = _step_of(minutes, 60)
    if len(hours) == 24:
        if len(minutes) == 60:
            words = "every minute"
        elif minutes == [0]:
            words = "every hour"
        elif step and minutes[0] == 0:
            words = f"every {step} minutes"
        elif len(minutes) <= 4:
            words = "every hour at " + join([f":{m:02d}" for m in minutes])
        else:
            return fallback
        return f"{words}{on_days} ({zone_name})" if on_days else words
    hour_step = _step_of(hours, 24)
    if hour_step and hours[0] == 0 and len(minutes) == 1:
        return f"every {hour_step} hours at :{minutes[0]:02d}{on_days} ({zone_name})"
    if len(hours) * len(minutes) <= 4:
        times = [f"{h:02d}:{m:02d}" for h in hours for m in minutes]
        return f"{phrase} at {join(times)} {zone_name}"
    return fallback


def _step_of(values: Sequence[int], size: int) -> int | None:
    """The step of ``values`` when they are 0, s, 2s … over a field of ``size`` and s divides it."""
    if len(values) < 2 or values[0] != 0:
        return None
    step = values[1]
    if size % step or values != list(range(0, size, step)):
        return None
    return step
