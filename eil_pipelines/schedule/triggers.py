"""Triggers: when a schedule fires, as pure functions of time.

A trigger answers two questions with no clock of its own: ``next_fire(after)``,
the first fire time strictly after an instant, and ``previous_fire(before)``,
the last one strictly before it.  Both take and return aware datetimes; the
results are in the trigger's zone.  The scheduler loop, catch-up and the report
period ("previous fire → this fire") are built on these two calls.

Three kinds, made by :func:`~eil_pipelines.schedule.build.build_trigger` from a
schedule's settings:

* :class:`~eil_pipelines.schedule.cron.CronTrigger` (in the :mod:`.cron`
  package): a 5-field cron expression (names, ranges, lists, steps, ``L``,
  ``LW`` and ``#``) or an alias (``@hourly``, ``@daily``/``@midnight``,
  ``@weekly``, ``@monthly``, ``@yearly``/``@annually``).  Day-of-month and
  day-of-week combine as in Vixie cron: when both are restricted (neither starts
  with ``*``) a day matching either runs; otherwise both must match.  Day-of-week
  0 and 7 are both Sunday.
* :class:`DailyTrigger`: one or more local times of day, optionally on given
  weekdays only.
* :class:`EveryTrigger`: a fixed interval of real elapsed time, on a grid of whole
  multiples of the interval counted from an anchor (default 2000-01-01 00:00 in
  the zone), so a restart never shifts it.

Daylight-saving time
--------------------
Schedules are read on the wall clock of their zone, and a wall-clock time can
be missing (spring forward) or occur twice (fall back).  The rules:

1. **Times that do not exist run once, at the first valid instant after the
   gap.**  ``daily = "02:30"`` or cron ``30 2 * * *`` on 2026-03-29 in
   Europe/Berlin (clocks jump 02:00 → 03:00) runs at 03:00+02:00; in
   America/New_York on 2026-03-08 also at 03:00-04:00.  Several missing times
   (``*/30 2 * * *`` names 02:00 and 02:30) collapse into that one run.
2. **Times that occur twice run once, at their first occurrence** (fold=0):
   ``30 2 * * *`` on 2026-10-25 in Europe/Berlin runs at 02:30+02:00 only, and
   ``*/30 2 * * *`` runs at 02:00+02:00 and 02:30+02:00, not again in the repeated
   hour.  This applies to :class:`DailyTrigger` and to every cron expression whose
   hour field does not name all 24 hours (``0 */2 * * *`` too).
3. **Hourly and shorter schedules follow real time.**  A cron expression whose
   hour field names all 24 hours (``*``, ``0-23``, ``*/1``) fires at every real
   instant at which the wall clock matches: in the repeated hour it fires in both
   occurrences, and minutes in the skipped hour simply do not happen.  Cron
   ``0 * * * *`` on 2026-10-25 in Europe/Berlin fires at 01:00+02:00, 02:00+02:00,
   02:00+01:00, 03:00+01:00 (every real hour); on 2026-03-29 at 01:00+01:00,
   then 03:00+02:00 (one real hour later).
4. **Intervals are real time.**  :class:`EveryTrigger` counts elapsed seconds in
   UTC, so daylight saving never bends the grid: ``every = "1h"`` fires every
   real hour through both changes.  Its wall-clock times move with the clocks
   instead: ``every = "90m"`` anchored at midnight in winter fires at 00:00,
   01:30, 03:00 … in winter but 01:00, 02:30, 04:00 … in summer.  Intervals that
   divide an hour keep their minutes past the hour in zones that shift by whole
   hours.

Comparing fire times: Python compares and subtracts two datetimes that share a
tzinfo by their clock readings, ignoring ``fold``, so 02:30+02:00 counts as later
than 02:00+01:00 on a fall-back day.  Convert fire times with
``.astimezone(timezone.utc)`` (or use ``.timestamp()``) before ordering them,
putting them in a heap or measuring the time between them.

The cron engine (parse, match, describe) is in :mod:`eil_pipelines.schedule.cron`,
and the wall-clock arithmetic the rules above are built on (a time's
occurrences, the end of a gap) in :mod:`eil_pipelines.schedule.wallclock`.
This module holds the base classes and the daily and interval triggers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .durations import format_duration

# The shared helpers keep the private names this module's classes have always used.
from .wallclock import gap_end as _gap_end
from .wallclock import min_gap as _min_gap
from .wallclock import occurrences as _occurrences
from .wallclock import overlap as _overlap
from .wallclock import to_utc as _to_utc
from .words import clock as _clock
from .words import days_phrase as _days_phrase
from .words import join as _join

__all__ = [
    "WEEKDAYS",
    "DailyTrigger",
    "EveryTrigger",
    "Trigger",
]

#: Weekday names as schedules spell them, Monday first (``date.weekday()`` order).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_DEFAULT_ANCHOR = datetime(2000, 1, 1)
_MIN_INTERVAL = timedelta(seconds=1)


# --------------------------------------------------------------------------- triggers


class Trigger(ABC):
    """When a schedule fires: pure functions of the instant asked about.

    Subclasses implement :meth:`next_fire`, :meth:`previous_fire`,
    :meth:`describe` and :attr:`min_interval`.  ``zone`` is the zone results
    are given in; order or subtract results in UTC (see the module docstring).
    """

    zone: ZoneInfo

    @abstractmethod
    def next_fire(self, after: datetime) -> datetime:
        """The first fire time strictly after the aware datetime ``after``, in :attr:`zone`."""

    @abstractmethod
    def previous_fire(self, before: datetime) -> datetime:
        """The last fire time strictly before the aware datetime ``before``, in :attr:`zone`."""

    @abstractmethod
    def describe(self) -> str:
        """The schedule in words, such as ``"weekdays at 07:00 Europe/Berlin"``."""

    @property
    @abstractmethod
    def min_interval(self) -> timedelta:
        """The smallest gap between two fire times (from the wall clock for cron and daily)."""

    def fires(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """Every fire time in ``(after, until]``, oldest first."""
        limit = _to_utc(until, "until")
        moment = self.next_fire(after)
        while moment.astimezone(UTC) <= limit:
            yield moment
            moment = self.next_fire(moment)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"

    @property
    def tz(self) -> ZoneInfo:
        """The zone the schedule is read in (same as :attr:`zone`)."""
        return self.zone

    @property
    def _zone_name(self) -> str:
        return self.zone.key or str(self.zone)


class _WallClockTrigger(Trigger):
    """A trigger defined by wall-clock times, mapped to instants by the DST rules.

    Subclasses give the matching wall-clock times (naive) in order, forwards
    from or backwards from a starting time, and say whether a repeated time
    fires in both occurrences (hourly-or-finer cron) or only in the first.
    """

    _every_occurrence: bool = False

    @abstractmethod
    def _walls_after(self, start: datetime) -> Iterable[datetime]:
        """Matching naive wall times strictly after ``start``, ascending."""

    @abstractmethod
    def _walls_before(self, start: datetime) -> Iterable[datetime]:
        """Matching naive wall times strictly before ``start``, descending."""

    def _instants(self, wall: datetime) -> tuple[datetime, ...]:
        """The UTC instants a matching wall time fires at (ascending)."""
        found = _occurrences(wall, self.zone)
        if self._every_occurrence:
            return found
        return found[:1] or (_gap_end(wall, self.zone),)

    # Wall time → instant is monotonic except inside a repeated hour, where
    # the second occurrences come later in real time but earlier on the clock.
    # So each search starts one overlap early (or late) and stops once a wall
    # time's earliest (latest) instant cannot beat the best found.

    def next_fire(self, after: datetime) -> datetime:
        """The first fire time strictly after ``after``, in :attr:`zone`."""
        limit = _to_utc(after, "after")
        local = limit.astimezone(self.zone)
        start = local.replace(tzinfo=None) - _overlap(local)
        best: datetime | None = None
        for wall in self._walls_after(start):
            instants = self._instants(wall)
            if not instants:
                continue
            if best is not None and instants[0] >= best:
                break
            for moment in instants:
                if moment > limit and (best is None or moment < best):
                    best = moment
        if best is None:
            raise ValueError(f"{self.describe()} never fires after {after.isoformat()}")
        return best.astimezone(self.zone)

    def previous_fire(self, before: datetime) -> datetime:
        """The last fire time strictly before ``before``, in :attr:`zone`."""
        limit = _to_utc(before, "before")
        local = limit.astimezone(self.zone)
        start = local.replace(tzinfo=None) + _overlap(local)
        best: datetime | None = None
        for wall in self._walls_before(start):
            instants = self._instants(wall)
            if not instants:
                continue
            if best is not None and instants[-1] <= best:
                break
            for moment in instants:
                if moment < limit and (best is None or moment > best):
                    best = moment
        if best is None:
            raise ValueError(f"{self.describe()} never fired before {before.isoformat()}")
        return best.astimezone(self.zone)


class DailyTrigger(_WallClockTrigger):
    """Fires at each of ``times`` (local, naive) every day, or on ``days`` only.

    ``days`` are ``"mon"`` … ``"sun"``.  Raises ``ValueError`` for an empty
    list of times or an unknown day.  Missing and repeated local times follow
    the daylight-saving rules in the module docstring.
    """

    def __init__(self, times: Sequence[time], days: Sequence[str] | None, tz: ZoneInfo):
        if not times:
            raise ValueError('daily needs at least one time, such as "08:00"')
        for moment in times:
            if not isinstance(moment, time) or moment.tzinfo is not None:
                raise ValueError(f"daily times must be local times of day, got {moment!r}")
        self.times = tuple(sorted(set(times)))
        self.days = None if days is None else tuple(_check_days(days))
        self.zone = tz
        self._weekdays = frozenset(
            range(7) if self.days is None else (WEEKDAYS.index(d) for d in self.days)
        )

    def _walls_after(self, start: datetime) -> Iterator[datetime]:
        day = start.date()
        while True:
            if day.weekday() in self._weekdays:
                for moment in self.times:
                    wall = datetime.combine(day, moment)
                    if wall > start:
                        yield wall
            day += timedelta(days=1)

    def _walls_before(self, start: datetime) -> Iterator[datetime]:
        day = start.date()
        while True:
            if day.weekday() in self._weekdays:
                for moment in reversed(self.times):
                    wall = datetime.combine(day, moment)
                    if wall < start:
                        yield wall
            day -= timedelta(days=1)

    def describe(self) -> str:
        """Such as ``"every day at 08:00 and 17:30 UTC"`` or ``"on Mon and Fri at 08:00 UTC"``."""
        times = _join([_clock(t) for t in self.times])
        return f"{_days_phrase(self._weekdays)} at {times} {self._zone_name}"

    @property
    def min_interval(self) -> timedelta:
        """The smallest gap between two fires on the wall clock."""
        seconds = [t.hour * 3600 + t.minute * 60 + t.second for t in self.times]
        ordered = sorted(self._weekdays)
        day_gap = min(
            (b - a) % 7 or 7 for a, b in zip(ordered, ordered[1:] + ordered[:1], strict=True)
        )
        return timedelta(seconds=_min_gap(seconds, day_gap, 86400))


def _check_days(days: Sequence[str]) -> list[str]:
    if isinstance(days, str):
        days = [days]
    if not days:
        raise ValueError('days must name at least one day, such as ["mon", "fri"]')
    out = []
    for day in days:
        name = day.strip().lower() if isinstance(day, str) else day
        if name not in WEEKDAYS:
            raise ValueError(f'unknown day "{day}": use {_join(list(WEEKDAYS), "or")}')
        if name not in out:
            out.append(name)
    return out


class EveryTrigger(Trigger):
    """Fires every ``interval`` of real time, on a grid anchored at ``start``.

    Fire times are ``anchor + k × interval`` for whole ``k``, computed in UTC so
    daylight saving never moves the grid and a restart never shifts it.
    ``start`` is the anchor: naive means local time in ``tz`` (a missing local
    time means the end of the gap, a repeated one its first occurrence); the
    default is 2000-01-01 00:00 in ``tz``.  Intervals must be at least 1s.
    """

    def __init__(self, interval: timedelta, tz: ZoneInfo, start: datetime | None = None):
        if not isinstance(interval, timedelta):
            raise ValueError(f'expected an interval such as "15m", got {interval!r}')
        if interval < _MIN_INTERVAL:
            shown = format_duration(interval) if interval > timedelta(0) else "0s"
            raise ValueError(f'invalid interval "{shown}": must be at least 1s')
        self.interval = interval
        self.zone = tz
        self.start = start
        anchor = _DEFAULT_ANCHOR if start is None else start
        if not isinstance(anchor, datetime):
            raise ValueError(f"start must be a date and time, got {anchor!r}")
        if anchor.tzinfo is None:
            found = _occurrences(anchor, tz)
            self._anchor = found[0] if found else _gap_end(anchor, tz)
        else:
            self._anchor = _to_utc(anchor, "start")

    def next_fire(self, after: datetime) -> datetime:
        """The first grid time strictly after ``after``, in :attr:`zone`."""
        elapsed = _to_utc(after, "after") - self._anchor
        return (self._anchor + (elapsed // self.interval + 1) * self.interval).astimezone(self.zone)

    def previous_fire(self, before: datetime) -> datetime:
        """The last grid time strictly before ``before``, in :attr:`zone`."""
        steps, rest = divmod(_to_utc(before, "before") - self._anchor, self.interval)
        if not rest:
            steps -= 1
        return (self._anchor + steps * self.interval).astimezone(self.zone)

    def fires(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """Every fire time in ``(after, until]``, oldest first, by arithmetic on the grid."""
        start = (_to_utc(after, "after") - self._anchor) // self.interval + 1
        end = (_to_utc(until, "until") - self._anchor) // self.interval
        anchor, interval, zone = self._anchor, self.interval, self.zone
        for step in range(start, end + 1):
            yield (anchor + step * interval).astimezone(zone)

    def count_between(self, after: datetime, until: datetime) -> int:
        """How many fire times lie in ``(after, until]``: arithmetic, however long the span.

        The scheduler counts the fire times missed during a long outage with
        it (5.7 million for ``every = "5s"`` over 11 months) without walking them.
        """
        start = _to_utc(after, "after") - self._anchor
        end = _to_utc(until, "until") - self._anchor
        if end <= start:
            return 0
        return end // self.interval - start // self.interval

    def describe(self) -> str:
        """Such as ``"every 15 minutes"`` or ``"every 2 hours from 2026-01-05 07:00 UTC"``."""
        words = "every " + _interval_words(self.interval)
        if self.start is None:
            return words
        anchor = self._anchor.astimezone(self.zone)
        return f"{words} from {anchor:%Y-%m-%d %H:%M} {self._zone_name}"

    @property
    def min_interval(self) -> timedelta:
        """The interval itself."""
        return self.interval


def _interval_words(interval: timedelta) -> str:
    seconds = interval.total_seconds()
    if seconds != int(seconds):
        return f"{seconds:g} seconds"
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = int(seconds // size)
            return unit if count == 1 else f"{count} {unit}s"
    return "second" if seconds == 1 else f"{int(seconds)} seconds"
