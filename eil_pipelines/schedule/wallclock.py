"""Wall clock to instants: the daylight-saving arithmetic every trigger shares.

A wall-clock time in a zone occurs once, twice (the clocks go back over it) or
not at all (they jump over it).  These helpers find the instants of a wall
time, where a gap ends, and how far the clocks go back; the rules built on
them are in :mod:`eil_pipelines.schedule.triggers`.  All instants are in UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

__all__ = ["gap_end", "min_gap", "occurrences", "overlap", "to_utc"]


def to_utc(moment: datetime, what: str) -> datetime:
    """``moment`` in UTC; raises ``ValueError`` naming ``what`` when it is not aware."""
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {moment!r}")
    return moment.astimezone(UTC)


def occurrences(wall: datetime, zone: ZoneInfo) -> tuple[datetime, ...]:
    """The UTC instants at which ``zone``'s clocks show ``wall``: none, one, or two."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return (first,)
    # The offsets differ by fold: either a repeated time (both real) or a skipped one.
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return (min(first, second), max(first, second))
    return ()


def gap_end(wall: datetime, zone: ZoneInfo) -> datetime:
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


def overlap(local: datetime) -> timedelta:
    """How far the clocks go back if ``local``'s wall time is one that repeats."""
    first, second = local.replace(fold=0).utcoffset(), local.replace(fold=1).utcoffset()
    if first is None or second is None:  # naive: no clocks to go back
        return timedelta(0)
    return max(timedelta(0), first - second)


def min_gap(times_of_day: Sequence[int], day_gap: int, day_length: int) -> int:
    """Smallest gap between fires, given sorted times of day and the closest two days.

    Times and ``day_length`` share a unit (minutes or seconds); ``day_gap`` is
    in days.  Daylight saving is not counted: this is the wall clock's gap.
    """
    gaps = [b - a for a, b in pairwise(times_of_day)]
    gaps.append(day_gap * day_length - (times_of_day[-1] - times_of_day[0]))
    return min(gaps)
