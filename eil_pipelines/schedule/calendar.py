"""Business calendars: holidays that skip or move fire times, and "the Nth business day".

This module knows nothing of where holidays come from.  A
:class:`BusinessCalendar` is given a function that names the holiday on a day
(the ``holidays`` package, a company's shutdown days, or both; see
:mod:`eil_pipelines.spec.calendars`), which days are the weekend, and which
days are business days whatever else says (a Saturday close).

Two triggers are built on it, both wall-clock triggers with the usual
daylight-saving rules (:mod:`.triggers`):

* :class:`CalendarTrigger` wraps a cron or daily trigger.  A fire time whose
  day is a holiday is either dropped (``roll = "skip"``) or moved to the same
  time on the next (``"next"``) or previous (``"previous"``) business day.  A
  moved time **merges** into that day when the schedule fires on that day
  anyway: ``cron = "0 7 * * MON-FRI"`` with ``roll = "next"`` does not run
  twice on the Monday after a Friday holiday.  Weekends are not holidays: a
  schedule that fires on Saturdays keeps firing on them; weekends only matter
  for where a moved time lands.
* :class:`BusinessDayTrigger` fires on the Nth business day of each month
  (``-1`` is the last), at the times of day of a cron or daily trigger.

Because a dropped time is simply not a fire time, the report period (previous
fire → this fire) of the next report spans the holiday: the Monday report
after a Friday holiday covers Thursday's fire to Monday's, so no day's data
falls between two reports.  :meth:`CalendarTrigger.changes_between` lists
what the calendar did (dropped, merged, moved), for ``explain`` and for the
ledger's ``skipped`` rows ("holiday: Tag der Deutschen Einheit").
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal

from .triggers import Trigger, _WallClockTrigger

__all__ = [
    "ROLLS",
    "BusinessCalendar",
    "BusinessDayTrigger",
    "CalendarChange",
    "CalendarTrigger",
]

#: The ways a fire time on a holiday is handled.
ROLLS = ("skip", "next", "previous")
Roll = Literal["skip", "next", "previous"]

#: No real calendar closes for a whole year; one that does is a mistake.
_MAX_STRETCH = 366
_DAY = timedelta(days=1)
_TINY = timedelta(microseconds=1)


@dataclass(frozen=True)
class BusinessCalendar:
    """Which days are business days.

    A day is a business day when it is in ``extra_business_days``, or when it
    is neither a weekend day nor a holiday.
    """

    holiday_name: Callable[[date], str | None]
    """The holiday on a day (its name), or None; days in ``extra_business_days`` are never asked."""
    name: str = "calendar"
    """How the calendar is named in descriptions, such as ``"DE-BE"``."""
    weekend: frozenset[int] = frozenset({5, 6})
    """Weekday numbers that are not business days (Monday is 0)."""
    extra_business_days: frozenset[date] = field(default_factory=frozenset)
    """Days that are business days even on a weekend or a holiday."""

    def holiday(self, day: date) -> str | None:
        """The holiday's name when ``day`` is a holiday (not merely a weekend), else None."""
        if day in self.extra_business_days:
            return None
        return self.holiday_name(day)

    def is_business_day(self, day: date) -> bool:
        """Whether ``day`` is a business day."""
        if day in self.extra_business_days:
            return True
        return day.weekday() not in self.weekend and self.holiday_name(day) is None

    def business_day(self, day: date, step: int) -> date:
        """The first business day strictly after (``step=1``) or before (``-1``) ``day``."""
        for _ in range(_MAX_STRETCH):
            day = _shift(day, step)
            if self.is_business_day(day):
                return day
        raise ValueError(f"the {self.name} calendar has no business day within a year of {day}")

    def stretch_end(self, day: date, step: int) -> date:
        """The last day of the run of non-business days next to ``day`` on side ``step``.

        ``day`` itself when the neighbouring day is a business day.
        """
        for _ in range(_MAX_STRETCH):
            following = _shift(day, step)
            if self.is_business_day(following):
                return day
            day = following
        raise ValueError(f"the {self.name} calendar has no business day within a year of {day}")

    def nth_business_day(self, year: int, month: int, n: int) -> date | None:
        """The ``n``-th business day of a month (``-1``: the last), or None if it has fewer."""
        if n == 0:
            raise ValueError("business_day counts from 1 (or from -1 at the month's end), not 0")
        first = date(year, month, 1)
        following = date(year + (month == 12), month % 12 + 1, 1)
        days = (first + timedelta(days=i) for i in range((following - first).days))
        business = [d for d in days if self.is_business_day(d)]
        index = n - 1 if n > 0 else n
        return business[index] if -len(business) <= index < len(business) else None


