"""Business calendars on triggers: holidays skipped, moved (merging), and Nth business days.

Each trigger is checked against a brute-force reading of the rules: list the
base schedule's fire times over a window, apply the calendar day by day, and
compare with the trigger's ``next_fire`` / ``previous_fire`` chains inside it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eil_pipelines.schedule.build import build_trigger
from eil_pipelines.schedule.calendar import (
    BusinessCalendar,
    BusinessDayTrigger,
    CalendarTrigger,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def calendar_of(days: dict[date, str], **kwargs) -> BusinessCalendar:
    kwargs.setdefault("name", "test")
    return BusinessCalendar(days.get, **kwargs)


def chain_forward(trigger, start: datetime, end: datetime) -> list[datetime]:
    out, moment = [], trigger.next_fire(start)
    while moment < end:
        out.append(moment)
        moment = trigger.next_fire(moment)
    return out


def chain_backward(trigger, end: datetime, start: datetime) -> list[datetime]:
    out, moment = [], trigger.previous_fire(end)
    while moment > start:
        out.append(moment)
        moment = trigger.previous_fire(moment)
    return sorted(out)


def expected(base, calendar: BusinessCalendar, roll: str, start: datetime, end: datetime):
    """The rules, read naively: every base fire in a wide window, mapped one by one."""
    wide_start, wide_end = start - timedelta(days=40), end + timedelta(days=40)
    fires = list(base.fires(wide_start, wide_end))
    own_days = {f.date() for f in fires if calendar.holiday(f.date()) is None}
    result = set()
    for fire in fires:
        if calendar.holiday(fire.date()) is None:
            result.add(fire)
        elif roll != "skip":
            target = calendar.business_day(fire.date(), 1 if roll == "next" else -1)
            if target not in own_days:
                wall = datetime.combine(target, fire.replace(tzinfo=None).time())
                result.add(wall.replace(tzinfo=fire.tzinfo))
    return sorted(m for m in result if start < m < end)


CRONS = ["0 7 * * MON-FRI", "0 7 * * *", "30 6,18 * * *", "0 7 1 * *", "0 9 * * MON", "0 7 1,2 * *"]


@settings(max_examples=60, deadline=None)
@given(
    cron=st.sampled_from(CRONS),
    roll=st.sampled_from(["skip", "next", "previous"]),
    holidays=st.sets(st.integers(0, 119), max_size=30),
    weekend=st.sampled_from([frozenset({5, 6}), frozenset({4, 5}), frozenset()]),
)
def test_triggers_follow_the_rules_read_day_by_day(cron, roll, holidays, weekend):
    origin = date(2026, 3, 1)
    days = {origin + timedelta(days=i): f"holiday {i}" for i in holidays}
    calendar = calendar_of(days, weekend=weekend)
    base = build_trigger(cron=cron, timezone="Europe/Berlin")
    trigger = CalendarTrigger(base, calendar, roll)
    start = datetime(2026, 3, 20, tzinfo=BERLIN)
    end = datetime(2026, 6, 10, tzinfo=BERLIN)
    want = expected(base, calendar, roll, start, end)
    assert chain_forward(trigger, start, end) == want
    assert chain_backward(trigger, end, start) == want


def test_skip_drops_the_holiday_and_the_next_period_spans_it():
    # Tag der Deutschen Einheit, Saturday 2026-10-03, is no weekday; use Easter Monday 2026-04-06.
    calendar = calendar_of({date(2026, 4, 6): "Ostermontag", date(2026, 4, 3): "Karfreitag"})
    base = build_trigger(cron="0 7 * * MON-FRI", timezone="Europe/Berlin")
    trigger = CalendarTrigger(base, calendar, "skip")
    thursday = datetime(2026, 4, 2, 7, tzinfo=BERLIN)
    tuesday = datetime(2026, 4, 7, 7, tzinfo=BERLIN)
    assert trigger.next_fire(thursday) == tuesday
    assert (
        trigger.previous_fire(tuesday) == thursday
    )  # the period spans Good Friday to Easter Monday
    changes = trigger.changes_between(thursday, tuesday)
    assert [(c.original.day, c.reason()) for c in changes] == [
        (3, "holiday: Karfreitag"),
        (6, "holiday: Ostermontag"),
    ]


def test_next_moves_a_monthly_report_and_merges_a_daily_one():
    calendar = calendar_of({date(2026, 6, 1): "Company day"})  # a Monday
    monthly = CalendarTrigger(build_trigger(cron="0 7 1 * *", timezone="UTC"), calendar, "next")
    moved = monthly.next_fire(datetime(2026, 5, 15, tzinfo=ZoneInfo("UTC")))
    assert moved == datetime(2026, 6, 2, 7, tzinfo=ZoneInfo("UTC"))
    (change,) = monthly.changes_between(datetime(2026, 5, 15, tzinfo=ZoneInfo("UTC")), moved)
    assert change.moved_to == moved and not change.merged
    assert change.reason() == "holiday: Company day; moved to 2026-06-02 07:00"

    daily = CalendarTrigger(build_trigger(cron="0 7 * * MON-FRI", timezone="UTC"), calendar, "next")
    friday = datetime(2026, 5, 29, 7, tzinfo=ZoneInfo("UTC"))
    assert daily.next_fire(friday) == datetime(2026, 6, 2, 7, tzinfo=ZoneInfo("UTC"))  # once
    (merged,) = daily.changes_between(friday, datetime(2026, 6, 2, 8, tzinfo=ZoneInfo("UTC")))
    assert merged.merged and merged.moved_to is None
    assert merged.reason() == "holiday: Company day; the next report covers it"


def test_previous_moves_back_over_a_weekend():
    calendar = calendar_of({date(2026, 6, 1): "Company day"})
    monthly = CalendarTrigger(build_trigger(cron="0 7 1 * *", timezone="UTC"), calendar, "previous")
    assert monthly.next_fire(datetime(2026, 5, 15, tzinfo=ZoneInfo("UTC"))) == datetime(
        2026, 5, 29, 7, tzinfo=ZoneInfo("UTC")
    )


def test_extra_business_days_and_custom_weekends():
    saturday = date(2026, 6, 6)
    calendar = calendar_of(
        {date(2026, 6, 5): "Shutdown"}, extra_business_days=frozenset({saturday})
    )
    trigger = CalendarTrigger(
        build_trigger(cron="0 7 * * MON-FRI", timezone="UTC"), calendar, "next"
    )
    assert calendar.is_business_day(saturday)
    thursday = datetime(2026, 6, 4, 7, tzinfo=ZoneInfo("UTC"))
    assert trigger.next_fire(thursday) == datetime(2026, 6, 6, 7, tzinfo=ZoneInfo("UTC"))


def test_moved_times_keep_the_daylight_saving_rules():
    # 2026-03-29 02:30 does not exist in Berlin; a holiday moved there runs at 03:00.
    calendar = calendar_of({date(2026, 3, 28): "Made-up holiday"}, weekend=frozenset())
    trigger = CalendarTrigger(
        build_trigger(cron="30 2 28 * *", timezone="Europe/Berlin"), calendar, "next"
    )
    moved = trigger.next_fire(datetime(2026, 3, 20, tzinfo=BERLIN))
    assert moved == datetime(2026, 3, 29, 3, 0, tzinfo=BERLIN)
    assert moved.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize(
    ("n", "month", "want"),
    [
        (1, 1, date(2027, 1, 4)),  # New Year's Day a Friday, then the weekend
        (2, 1, date(2027, 1, 5)),
        (-1, 12, date(2026, 12, 30)),  # 31 Dec is a holiday here; the 30th is a Wednesday
        (-2, 12, date(2026, 12, 29)),
    ],
)
def test_nth_business_day_across_the_year_end(n, month, want):
    calendar = calendar_of({date(2027, 1, 1): "New Year", date(2026, 12, 31): "New Year's Eve"})
    trigger = BusinessDayTrigger(
        build_trigger(daily="07:00", timezone="Europe/Berlin"), calendar, n
    )
    start = datetime(2026 if month == 12 else 2027, month, 1, tzinfo=BERLIN)
    fire = trigger.next_fire(start)
    assert fire == datetime.combine(want, time(7), tzinfo=BERLIN)
    assert trigger.previous_fire(fire + timedelta(minutes=1)) == fire


def test_business_day_chains_are_consistent_and_describe_themselves():
    calendar = calendar_of({}, name="DE-BE")
    trigger = BusinessDayTrigger(build_trigger(cron="0 7 * * *", timezone="UTC"), calendar, -1)
    fires = chain_forward(
        trigger,
        datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC")),
        datetime(2027, 1, 1, tzinfo=ZoneInfo("UTC")),
    )
    assert len(fires) == 12
    assert all(f.weekday() < 5 for f in fires)
    assert all(
        (f + timedelta(days=1)).month != f.month or (f + timedelta(days=1)).weekday() >= 5
        for f in fires
    )
    assert trigger.describe() == "the last business day of the month at 07:00 UTC (DE-BE)"
    assert trigger.min_interval == timedelta(days=7)


@pytest.mark.parametrize("bad", [0, 24, -24])
def test_business_day_bounds(bad):
    with pytest.raises(ValueError, match="business_day"):
        BusinessDayTrigger(build_trigger(daily="07:00", timezone="UTC"), calendar_of({}), bad)


def test_calendars_refuse_interval_schedules_and_unknown_rolls():
    every = build_trigger(every="1h", timezone="UTC")
    with pytest.raises(ValueError, match='"cron" or "daily"'):
        CalendarTrigger(every, calendar_of({}))
    with pytest.raises(ValueError, match="roll must be one of"):
        CalendarTrigger(build_trigger(daily="07:00", timezone="UTC"), calendar_of({}), "sideways")  # type: ignore[arg-type]


def test_a_calendar_closed_for_a_year_is_an_error_not_a_hang():
    calendar = BusinessCalendar(lambda day: "closed", name="never")
    trigger = CalendarTrigger(build_trigger(daily="07:00", timezone="UTC"), calendar, "next")
    with pytest.raises(ValueError, match="no business day within a year"):
        trigger.next_fire(datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC")))


def test_describe_names_the_calendar():
    calendar = calendar_of({}, name="US")
    base = build_trigger(cron="0 7 * * MON-FRI", timezone="America/New_York")
    assert CalendarTrigger(base, calendar, "skip").describe() == (
        f"{base.describe()}, not on US holidays"
    )
    assert (
        "moved to the next business day on US holidays"
        in CalendarTrigger(base, calendar, "next").describe()
    )
