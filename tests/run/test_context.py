"""The run context: periods, built-in parameters and stamps derive from the scheduled time alone."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from eil_pipelines.run.context import period_bounds, stamp_for

BERLIN = ZoneInfo("Europe/Berlin")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("kind", "at", "expected"),
    [
        (
            "day",
            local(2026, 11, 28, 7),
            (local(2026, 11, 27), local(2026, 11, 28), local(2026, 11, 26), local(2026, 11, 27)),
        ),
        # Monday 2026-11-30: the previous ISO week is Mon 23 - Mon 30.
        (
            "week",
            local(2026, 11, 30, 8),
            (local(2026, 11, 23), local(2026, 11, 30), local(2026, 11, 16), local(2026, 11, 23)),
        ),
        # A Saturday still reports the previous full week.
        (
            "week",
            local(2026, 11, 28, 8),
            (local(2026, 11, 16), local(2026, 11, 23), local(2026, 11, 9), local(2026, 11, 16)),
        ),
        (
            "month",
            local(2026, 3, 1, 6),
            (local(2026, 2, 1), local(2026, 3, 1), local(2026, 1, 1), local(2026, 2, 1)),
        ),
        (
            "month",
            local(2026, 1, 15),
            (local(2025, 12, 1), local(2026, 1, 1), local(2025, 11, 1), local(2025, 12, 1)),
        ),
    ],
)
def test_calendar_periods(kind, at, expected):
    assert period_bounds(kind, at, BERLIN, None) == expected


def test_day_period_across_spring_forward_is_23_hours():
    start, end, _, _ = period_bounds("day", local(2026, 3, 30, 7), BERLIN, None)
    assert (start, end) == (local(2026, 3, 29), local(2026, 3, 30))
    assert end.astimezone(ZoneInfo("UTC")) - start.astimezone(ZoneInfo("UTC")) == timedelta(
        hours=23
    )


def test_interval_without_schedule_is_previous_24_hours():
    at = local(2026, 11, 28, 10, 37)
    assert period_bounds("interval", at, BERLIN, None) == (
        local(2026, 11, 27, 10, 37),
        at,
        local(2026, 11, 26, 10, 37),
        local(2026, 11, 27, 10, 37),
    )


class HourlyTrigger:
    """A stand-in trigger with fires on every whole hour (previous_fire is all period_bounds uses)."""

    min_interval = timedelta(hours=1)

    def previous_fire(self, before: datetime) -> datetime:
        floor = before.replace(minute=0, second=0, microsecond=0)
        return floor if floor < before else floor - timedelta(hours=1)


def test_interval_period_runs_from_previous_fire():
    at = local(2026, 11, 28, 10)
    assert period_bounds("interval", at, BERLIN, HourlyTrigger()) == (
        local(2026, 11, 28, 9),
        at,
        local(2026, 11, 28, 8),
        local(2026, 11, 28, 9),
    )


@pytest.mark.parametrize(
    ("interval", "stamp"),
    [
        (None, "2026-11-28"),
        (timedelta(days=7), "2026-11-28"),
        (timedelta(days=1), "2026-11-28"),
        (timedelta(hours=1), "2026-11-28T1005"),
        (timedelta(minutes=1), "2026-11-28T1005"),
        (timedelta(seconds=30), "2026-11-28T100507"),
    ],
)
def test_stamp_granularity(interval, stamp):
    assert stamp_for(local(2026, 11, 28, 10, 5, 7), interval) == stamp
