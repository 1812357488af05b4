"""The scheduler (not just its triggers) through daylight-saving days.

Europe/Berlin:    2026-03-29 02:00 CET  -> 03:00 CEST (01:00 UTC); 02:00-02:59 never happens.
                  2026-10-25 03:00 CEST -> 02:00 CET  (01:00 UTC); 02:00-02:59 happens twice.
America/New_York: 2026-03-08 02:00 EST  -> 03:00 EDT  (07:00 UTC); 02:00-02:59 never happens.
                  2026-11-01 02:00 EDT  -> 01:00 EST  (06:00 UTC); 01:00-01:59 happens twice.

Every schedule of a zone shares one scheduler, so their fire times meet in one
heap; a manual clock walks the local day in 5-minute steps.  The expected fire
times below were worked out by hand from the rules in the triggers' docstring:
a missing time runs once at the end of the gap, a repeated one once at its
first occurrence, and hourly cron and ``every`` follow real time.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from eil_pipelines.schedule.build import build_trigger
from eil_pipelines.schedule.loop import Firing, JobOptions, Scheduler
from eil_pipelines.schedule.testing import ManualClock

STEP = timedelta(minutes=5)

SCHEDULES = {
    "cron 30 2 * * *": {"cron": "30 2 * * *"},
    "cron */30 2 * * *": {"cron": "*/30 2 * * *"},
    "cron 0 * * * *": {"cron": "0 * * * *"},
    "daily 02:30": {"daily": "02:30"},
    "every 1h": {"every": "1h"},
    "every 30m": {"every": "30m"},
}


def times(day: str, text: str) -> list[str]:
    """ISO fire times from ``"HH:MM+HH:MM …"`` tokens (clock time and offset) on ``day``."""
    return [f"{day}T{token[:5]}:00{token[5:]}" for token in text.split()]


def drive_day(zone: str, day: date) -> dict[str, list[str]]:
    """Walk one scheduler holding every schedule across ``day`` in ``zone``.

    The clock moves in 5-minute steps from local midnight to the last step
    before the next local midnight.  Returns the fired ``scheduled_at`` of each
    schedule as ISO text; asserts each run started at its own fire time (every
    fire time here lies on a step, so a late start means the heap misordered).
    """
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time(0), tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tz)
    clock = ManualClock(start.astimezone(UTC))
    scheduler = Scheduler(clock=clock, workers=2)
    fired: dict[str, list[str]] = {name: [] for name in SCHEDULES}
    late: list[str] = []

    def job_for(name: str):
        """A job recording its fire time, and its start when that is not the fire time."""

        def job(firing: Firing) -> None:
            fired[name].append(firing.scheduled_at.isoformat())
            # Timestamps, because == across zones is always False for a repeated time.
            if clock.now().timestamp() != firing.scheduled_at.timestamp():
                late.append(f"{name} {firing.scheduled_at.isoformat()} started {clock.now()}")

        return job

    for name, settings in SCHEDULES.items():
        trigger = build_trigger(timezone=zone, **settings)
        scheduler.add(name, trigger, job_for(name), first_after=start)
    scheduler.start(loop=False)
    try:
        moment = start.astimezone(UTC) + STEP
        while moment < end:
            clock.set(moment)
            scheduler.run_due(moment)
            assert scheduler.wait_idle(60)
            moment += STEP
    finally:
        scheduler.shutdown(1)
    assert late == []
    return fired


BERLIN_SPRING = times(
    "2026-03-29",
    """
    01:00+01:00 03:00+02:00 04:00+02:00 05:00+02:00 06:00+02:00 07:00+02:00 08:00+02:00
    09:00+02:00 10:00+02:00 11:00+02:00 12:00+02:00 13:00+02:00 14:00+02:00 15:00+02:00
    16:00+02:00 17:00+02:00 18:00+02:00 19:00+02:00 20:00+02:00 21:00+02:00 22:00+02:00
    23:00+02:00
    """,
)
BERLIN_SPRING_HALF = times(
    "2026-03-29",
    """
    00:30+01:00 01:00+01:00 01:30+01:00 03:00+02:00 03:30+02:00 04:00+02:00 04:30+02:00
    05:00+02:00 05:30+02:00 06:00+02:00 06:30+02:00 07:00+02:00 07:30+02:00 08:00+02:00
    08:30+02:00 09:00+02:00 09:30+02:00 10:00+02:00 10:30+02:00 11:00+02:00 11:30+02:00
    12:00+02:00 12:30+02:00 13:00+02:00 13:30+02:00 14:00+02:00 14:30+02:00 15:00+02:00
    15:30+02:00 16:00+02:00 16:30+02:00 17:00+02:00 17:30+02:00 18:00+02:00 18:30+02:00
    19:00+02:00 19:30+02:00 20:00+02:00 20:30+02:00 21:00+02:00 21:30+02:00 22:00+02:00
    22:30+02:00 23:00+02:00 23:30+02:00
    """,
)
BERLIN_FALL = times(
    "2026-10-25",
    """
    01:00+02:00 02:00+02:00 02:00+01:00 03:00+01:00 04:00+01:00 05:00+01:00 06:00+01:00
    07:00+01:00 08:00+01:00 09:00+01:00 10:00+01:00 11:00+01:00 12:00+01:00 13:00+01:00
    14:00+01:00 15:00+01:00 16:00+01:00 17:00+01:00 18:00+01:00 19:00+01:00 20:00+01:00
    21:00+01:00 22:00+01:00 23:00+01:00
    """,
)
BERLIN_FALL_HALF = times(
    "2026-10-25",
    """
    00:30+02:00 01:00+02:00 01:30+02:00 02:00+02:00 02:30+02:00 02:00+01:00 02:30+01:00
    03:00+01:00 03:30+01:00 04:00+01:00 04:30+01:00 05:00+01:00 05:30+01:00 06:00+01:00
    06:30+01:00 07:00+01:00 07:30+01:00 08:00+01:00 08:30+01:00 09:00+01:00 09:30+01:00
    10:00+01:00 10:30+01:00 11:00+01:00 11:30+01:00 12:00+01:00 12:30+01:00 13:00+01:00
    13:30+01:00 14:00+01:00 14:30+01:00 15:00+01:00 15:30+01:00 16:00+01:00 16:30+01:00
    17:00+01:00 17:30+01:00 18:00+01:00 18:30+01:00 19:00+01:00 19:30+01:00 20:00+01:00
    20:30+01:00 21:00+01:00 21:30+01:00 22:00+01:00 22:30+01:00 23:00+01:00 23:30+01:00
    """,
)
NEW_YORK_SPRING = times(
    "2026-03-08",
    """
    01:00-05:00 03:00-04:00 04:00-04:00 05:00-04:00 06:00-04:00 07:00-04:00 08:00-04:00
    09:00-04:00 10:00-04:00 11:00-04:00 12:00-04:00 13:00-04:00 14:00-04:00 15:00-04:00
    16:00-04:00 17:00-04:00 18:00-04:00 19:00-04:00 20:00-04:00 21:00-04:00 22:00-04:00
    23:00-04:00
    """,
)
NEW_YORK_SPRING_HALF = times(
    "2026-03-08",
    """
    00:30-05:00 01:00-05:00 01:30-05:00 03:00-04:00 03:30-04:00 04:00-04:00 04:30-04:00
    05:00-04:00 05:30-04:00 06:00-04:00 06:30-04:00 07:00-04:00 07:30-04:00 08:00-04:00
    08:30-04:00 09:00-04:00 09:30-04:00 10:00-04:00 10:30-04:00 11:00-04:00 11:30-04:00
    12:00-04:00 12:30-04:00 13:00-04:00 13:30-04:00 14:00-04:00 14:30-04:00 15:00-04:00
    15:30-04:00 16:00-04:00 16:30-04:00 17:00-04:00 17:30-04:00 18:00-04:00 18:30-04:00
    19:00-04:00 19:30-04:00 20:00-04:00 20:30-04:00 21:00-04:00 21:30-04:00 22:00-04:00
    22:30-04:00 23:00-04:00 23:30-04:00
    """,
)
NEW_YORK_FALL = times(
    "2026-11-01",
    """
    01:00-04:00 01:00-05:00 02:00-05:00 03:00-05:00 04:00-05:00 05:00-05:00 06:00-05:00
    07:00-05:00 08:00-05:00 09:00-05:00 10:00-05:00 11:00-05:00 12:00-05:00 13:00-05:00
    14:00-05:00 15:00-05:00 16:00-05:00 17:00-05:00 18:00-05:00 19:00-05:00 20:00-05:00
    21:00-05:00 22:00-05:00 23:00-05:00
    """,
)
NEW_YORK_FALL_HALF = times(
    "2026-11-01",
    """
    00:30-04:00 01:00-04:00 01:30-04:00 01:00-05:00 01:30-05:00 02:00-05:00 02:30-05:00
    03:00-05:00 03:30-05:00 04:00-05:00 04:30-05:00 05:00-05:00 05:30-05:00 06:00-05:00
    06:30-05:00 07:00-05:00 07:30-05:00 08:00-05:00 08:30-05:00 09:00-05:00 09:30-05:00
    10:00-05:00 10:30-05:00 11:00-05:00 11:30-05:00 12:00-05:00 12:30-05:00 13:00-05:00
    13:30-05:00 14:00-05:00 14:30-05:00 15:00-05:00 15:30-05:00 16:00-05:00 16:30-05:00
    17:00-05:00 17:30-05:00 18:00-05:00 18:30-05:00 19:00-05:00 19:30-05:00 20:00-05:00
    20:30-05:00 21:00-05:00 21:30-05:00 22:00-05:00 22:30-05:00 23:00-05:00 23:30-05:00
    """,
)

DAYS = [
    pytest.param(
        "Europe/Berlin",
        date(2026, 3, 29),
        {
            # 02:30 never happens: one run at the end of the gap.
            "cron 30 2 * * *": ["2026-03-29T03:00:00+02:00"],
            # 02:00 and 02:30 both fall in the gap and collapse into one run.
            "cron */30 2 * * *": ["2026-03-29T03:00:00+02:00"],
            "daily 02:30": ["2026-03-29T03:00:00+02:00"],
            "cron 0 * * * *": BERLIN_SPRING,
            "every 1h": BERLIN_SPRING,
            "every 30m": BERLIN_SPRING_HALF,
        },
        id="berlin-spring",
    ),
    pytest.param(
        "Europe/Berlin",
        date(2026, 10, 25),
        {
            # 02:30 happens twice: only the first (summer time) runs.
            "cron 30 2 * * *": ["2026-10-25T02:30:00+02:00"],
            "cron */30 2 * * *": ["2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00"],
            "daily 02:30": ["2026-10-25T02:30:00+02:00"],
            # Hourly follows real time: both 02:00s.
            "cron 0 * * * *": BERLIN_FALL,
            "every 1h": BERLIN_FALL,
            "every 30m": BERLIN_FALL_HALF,
        },
        id="berlin-fall",
    ),
    pytest.param(
        "America/New_York",
        date(2026, 3, 8),
        {
            "cron 30 2 * * *": ["2026-03-08T03:00:00-04:00"],
            "cron */30 2 * * *": ["2026-03-08T03:00:00-04:00"],
            "daily 02:30": ["2026-03-08T03:00:00-04:00"],
            "cron 0 * * * *": NEW_YORK_SPRING,
            "every 1h": NEW_YORK_SPRING,
            "every 30m": NEW_YORK_SPRING_HALF,
        },
        id="new-york-spring",
    ),
    pytest.param(
        "America/New_York",
        date(2026, 11, 1),
        {
            # New York repeats 01:00-01:59, so 02:xx happens once, in standard time.
            "cron 30 2 * * *": ["2026-11-01T02:30:00-05:00"],
            "cron */30 2 * * *": ["2026-11-01T02:00:00-05:00", "2026-11-01T02:30:00-05:00"],
            "daily 02:30": ["2026-11-01T02:30:00-05:00"],
            "cron 0 * * * *": NEW_YORK_FALL,
            "every 1h": NEW_YORK_FALL,
            "every 30m": NEW_YORK_FALL_HALF,
        },
        id="new-york-fall",
    ),
]


def test_expected_lists_have_one_fire_per_real_hour() -> None:
    """The hand-written lists themselves: 23-hour days and 25-hour days, midnights excluded."""
    counts = [len(x) for x in (BERLIN_SPRING, BERLIN_FALL, NEW_YORK_SPRING, NEW_YORK_FALL)]
    assert counts == [22, 24, 22, 24]
    halves = (BERLIN_SPRING_HALF, BERLIN_FALL_HALF, NEW_YORK_SPRING_HALF, NEW_YORK_FALL_HALF)
    assert [len(x) for x in halves] == [45, 49, 45, 49]
    for hourly in (BERLIN_SPRING, BERLIN_FALL, NEW_YORK_SPRING, NEW_YORK_FALL):
        instants = [datetime.fromisoformat(t).timestamp() for t in hourly]
        assert {b - a for a, b in pairwise(instants)} == {3600.0}
    for half_hourly in halves:
        instants = [datetime.fromisoformat(t).timestamp() for t in half_hourly]
        assert {b - a for a, b in pairwise(instants)} == {1800.0}


@pytest.mark.parametrize(("zone", "day", "expected"), DAYS)
def test_a_dst_day(zone: str, day: date, expected: dict[str, list[str]]) -> None:
    fired = drive_day(zone, day)
    for name in SCHEDULES:
        assert fired[name] == expected[name], name


# --------------------------------------------------------------------------- catch-up over a fall-back


BERLIN = ZoneInfo("Europe/Berlin")


def berlin(text: str) -> datetime:
    """An aware instant from ISO text with its offset (the offset picks the occurrence)."""
    return datetime.fromisoformat(text).astimezone(UTC)


def test_catch_up_all_over_the_repeated_hour_runs_in_real_order() -> None:
    clock = ManualClock(berlin("2026-10-25T04:10:00+01:00"))
    scheduler = Scheduler(clock=clock)
    scheduler.start(loop=False)
    ran: list[str] = []
    try:
        scheduler.add(
            "hourly",
            build_trigger(cron="0 * * * *", timezone="Europe/Berlin"),
            lambda firing: ran.append(firing.scheduled_at.isoformat()),
            options=JobOptions(catch_up="all"),
            first_after=berlin("2026-10-25T00:30:00+02:00"),
        )
        scheduler.run_due(clock.now())
        assert scheduler.wait_idle(60)
    finally:
        scheduler.shutdown(1)
    assert ran == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
        "2026-10-25T04:00:00+01:00",
    ]


def test_catch_up_none_reports_both_occurrences_of_a_repeated_time() -> None:
    # 30 seconds after the second 02:00: that one is on time, the rest were missed.
    clock = ManualClock(berlin("2026-10-25T02:00:30+01:00"))
    scheduler = Scheduler(clock=clock)
    scheduler.start(loop=False)
    ran: list[str] = []
    skipped: list[str] = []
    try:
        scheduler.add(
            "hourly",
            build_trigger(cron="0 * * * *", timezone="Europe/Berlin"),
            lambda firing: ran.append(firing.scheduled_at.isoformat()),
            options=JobOptions(catch_up="none"),
            first_after=berlin("2026-10-25T00:30:00+02:00"),
            on_skip=lambda firing, reason: skipped.append(firing.scheduled_at.isoformat()),
        )
        scheduler.run_due(clock.now())
        assert scheduler.wait_idle(60)
    finally:
        scheduler.shutdown(1)
    assert ran == ["2026-10-25T02:00:00+01:00"]
    # 02:00+02:00 reads the same on the clock as the one that ran, but is another instant.
    assert skipped == ["2026-10-25T01:00:00+02:00", "2026-10-25T02:00:00+02:00"]


def test_jitter_counts_real_time_across_the_fall_back() -> None:
    fire = berlin("2026-10-25T02:30:00+02:00")
    clock = ManualClock(berlin("2026-10-25T00:00:00+02:00"))
    scheduler = Scheduler(clock=clock, rng=random.Random(0))
    scheduler.start(loop=False)
    ran: list[Firing] = []
    try:
        scheduler.add(
            "daily",
            build_trigger(daily="02:30", timezone="Europe/Berlin"),
            ran.append,
            options=JobOptions(jitter=timedelta(hours=1)),
        )
        delay = timedelta(seconds=random.Random(0).uniform(0, 3600))
        # Long enough to cross 03:00 summer time, where the clocks go back.
        assert delay > timedelta(minutes=30)
        clock.set(fire)
        assert scheduler.run_due(fire) == 0
        assert scheduler.next_wakeup() == fire + delay
        clock.set(fire + delay)
        assert scheduler.run_due(fire + delay) == 1
        assert scheduler.wait_idle(60)
    finally:
        scheduler.shutdown(1)
    (firing,) = ran
    assert firing.scheduled_at.isoformat() == "2026-10-25T02:30:00+02:00"
    assert firing.due_at is not None
    assert firing.due_at.timestamp() - fire.timestamp() == pytest.approx(delay.total_seconds())
