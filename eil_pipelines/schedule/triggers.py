"""Triggers: when a schedule fires, as pure functions of time.

A trigger answers two questions with no clock of its own: ``next_fire(after)``,
the first fire time strictly after an instant, and ``previous_fire(before)``,
the last one strictly before it.  Both take and return aware datetimes; the
results are in the trigger's zone.  The scheduler loop, catch-up and the report
period ("previous fire → this fire") are built on these two calls.

Three kinds, made by :func:`build_trigger` from a schedule's settings:

* :class:`CronTrigger`: a 5-field cron expression (names, ranges, lists, steps,
  ``L``, ``LW`` and ``#``) or an alias (``@hourly``, ``@daily``/``@midnight``,
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

The cron engine is this module's own.  The wall-clock times an expression
matches are worked out a month at a time: the month's matching days by
arithmetic on its length and the weekday of its 1st, the times of day from a
sorted list made once per trigger.  The mapping from wall clock to instants
above is applied to them.  ``tests/schedule/test_triggers_cronsim.py``
cross-checks the wall-clock times against cronsim, an independent
implementation, where no daylight saving interferes: cronsim's own zone
handling differs from these rules (with a fixed hour and a minute step,
``*/30 2 * * *``, it skips the spring-forward day entirely and fires four
times on the fall-back day).
"""

from __future__ import annotations

import calendar
from abc import ABC, abstractmethod
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, time, timedelta
from functools import cached_property, lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo

from .durations import format_duration, parse_duration
from .zones import get_zone

__all__ = [
    "ALIASES",
    "WEEKDAYS",
    "CronTrigger",
    "DailyTrigger",
    "EveryTrigger",
    "Trigger",
    "build_trigger",
    "validate_cron",
]

#: Weekday names as schedules spell them, Monday first (``date.weekday()`` order).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: The cron aliases understood, and what each stands for.
ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

_DEFAULT_ANCHOR = datetime(2000, 1, 1)
_MIN_INTERVAL = timedelta(seconds=1)
_DAY_NAMES_TITLE = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


# --------------------------------------------------------------------------- cron parsing


@dataclass(frozen=True)
class _FieldSpec:
    name: str
    lo: int
    hi: int
    names: tuple[str, ...] = ()
    names_start: int = 0
    names_hint: str = ""


_MINUTE = _FieldSpec("minute", 0, 59)
_HOUR = _FieldSpec("hour", 0, 23)
_DOM = _FieldSpec("day-of-month", 1, 31)
_MONTH = _FieldSpec(
    "month",
    1,
    12,
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    1,
    "a month name (jan-dec)",
)
_DOW = _FieldSpec(
    "day-of-week",
    0,
    7,
    ("sun", "mon", "tue", "wed", "thu", "fri", "sat"),
    0,
    "a day name (sun-sat)",
)
_SPECS = (_MINUTE, _HOUR, _DOM, _MONTH, _DOW)
_FIELD_LIST = "minute hour day-of-month month day-of-week"
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class _Problem(Exception):
    """What is wrong with a cron expression, in words, before the expression is named."""


@dataclass(frozen=True)
class _Field:
    """One parsed cron field (shared: :func:`_parse_field` caches them)."""

    values: frozenset[int]  # the plain values it matches (day-of-week 7 folded to 0)
    star: bool  # starts with "*": unrestricted for Vixie's day-of-month/day-of-week rule
    last: bool = False  # day-of-month L
    last_weekday: bool = False  # day-of-month LW
    last_dows: frozenset[int] = field(default_factory=frozenset)  # day-of-week 5L
    nth_dows: frozenset[tuple[int, int]] = field(default_factory=frozenset)  # 5#2

    @property
    def special(self) -> bool:
        return self.last or self.last_weekday or bool(self.last_dows) or bool(self.nth_dows)


@dataclass(frozen=True)
class _Cron:
    """A validated cron expression."""

    source: str
    minute: _Field
    hour: _Field
    dom: _Field
    month: _Field
    dow: _Field

    def month_days(self, year: int, month: int) -> Sequence[int]:
        """The days of ``month`` on which cron runs, ascending; ``month`` must be one it names."""
        first_dow, month_len = calendar.monthrange(year, month)
        return _days_of(self.dom, self.dow, first_dow, month_len)

    def runs_some_day(self) -> bool:
        """Whether any date matches.

        Which days of a month match depends only on its length and the weekday
        of its 1st, and every month (February with 28 and with 29 days) starts
        on each weekday again and again (at most 40 years apart), so trying
        every combination answers for all years.
        """
        for month in self.month.values:
            for month_len in (28, 29) if month == 2 else (_DAYS_IN_MONTH[month],):
                for first_dow in range(7):
                    if _days_of(self.dom, self.dow, first_dow, month_len):
                        return True
        return False