@dataclass(frozen=True)
class CalendarChange:
    """What a calendar did to one fire time of the underlying schedule."""

    original: datetime
    """The fire time the schedule alone would have had (aware, in its zone)."""
    holiday: str
    """The holiday's name."""
    moved_to: datetime | None
    """Where it moved, or None when it was dropped (``skip``) or merged into a day's own run."""
    merged: bool
    """True when it moved to a day the schedule fires on anyway, so it runs with that day's run."""

    def reason(self) -> str:
        """The words for the ledger and ``explain``: ``"holiday: Easter Monday"`` and what happened."""
        if self.moved_to is not None:
            return f"holiday: {self.holiday}; moved to {self.moved_to:%Y-%m-%d %H:%M}"
        if self.merged:
            return f"holiday: {self.holiday}; the next report covers it"
        return f"holiday: {self.holiday}"


def _shift(day: date, step: int) -> date:
    return day + _DAY if step > 0 else day - _DAY


def _by_day(walls: Iterable[datetime]) -> Iterator[tuple[date, list[datetime]]]:
    """Consecutive walls grouped by their date (in the order given)."""
    day: date | None = None
    group: list[datetime] = []
    for wall in walls:
        if wall.date() != day:
            if group:
                yield day, group  # type: ignore[misc]
            day, group = wall.date(), []
        group.append(wall)
    if group:
        yield day, group  # type: ignore[misc]


class CalendarTrigger(_WallClockTrigger):
    """A cron or daily trigger whose fire times on holidays are dropped or moved.

    See the module docstring for the rules.  ``base`` must be a wall-clock
    trigger (cron or daily): an interval of real time has no "same time on
    another day".
    """

    def __init__(self, base: Trigger, calendar: BusinessCalendar, roll: Roll = "skip"):
        if not isinstance(base, _WallClockTrigger):
            raise ValueError('a calendar goes with "cron" or "daily", not with "every"')
        if roll not in ROLLS:
            raise ValueError(f"roll must be one of {', '.join(ROLLS)}; got {roll!r}")
        self.base = base
        self.calendar = calendar
        self.roll: Roll = roll
        self.zone = base.zone
        self._every_occurrence = base._every_occurrence

    # The walls of each day are worked out a day at a time, in the order of the
    # search (``step`` = +1 forwards, -1 backwards).  A holiday's times move to a
    # business day on side ``roll_step``; when that side lies ahead of the search,
    # a day's own walls are held back until every day that could still move onto
    # it (its neighbouring run of non-business days) has been read.

    def _days(self, start: datetime, step: int) -> Iterator[tuple[date, list[datetime]]]:
        calendar = self.calendar
        roll_step = {"skip": 0, "next": 1, "previous": -1}[self.roll]
        first_day = start.date()
        # Holidays just behind the start may move onto days from the start on.
        behind = calendar.stretch_end(first_day, -step) if roll_step == step else first_day
        if step > 0:
            base = self.base._walls_after(datetime.combine(behind, time.min) - _TINY)
        else:
            base = self.base._walls_before(datetime.combine(behind + _DAY, time.min))
        held: dict[date, tuple[list[datetime], set[time]]] = {}
        order: list[tuple[int, date]] = []  # a heap of held days, in search order

        def key(day: date) -> int:
            return day.toordinal() * step

        def ready(before: date | None) -> Iterator[tuple[date, list[datetime]]]:
            while order and (before is None or self._settled(order[0][1], before, step, roll_step)):
                _, day = heapq.heappop(order)
                own, moved = held.pop(day)
                walls = own or [datetime.combine(day, c) for c in sorted(moved, reverse=step < 0)]
                if walls and key(day) >= key(first_day):
                    yield day, walls

        def hold(day: date) -> tuple[list[datetime], set[time]]:
            if day not in held:
                held[day] = ([], set())
                heapq.heappush(order, (key(day), day))
            return held[day]

        for day, walls in _by_day(base):
            yield from ready(day)
            if calendar.holiday(day) is None:
                hold(day)[0].extend(walls)
            elif roll_step:
                target = calendar.business_day(day, roll_step)
                hold(target)[1].update(w.time() for w in walls)
        yield from ready(None)

    def _settled(self, day: date, current: date, step: int, roll_step: int) -> bool:
        """Whether nothing read from ``current`` on can still add to ``day``."""
        if roll_step == step or roll_step == 0:
            # Moves go the search's way: only days already read feed ``day``.
            return day.toordinal() * step < current.toordinal() * step
        # Moves come back against the search: wait past the non-business days beyond ``day``.
        last_feeder = self.calendar.stretch_end(day, step)
        return last_feeder.toordinal() * step < current.toordinal() * step

    def _walls_after(self, start: datetime) -> Iterator[datetime]:
        for _, walls in self._days(start, 1):
            yield from (w for w in walls if w > start)

    def _walls_before(self, start: datetime) -> Iterator[datetime]:
        for _, walls in self._days(start, -1):
            yield from (w for w in walls if w < start)

    def changes_between(self, after: datetime, until: datetime) -> list[CalendarChange]:
        """What the calendar did to the schedule's fire times in ``(after, until]``, oldest first."""
        changes = []
        for original in self.base.fires(after, until):
            name = self.calendar.holiday(original.date())
            if name is None:
                continue
            moved: datetime | None = None
            merged = False
            if self.roll != "skip":
                step = 1 if self.roll == "next" else -1
                target = self.calendar.business_day(original.date(), step)
                day_start = datetime.combine(target, time.min)
                own = next(iter(self.base._walls_after(day_start - _TINY)), None)
                merged = own is not None and own.date() == target
                if not merged:
                    wall = datetime.combine(target, original.replace(tzinfo=None).time())
                    moved = self._instants(wall)[0].astimezone(self.zone)
            changes.append(CalendarChange(original, name, moved, merged))
        return changes

    def describe(self) -> str:
        """The schedule in words, with what happens on the calendar's holidays."""
        what = {
            "skip": "not on",
            "next": "moved to the next business day on",
            "previous": "moved to the previous business day on",
        }[self.roll]
        return f"{self.base.describe()}, {what} {self.calendar.name} holidays"

    @property
    def min_interval(self) -> timedelta:
        """The base schedule's; moved times merge into days the schedule already fires on."""
        return self.base.min_interval


