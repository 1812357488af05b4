"""Schedules in words: the phrases ``describe()`` and the error messages share."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time

__all__ = ["DAY_NAMES_TITLE", "clock", "days_phrase", "join"]

#: Weekday names as descriptions show them, Monday first (``date.weekday()`` order).
DAY_NAMES_TITLE = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def join(items: Sequence[str], word: str = "and") -> str:
    """``"a, b and c"`` (or with ``word`` instead of "and"); one item alone, none as ``""``."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def days_phrase(weekdays: frozenset[int]) -> str:
    """``"every day"``, ``"weekdays"``, ``"weekends"`` or ``"on Mon and Fri"``."""
    if len(weekdays) == 7:
        return "every day"
    if weekdays == frozenset(range(5)):
        return "weekdays"
    if weekdays == frozenset({5, 6}):
        return "weekends"
    return "on " + join([DAY_NAMES_TITLE[d] for d in sorted(weekdays)])


def clock(moment: time) -> str:
    """``"08:00"``, or ``"08:00:30"`` when there are seconds."""
    return moment.strftime("%H:%M:%S" if moment.second else "%H:%M")