def _days_of(dom: _Field, dow: _Field, first_dow: int, month_len: int) -> Sequence[int]:
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


def _dom_days(dom: _Field, first_dow: int, month_len: int) -> set[int]:
    days = {d for d in dom.values if d <= month_len}
    if dom.last:
        days.add(month_len)
    if dom.last_weekday:
        last_dow = (first_dow + month_len - 1) % 7
        days.add(month_len - max(0, last_dow - 4))  # back from Saturday or Sunday
    return days


def _dow_days(dow: _Field, first_dow: int, month_len: int) -> set[int]:
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


def _number(spec: _FieldSpec, token: str, term: str) -> int:
    """A field value: digits, or a month or day name where the field has names."""
    if token == "":
        raise _Problem(f'{spec.name} "{term}" is missing a number')
    if token.isascii() and token.isdigit():
        value = int(token)
    elif token.lower() in spec.names:
        return spec.names.index(token.lower()) + spec.names_start
    else:
        kind = f"a number or {spec.names_hint}" if spec.names else "a number"
        raise _Problem(f'{spec.name} "{token}" is not {kind}')
    if not spec.lo <= value <= spec.hi:
        raise _Problem(f"{spec.name} {value} is out of range {spec.lo}-{spec.hi}")
    return value


def _step(spec: _FieldSpec, token: str) -> int:
    span = spec.hi - spec.lo
    if not (token.isascii() and token.isdigit()):
        raise _Problem(f'{spec.name} step "{token}" is not a number')
    step = int(token)
    if not 1 <= step <= span:
        hint = ""
        if step > span and spec in (_MINUTE, _HOUR):
            unit = "minutes" if spec is _MINUTE else "hours"
            hint = f' (for every {step} {unit}, use an "every" schedule)'
        raise _Problem(f"{spec.name} step {step} is out of range 1-{span}{hint}")
    return step


@lru_cache(maxsize=4096)
def _parse_field(spec: _FieldSpec, text: str) -> _Field:
    """One field, parsed; cached, since thousands of schedules share a few fields."""
    values: set[int] = set()
    last = last_weekday = False
    last_dows: set[int] = set()
    nth_dows: set[tuple[int, int]] = set()
    for term in text.split(","):
        low = term.lower()
        if term == "":
            raise _Problem(f'{spec.name} "{text}" has an empty item')
        if low == "?":
            raise _Problem(f'{spec.name} "?" is not supported; use *')
        if spec is _DOM and low in ("l", "lw"):
            last, last_weekday = last or low == "l", last_weekday or low == "lw"
            continue
        if spec is _DOM and low.endswith("w"):
            raise _Problem(f'{spec.name} "{term}" is not supported; use a number, a range, L or LW')
        if spec is _DOW and "#" in low:
            day_token, _, nth_token = term.partition("#")
            day = _number(spec, day_token, term) % 7
            if not (nth_token.isascii() and nth_token.isdigit()):
                raise _Problem(f'{spec.name} week number "{nth_token}" in "{term}" is not a number')
            if not 1 <= int(nth_token) <= 5:
                raise _Problem(
                    f'{spec.name} week number {int(nth_token)} in "{term}" is out of range 1-5'
                )
            nth_dows.add((day, int(nth_token)))
            continue
        if spec is _DOW and low.endswith("l") and low not in spec.names:
            if low == "l":
                raise _Problem(
                    f'{spec.name} "L" needs a day before it, such as 5L for the last Friday'
                )
            day = _number(spec, term[:-1], term) % 7
            last_dows.add(day)
            continue
        base, slash, step_token = term.partition("/")
        if spec is _DOM and slash and base.lower() in ("l", "lw"):
            raise _Problem(f'{spec.name} "{term}": {base.upper()} cannot take a step')
        step = _step(spec, step_token) if slash else 1
        if base == "*":
            first, end = spec.lo, spec.hi
        elif "-" in base:
            first_token, _, end_token = base.partition("-")
            first = _number(spec, first_token, term)
            end = _number(spec, end_token, term)
            if end < first:
                hint = f"; write {end_token}-{first_token}"
                if spec is _DOW and end == 0:
                    hint = f"; write {first_token}-7 for a range that ends on Sunday"
                raise _Problem(f"{spec.name} range {base} is reversed{hint}")
        else:
            first = _number(spec, base, term)
            # "5/15" means 5, 20, 35, 50: from the value to the end of the field.
            end = spec.hi if slash else first
        values.update(range(first, end + 1, step))
    if spec is _DOW:
        values = {v % 7 for v in values}
    return _Field(
        values=frozenset(values),
        # A leading "*" is what makes the day fields unrestricted for Vixie's
        # day-of-month/day-of-week rule.
        star=text.startswith("*"),
        last=last,
        last_weekday=last_weekday,
        last_dows=frozenset(last_dows),
        nth_dows=frozenset(nth_dows),
    )


