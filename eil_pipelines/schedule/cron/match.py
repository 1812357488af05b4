"""What a cron expression matches: its fields as sets, the days of a month, the times of day.

Day-of-month and day-of-week combine as in Vixie cron: when both are
restricted (neither starts with ``*``) a day matching either runs; otherwise
both must match.  The days of a month are worked out by arithmetic on its
length and the weekday of its 1st, never by walking a calendar.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import time
from functools import lru_cache

__all__ = ["DAYS_IN_MONTH", "Cron", "Field", "days_of", "times_of_day"]

#: The most days each month can have (index 1 is January; February with leap years).
DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class Field:
    """One parsed cron field (shared: :func:`~.parse.parse_field` caches them)."""

    values: frozenset[int]  # the plain values it matches (day-of-week 7 folded to 0)
    star: bool  # starts with "*": unrestricted for Vixie's day-of-month/day-of-week rule
    last: bool = False  # day-of-month L
    last_weekday: bool = False  # day-of-month LW
    last_dows: frozenset[int] = field(default_factory=frozenset)  # day-of-week 5L
    nth_dows: frozenset[tuple[int, int]] = field(default_factory=frozenset)  # 5#2

    @property
    def special(self) -> bool:
        """Whether it uses ``L``, ``LW``, ``5L`` or ``5#2``: days that depend on the month."""
        return self.last or self.last_weekday or bool(self.last_dows) or bool(self.nth_dows)


@dataclass(frozen=True)
class Cron:
    """A validated cron expression."""

    source: str
    minute: Field
    hour: Field
    dom: Field
    month: Field
    dow: Field

    def month_days(self, year: int, month: int) -> Sequence[int]:
        """The days of ``month`` on which cron runs, ascending; ``month`` must be one it names."""
        first_dow, month_len = calendar.monthrange(year, month)
        return days_of(self.dom, self.dow, first_dow, month_len)

    def runs_some_day(self) -> bool:
        """Whether any date matches.

        Which days of a month match depends only on its length and the weekday
        of its 1st, and every month (February with 28 and with 29 days) starts
        on each weekday again and again (at most 40 years apart), so trying
        every combination answers for all years.
        """
        for month in self.month.values:
            for month_len in (28, 29) if month == 2 else (DAYS_IN_MONTH[month],):
                for first_dow in range(7):
                    if days_of(self.dom, self.dow, first_dow, month_len):
                        return True
        return False


def days_of(dom: Field, dow: Field, first_dow: int, month_len: int) -> Sequence[int]:
    """The days of a month matching ``dom`` and ``dow`` (Vixie's rule), ascending.

    The month is given by its length and the weekday of its 1st (Monday 0, as
    in :mod:`calendar`).
    """
    every_dom, every_dow = len(dom.values) == 31, len(dow.values) == 7
    both = dom.star or dow.star  # both fields must match, else either one
    if (every_dom and every_dow) or (not both and (every_dom or every_dow)):
        return range(1, month_len + 1)
    if both and every_dow:
        return sorted(_dom_days(dom, first_dow, month_len))
    if both and every_dom:
        return sorted(_dow_days(dow, first_dow, month_len))
    dom_days, dow_days = _dom_days(dom, first_dow, month_len), _dow_days(dow, first_dow, month_len)
    return sorted(dom_days & dow_days if both else dom_days | dow_days)


def _dom_days(dom: Field, first_dow: int, month_len: int) -> set[int]:
    days = {d for d in dom.values if d <= month_len}
    if dom.last:
        days.add(month_len)
    if dom.last_weekday:
        last_dow = (first_dow + month_len - 1) % 7
        days.add(month_len - max(0, last_dow - 4))  # back from Saturday or Sunday
    return days


def _dow_days(dow: Field, first_dow: int, month_len: int) -> set[int]:
    # Day d falls on cron weekday (first_dow + d) % 7 (Sunday 0), so the first
    # day on weekday v is 1 + (v - 1 - first_dow) % 7, and every 7th after it.
    days: set[int] = set()
    for v in dow.values:
        days.update(range(1 + (v - 1 - first_dow) % 7, month_len + 1, 7))
    for v in dow.last_dows:
        first = 1 + (v - 1 - first_dow) % 7
        days.add(first + 7 * ((month_len - first) // 7))
    for v, nth in dow.nth_dows:
        day = 1 + (v - 1 - first_dow) % 7 + 7 * (nth - 1)
        if day <= month_len:
            days.add(day)
    return days


@lru_cache(maxsize=1024)
def times_of_day(hours: frozenset[int], minutes: frozenset[int]) -> tuple[time, ...]:
    """The times of day a cron expression names, ascending (shared between triggers)."""
    return tuple(time(h, m) for h in sorted(hours) for m in sorted(minutes))