class BusinessDayTrigger(_WallClockTrigger):
    """Fires on the ``n``-th business day of every month, at a cron or daily trigger's times.

    ``n = 1`` is the first business day, ``n = -1`` the last.  The base
    trigger gives only the times of day; its day fields are not used.
    """

    def __init__(self, base: Trigger, calendar: BusinessCalendar, n: int):
        # A cron trigger keeps its times of day as ``_times``, a daily one as ``times``.
        times: tuple[time, ...] | None = getattr(base, "_times", None) or getattr(
            base, "times", None
        )
        if not isinstance(base, _WallClockTrigger) or not times:
            raise ValueError('business_day goes with "cron" or "daily", not with "every"')
        if n == 0 or not -23 <= n <= 23:
            raise ValueError(f"business_day must be 1 to 23 or -1 to -23, not {n}")
        self.base = base
        self.calendar = calendar
        self.n = n
        self.zone = base.zone
        self._times = tuple(sorted(times))
        self._every_occurrence = base._every_occurrence

    def _months(self, year: int, month: int, step: int) -> Iterator[date]:
        for _ in range(12 * 10_000):
            if not 1 <= year <= 9999:
                return
            day = self.calendar.nth_business_day(year, month, self.n)
            if day is not None:
                yield day
            month += step
            if month == 13:
                year, month = year + 1, 1
            elif month == 0:
                year, month = year - 1, 12

    def _walls_after(self, start: datetime) -> Iterator[datetime]:
        for day in self._months(start.year, start.month, 1):
            yield from (w for c in self._times if (w := datetime.combine(day, c)) > start)

    def _walls_before(self, start: datetime) -> Iterator[datetime]:
        for day in self._months(start.year, start.month, -1):
            walls = (datetime.combine(day, c) for c in reversed(self._times))
            yield from (w for w in walls if w < start)

    def describe(self) -> str:
        """The schedule in words, such as ``"the 1st business day of the month at 07:00"``."""
        n = abs(self.n)
        suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
        which = f"{n}{suffix}" if self.n > 0 else ("last" if n == 1 else f"{n}{suffix} last")
        clocks = ", ".join(c.strftime("%H:%M") for c in self._times)
        zone = self.zone.key or str(self.zone)
        return f"the {which} business day of the month at {clocks} {zone} ({self.calendar.name})"

    @property
    def min_interval(self) -> timedelta:
        """The gap between two times of one day, or a week (months' Nth business days are
        never closer)."""
        minutes = [c.hour * 60 + c.minute for c in self._times]
        gaps = [b - a for a, b in itertools.pairwise(minutes)]
        return timedelta(minutes=min(gaps)) if gaps else timedelta(days=7)