def _join(items: Sequence[str], word: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def _parse_cron(expr: str) -> _Cron:
    """Parse and check a cron expression; raises ``ValueError`` naming what is wrong."""
    if not isinstance(expr, str):
        raise ValueError(f'expected a cron expression such as "0 7 * * 1-5", got {expr!r}')
    try:
        return _parse_cron_text(expr)
    except _Problem as problem:
        raise ValueError(f'invalid cron expression "{expr}": {problem}') from None


def _parse_cron_text(expr: str) -> _Cron:
    text = expr.strip()
    if text.startswith("@"):
        alias = text.lower()
        if alias not in ALIASES:
            known = _join(["@hourly", "@daily", "@weekly", "@monthly", "@yearly"], "or")
            raise _Problem(f'unknown alias "{text}"; use {known}')
        text = ALIASES[alias]
    parts = text.split()
    if len(parts) != 5:
        extra = " (a seconds field is not supported)" if len(parts) == 6 else ""
        raise _Problem(f"expected 5 fields ({_FIELD_LIST}), got {len(parts)}{extra}")
    cron = _Cron(
        expr, *(_parse_field(spec, part) for spec, part in zip(_SPECS, parts, strict=True))
    )

    # A day that no chosen month has, with day-of-week not widening it, never runs.
    dom = cron.dom
    if (dom.star or cron.dow.star) and not (dom.last or dom.last_weekday):
        longest = max(_DAYS_IN_MONTH[m] for m in cron.month.values)
        if min(dom.values) > longest:
            names = [calendar.month_name[m] for m in sorted(cron.month.values)]
            raise _Problem(f"day-of-month {parts[2]} never occurs in {_join(names, 'or')}")
    if not cron.runs_some_day():
        raise _Problem("it matches no date")
    return cron


def validate_cron(expr: str) -> None:
    """Check a cron expression; raise ``ValueError`` with a message fit for the user.

    The message reads ``invalid cron expression "61 * * * *": minute 61 is out of
    range 0-59``, naming the field and the value at fault.
    """
    _parse_cron(expr)


# --------------------------------------------------------------------------- wall clock


def _to_utc(moment: datetime, what: str) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {moment!r}")
    return moment.astimezone(UTC)


def _occurrences(wall: datetime, zone: ZoneInfo) -> tuple[datetime, ...]:
    """The UTC instants at which ``zone``'s clocks show ``wall``: none, one, or two."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return (first,)
    # The offsets differ by fold: either a repeated time (both real) or a skipped one.
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return (min(first, second), max(first, second))
    return ()


def _gap_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first real instant after the clocks skipped over ``wall`` (UTC)."""
    a = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    b = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    # One of the two maps the missing time with the offset before the jump (an
    # instant before it), the other with the offset after (an instant after it).
    lo, hi = int(min(a, b).timestamp()), int(max(a, b).timestamp()) + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _overlap(local: datetime) -> timedelta:
    """How far the clocks go back if ``local``'s wall time is one that repeats."""
    return max(timedelta(0), local.replace(fold=0).utcoffset() - local.replace(fold=1).utcoffset())


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


def _days_phrase(weekdays: frozenset[int]) -> str:
    """``"every day"``, ``"weekdays"``, ``"weekends"`` or ``"on Mon and Fri"``."""
    if len(weekdays) == 7:
        return "every day"
    if weekdays == frozenset(range(5)):
        return "weekdays"
    if weekdays == frozenset({5, 6}):
        return "weekends"
    return "on " + _join([_DAY_NAMES_TITLE[d] for d in sorted(weekdays)])


def _clock(moment: time) -> str:
    return moment.strftime("%H:%M:%S" if moment.second else "%H:%M")


def _min_gap(times_of_day: Sequence[int], day_gap: int, day_length: int) -> int:
    """Smallest gap between fires, given sorted times of day and the closest two days."""
    gaps = [b - a for a, b in pairwise(times_of_day)]
    gaps.append(day_gap * day_length - (times_of_day[-1] - times_of_day[0]))
    return min(gaps)


class CronTrigger(_WallClockTrigger):
    """Fires at the times a 5-field cron expression (or alias) matches, in ``tz``.

    Raises ``ValueError`` (see :func:`validate_cron`) for an invalid expression.
    Expressions whose hour field names all 24 hours follow real time through
    daylight-saving changes; the others fire once per wall-clock time (see the
    module docstring).
    """

    def __init__(self, expr: str, tz: ZoneInfo):
        self.expr = expr
        self.zone = tz
        self._cron = _parse_cron(expr)
        self._every_occurrence = len(self._cron.hour.values) == 24
        self._times = _times_of_day(self._cron.hour.values, self._cron.minute.values)

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

    def _weekdays(self) -> frozenset[int] | None:
        """The weekdays (Monday 0) it runs on, or None when days depend on the date."""
        cron = self._cron
        if cron.dom.special or cron.dow.special or cron.month.values != frozenset(range(1, 13)):
            return None
        every_weekday = frozenset(range(7))
        if cron.dom.values != frozenset(range(1, 32)):
            return None
        if cron.dow.values == every_weekday or not (cron.dom.star or cron.dow.star):
            # With both fields restricted, a day matching either runs: here all of them.
            return every_weekday
        return frozenset((d - 1) % 7 for d in cron.dow.values)

    def describe(self) -> str:
        """The schedule in words, such as ``"every 15 minutes"`` or
        ``"weekdays at 07:00 Europe/Berlin"``; ``"cron 0 7 1 * * (Europe/Berlin)"``
        for expressions without a simpler reading."""
        fallback = f"cron {self.expr.strip()} ({self._zone_name})"
        weekdays = self._weekdays()
        if weekdays is None:
            return fallback
        minutes = sorted(self._cron.minute.values)
        hours = sorted(self._cron.hour.values)
        phrase = _days_phrase(weekdays)
        on_days = "" if len(weekdays) == 7 else f" {phrase.removeprefix('on ')}"
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
                words = "every hour at " + _join([f":{m:02d}" for m in minutes])
            else:
                return fallback
            return f"{words}{on_days} ({self._zone_name})" if on_days else words
        hour_step = _step_of(hours, 24)
        if hour_step and hours[0] == 0 and len(minutes) == 1:
            return f"every {hour_step} hours at :{minutes[0]:02d}{on_days} ({self._zone_name})"
        if len(hours) * len(minutes) <= 4:
            times = [f"{h:02d}:{m:02d}" for h in hours for m in minutes]
            return f"{phrase} at {_join(times)} {self._zone_name}"
        return fallback

    @cached_property
    def min_interval(self) -> timedelta:
        """The smallest gap between two fires on the wall clock (daylight saving aside)."""
        times = sorted(h * 60 + m for h in self._cron.hour.values for m in self._cron.minute.values)
        return timedelta(minutes=_min_gap(times, self._min_day_gap(), 1440))

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


@lru_cache(maxsize=1024)
def _times_of_day(hours: frozenset[int], minutes: frozenset[int]) -> tuple[time, ...]:
    """The times of day a cron expression names, ascending (shared between triggers)."""
    return tuple(time(h, m) for h in sorted(hours) for m in sorted(minutes))


def _step_of(values: Sequence[int], size: int) -> int | None:
    """The step of ``values`` when they are 0, s, 2s … over a field of ``size`` and s divides it."""
    if len(values) < 2 or values[0] != 0:
        return None
    step = values[1]
    if size % step or values != list(range(0, size, step)):
        return None
    return step


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


# --------------------------------------------------------------------------- factory


def _parse_clock(text: str) -> time:
    parts = text.strip().split(":")
    if not (2 <= len(parts) <= 3 and all(p.isascii() and p.isdigit() for p in parts)):
        raise ValueError(f'invalid time "{text}": expected "HH:MM", such as "08:00"')
    if len(parts[0]) > 2 or any(len(p) != 2 for p in parts[1:]):
        raise ValueError(f'invalid time "{text}": expected "HH:MM", such as "08:00"')
    try:
        return time(*(int(p) for p in parts))
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
    items = [daily] if isinstance(daily, (str, time)) else list(daily)
    times = [_parse_clock(t) if isinstance(t, str) else t for t in items]
    return DailyTrigger(times, days, zone)
