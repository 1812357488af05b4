"""The cron trigger: a parsed expression walked month by month on the wall clock."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from datetime import MAXYEAR, MINYEAR, date, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from ..triggers import _WallClockTrigger
from ..wallclock import min_gap
from .describe import describe_cron
from .match import times_of_day
from .parse import parse_cron

__all__ = ["CronTrigger"]


class CronTrigger(_WallClockTrigger):
    """Fires at the times a 5-field cron expression (or alias) matches, in ``tz``.

    Raises ``ValueError`` (see :func:`~.parse.validate_cron`) for an invalid
    expression.  Expressions whose hour field names all 24 hours follow real
    time through daylight-saving changes; the others fire once per wall-clock
    time (see :mod:`eil_pipelines.schedule.triggers`).
    """

    def __init__(self, expr: str, tz: ZoneInfo):
        self.expr = expr
        self.zone = tz
        self._cron = parse_cron(expr)
        self._every_occurrence = len(self._cron.hour.values) == 24
        self._times = times_of_day(self._cron.hour.values, self._cron.minute.values)

    def _walls_after(self, start: datetime) -> Iterator[datetime]:
        cron, times = self._cron, self._times
        year, month, day = start.year, start.month, start.day
        first = bisect_right(times, start.time())  # on ``start``'s own day
        while year <= MAXYEAR:
            if month in cron.month.values:
                days = cron.month_days(year, month)
                for d in days[bisect_left(days, day) :]:
                    on = date(year, month, d)
                    for moment in times[first:] if d == day else times:
                        yield datetime.combine(on, moment)
            day = 0  # every later month from its start
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)

    def _walls_before(self, start: datetime) -> Iterator[datetime]:
        cron, times = self._cron, self._times
        year, month, day = start.year, start.month, start.day
        last = bisect_left(times, start.time())  # on ``start``'s own day
        while year >= MINYEAR:
            if month in cron.month.values:
                days = cron.month_days(year, month)
                for d in reversed(days[: bisect_right(days, day)]):
                    on = date(year, month, d)
                    for moment in reversed(times[:last] if d == day else times):
                        yield datetime.combine(on, moment)
            day = 32  # every earlier month from its end
            year, month = (year - 1, 12) if month == 1 else (year, month - 1)

    def describe(self) -> str:
        """The schedule in words, such as ``"every 15 minutes"`` or
        ``"weekdays at 07:00 Europe/Berlin"``; ``"cron 0 7 1 * * (Europe/Berlin)"``
        for expressions without a simpler reading."""
        return describe_cron(self._cron, self._zone_name)

    @cached_property
    def min_interval(self) -> timedelta:
        """The smallest gap between two fires on the wall clock (daylight saving aside)."""
        times = sorted(h * 60 + m for h in self._cron.hour.values for m in self._cron.minute.values)
        return timedelta(minutes=min_gap(times, self._min_day_gap(), 1440))

    def _min_day_gap(self) -> int:
        # Eight years from 2000 hold every weekday/leap-year combination that
        # matters; a gap of one day is as small as it gets, so stop there.
        start, end = date(2000, 1, 1).toordinal(), date(2008, 1, 1).toordinal()
        previous: int | None = None
        smallest = end - start
        for year in range(2000, 2008):
            for month in sorted(self._cron.month.values):
                for day in self._cron.month_days(year, month):
                    ordinal = date(year, month, day).toordinal()
                    if previous is not None:
                        smallest = min(smallest, ordinal - previous)
                        if smallest == 1:
                            return 1
                    previous = ordinal
        return smallest
