"""Daylight-saving days, fire times worked out by hand.

Europe/Berlin:    2026-03-29 02:00 CET  -> 03:00 CEST (01:00 UTC); 02:00-02:59 never happens.
                  2026-10-25 03:00 CEST -> 02:00 CET  (01:00 UTC); 02:00-02:59 happens twice.
America/New_York: 2026-03-08 02:00 EST  -> 03:00 EDT  (07:00 UTC); 02:00-02:59 never happens.
                  2026-11-01 02:00 EDT  -> 01:00 EST  (06:00 UTC); 01:00-01:59 happens twice.

The rules (module docstring of triggers): a missing time runs once at the end
of the gap; a repeated time runs once, at its first occurrence; cron whose hour
field names every hour, and ``every``, follow real time.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from eil_pipelines.schedule.cron import CronTrigger
from eil_pipelines.schedule.triggers import DailyTrigger, EveryTrigger, Trigger

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
SANTIAGO = ZoneInfo("America/Santiago")


def assert_fires(trigger: Trigger, after: str, expected: list[str]) -> None:
    """next_fire from ``after`` gives ``expected``; previous_fire walks it back."""
    start = datetime.fromisoformat(after)
    got, moment = [], start
    for _ in expected:
        moment = trigger.next_fire(moment)
        got.append(moment.isoformat())
    assert got == expected
    for later, earlier in zip(reversed(expected[1:]), reversed(expected[:-1]), strict=True):
        assert trigger.previous_fire(datetime.fromisoformat(later)).isoformat() == earlier
    first_back = trigger.previous_fire(datetime.fromisoformat(expected[0]))
    assert first_back.timestamp() <= start.timestamp()


# --------------------------------------------------------------------------- spring forward

SPRING = [
    # Hourly cron follows real time: one real hour from 01:00 CET to 03:00 CEST.
    (
        "0 * * * *",
        BERLIN,
        "2026-03-29T00:30:00+01:00",
        ["2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"],
    ),
    (
        "30 * * * *",
        BERLIN,
        "2026-03-29T00:45:00+01:00",
        ["2026-03-29T01:30:00+01:00", "2026-03-29T03:30:00+02:00"],
    ),
    (
        "*/30 * * * *",
        BERLIN,
        "2026-03-29T01:15:00+01:00",
        ["2026-03-29T01:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00"],
    ),
    # A missing time runs at the end of the gap.
    (
        "30 2 * * *",
        BERLIN,
        "2026-03-28T12:00:00+01:00",
        ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"],
    ),
    (
        "0 2 * * *",
        BERLIN,
        "2026-03-28T12:00:00+01:00",
        ["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"],
    ),
    # cronsim skips this day entirely; here 02:00 and 02:30 collapse into one run.
    (
        "*/30 2 * * *",
        BERLIN,
        "2026-03-28T12:00:00+01:00",
        ["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00", "2026-03-30T02:30:00+02:00"],
    ),
    # The missing 02:00 and 02:30 and the real 03:00 are one run, then 03:30.
    (
        "0,30 2,3 * * *",
        BERLIN,
        "2026-03-29T01:00:00+01:00",
        ["2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00", "2026-03-30T02:00:00+02:00"],
    ),
    (
        "0 */2 * * *",
        BERLIN,
        "2026-03-29T00:00:00+01:00",
        ["2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"],
    ),
    (
        "0 * * * *",
        NEW_YORK,
        "2026-03-08T00:30:00-05:00",
        ["2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00"],
    ),
    (
        "30 2 * * *",
        NEW_YORK,
        "2026-03-07T12:00:00-05:00",
        ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"],
    ),
    (
        "*/30 2 * * *",
        NEW_YORK,
        "2026-03-07T12:00:00-05:00",
        ["2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"],
    ),
    # Santiago springs forward at midnight: 2026-09-06 00:00 -04 -> 01:00 -03.
    (
        "@daily",
        SANTIAGO,
        "2026-09-05T12:00:00-04:00",
        ["2026-09-06T01:00:00-03:00", "2026-09-07T00:00:00-03:00"],
    ),
]


@pytest.mark.parametrize(("expr", "zone", "after", "expected"), SPRING)
def test_cron_spring_forward(expr: str, zone: ZoneInfo, after: str, expected: list[str]) -> None:
    assert_fires(CronTrigger(expr, zone), after, expected)


# --------------------------------------------------------------------------- fall back

FALL = [
    # Hourly cron follows real time: both 02:00s run in Berlin.
    (
        "0 * * * *",
        BERLIN,
        "2026-10-25T00:30:00+02:00",
        [
            "2026-10-25T01:00:00+02:00",
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T03:00:00+01:00",
        ],
    ),
    (
        "*/30 * * * *",
        BERLIN,
        "2026-10-25T01:45:00+02:00",
        [
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T02:30:00+01:00",
            "2026-10-25T03:00:00+01:00",
        ],
    ),
    # A fixed hour runs once, in the first 02:xx.
    (
        "30 2 * * *",
        BERLIN,
        "2026-10-24T12:00:00+02:00",
        ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
    ),
    # cronsim runs this four times on the day; here only the first 02:xx hour.
    (
        "*/30 2 * * *",
        BERLIN,
        "2026-10-24T12:00:00+02:00",
        ["2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:00:00+01:00"],
    ),
    (
        "30 1-3 * * *",
        BERLIN,
        "2026-10-25T00:00:00+02:00",
        ["2026-10-25T01:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T03:30:00+01:00"],
    ),
    (
        "0 */2 * * *",
        BERLIN,
        "2026-10-25T01:00:00+02:00",
        ["2026-10-25T02:00:00+02:00", "2026-10-25T04:00:00+01:00"],
    ),
    (
        "0 * * * *",
        NEW_YORK,
        "2026-11-01T00:30:00-04:00",
        ["2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"],
    ),
    (
        "30 1 * * *",
        NEW_YORK,
        "2026-10-31T12:00:00-04:00",
        ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
    ),
    (
        "*/30 1 * * *",
        NEW_YORK,
        "2026-10-31T12:00:00-04:00",
        ["2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-02T01:00:00-05:00"],
    ),
]


@pytest.mark.parametrize(("expr", "zone", "after", "expected"), FALL)
def test_cron_fall_back(expr: str, zone: ZoneInfo, after: str, expected: list[str]) -> None:
    assert_fires(CronTrigger(expr, zone), after, expected)


@pytest.mark.parametrize(
    ("expr", "after", "next_fire", "previous_fire"),
    [
        # Asked from inside the repeated hour: the second 02:xx is later in real
        # time than the first, though the clock shows an earlier time.
        ("0 * * * *", "2026-10-25T02:30:00+02:00", "2026-10-25T02:00:00+01:00", None),
        (
            "0 * * * *",
            "2026-10-25T02:30:00+01:00",
            "2026-10-25T03:00:00+01:00",
            "2026-10-25T02:00:00+01:00",
        ),
        (None, "2026-10-25T02:00:00+01:00", None, "2026-10-25T02:00:00+02:00"),
        # A fixed hour does not run again in the second 02:xx ...
        ("30 2 * * *", "2026-10-25T02:15:00+01:00", "2026-10-26T02:30:00+01:00", None),
        # ... and its run in the first one is the previous fire from there.
        (
            "30 2 * * *",
            "2026-10-25T02:45:00+01:00",
            "2026-10-26T02:30:00+01:00",
            "2026-10-25T02:30:00+02:00",
        ),
        (
            "30 2 * * *",
            "2026-10-25T02:15:00+02:00",
            "2026-10-25T02:30:00+02:00",
            "2026-10-24T02:30:00+02:00",
        ),
    ],
)
def test_asked_from_inside_the_repeated_hour(
    expr: str | None, after: str, next_fire: str | None, previous_fire: str | None
) -> None:
    trigger = CronTrigger(expr or "0 * * * *", BERLIN)
    moment = datetime.fromisoformat(after)
    if next_fire:
        assert trigger.next_fire(moment).isoformat() == next_fire
    if previous_fire:
        assert trigger.previous_fire(moment).isoformat() == previous_fire


# --------------------------------------------------------------------------- daily


@pytest.mark.parametrize(
    ("times", "zone", "after", "expected"),
    [
        (
            [time(1, 30), time(2, 30), time(3, 30)],
            BERLIN,
            "2026-03-29T00:00:00+01:00",
            ["2026-03-29T01:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00"],
        ),
        (
            [time(2, 0), time(2, 30)],
            BERLIN,
            "2026-03-29T00:00:00+01:00",
            ["2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00"],
        ),
        (
            [time(2, 30)],
            BERLIN,
            "2026-10-24T12:00:00+02:00",
            ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
        ),
        (
            [time(2, 30)],
            NEW_YORK,
            "2026-03-07T12:00:00-05:00",
            ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"],
        ),
        (
            [time(1, 30)],
            NEW_YORK,
            "2026-10-31T12:00:00-04:00",
            ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
        ),
        (
            [time(0, 30), time(1, 30), time(2, 30)],
            NEW_YORK,
            "2026-11-01T00:00:00-04:00",
            ["2026-11-01T00:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T02:30:00-05:00"],
        ),
    ],
)
def test_daily_dst(times: list[time], zone: ZoneInfo, after: str, expected: list[str]) -> None:
    assert_fires(DailyTrigger(times, None, zone), after, expected)


def test_daily_on_a_day_list_across_spring_forward() -> None:
    # 2026-03-29 is a Sunday.
    trigger = DailyTrigger([time(2, 30)], ["sun"], BERLIN)
    assert_fires(
        trigger,
        "2026-03-23T00:00:00+01:00",
        ["2026-03-29T03:00:00+02:00", "2026-04-05T02:30:00+02:00"],
    )


# --------------------------------------------------------------------------- every


@pytest.mark.parametrize(
    ("interval", "zone", "after", "expected"),
    [
        # Every real hour through both changes.
        (
            timedelta(hours=1),
            BERLIN,
            "2026-03-29T00:30:00+01:00",
            ["2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"],
        ),
        (
            timedelta(hours=1),
            BERLIN,
            "2026-10-25T00:30:00+02:00",
            [
                "2026-10-25T01:00:00+02:00",
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T03:00:00+01:00",
            ],
        ),
        # The 90-minute grid is anchored at 2000-01-01 00:00 CET = 1999-12-31 23:00 UTC:
        # in UTC it falls on 23:00, 00:30, 02:00, 03:30 … every day.
        (
            timedelta(minutes=90),
            BERLIN,
            "2026-03-28T23:30:00+01:00",
            [
                "2026-03-29T00:00:00+01:00",
                "2026-03-29T01:30:00+01:00",
                "2026-03-29T04:00:00+02:00",
                "2026-03-29T05:30:00+02:00",
            ],
        ),
        (
            timedelta(minutes=90),
            BERLIN,
            "2026-10-25T00:30:00+02:00",
            [
                "2026-10-25T01:00:00+02:00",
                "2026-10-25T02:30:00+02:00",
                "2026-10-25T03:00:00+01:00",
                "2026-10-25T04:30:00+01:00",
            ],
        ),
        # New York: anchor 2000-01-01 00:00 EST = 05:00 UTC; grid 05:00, 06:30, 08:00 … UTC.
        (
            timedelta(minutes=90),
            NEW_YORK,
            "2026-03-08T00:30:00-05:00",
            ["2026-03-08T01:30:00-05:00", "2026-03-08T04:00:00-04:00", "2026-03-08T05:30:00-04:00"],
        ),
        (
            timedelta(minutes=90),
            NEW_YORK,
            "2026-11-01T00:30:00-04:00",
            ["2026-11-01T01:00:00-04:00", "2026-11-01T01:30:00-05:00", "2026-11-01T03:00:00-05:00"],
        ),
        (
            timedelta(minutes=30),
            NEW_YORK,
            "2026-11-01T00:50:00-04:00",
            [
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:30:00-04:00",
                "2026-11-01T01:00:00-05:00",
                "2026-11-01T01:30:00-05:00",
                "2026-11-01T02:00:00-05:00",
            ],
        ),
    ],
)
def test_every_dst(interval: timedelta, zone: ZoneInfo, after: str, expected: list[str]) -> None:
    assert_fires(EveryTrigger(interval, zone), after, expected)


@pytest.mark.parametrize(
    ("start", "anchor"),
    [
        # A missing local start means the end of the gap ...
        (datetime(2026, 3, 29, 2, 30), "2026-03-29T03:00:00+02:00"),
        # ... a repeated one its first occurrence.
        (datetime(2026, 10, 25, 2, 30), "2026-10-25T02:30:00+02:00"),
    ],
)
def test_every_start_in_a_dst_change(start: datetime, anchor: str) -> None:
    trigger = EveryTrigger(timedelta(days=1), BERLIN, start=start)
    expected = datetime.fromisoformat(anchor)
    assert trigger.next_fire(expected - timedelta(seconds=1)).isoformat() == anchor
