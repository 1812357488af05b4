"""Triggers away from daylight saving: each kind, describe(), min_interval, the factory."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from eil_pipelines.schedule.build import build_trigger
from eil_pipelines.schedule.cron import ALIASES, CronTrigger
from eil_pipelines.schedule.triggers import DailyTrigger, EveryTrigger, Trigger

UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str) -> datetime:
    """An aware datetime from ISO text with an offset."""
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None
    return moment


def chain(trigger: Trigger, after: str, count: int) -> list[str]:
    """``count`` successive fire times after ``after``, as ISO text."""
    out, moment = [], at(after)
    for _ in range(count):
        moment = trigger.next_fire(moment)
        out.append(moment.isoformat())
    return out


# --------------------------------------------------------------------------- cron


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        (
            "*/15 * * * *",
            "2026-06-05T10:07:00+00:00",
            ["2026-06-05T10:15:00+00:00", "2026-06-05T10:30:00+00:00"],
        ),
        (
            "0 7 * * 1-5",
            "2026-06-05T08:00:00+00:00",  # a Friday, after 07:00
            ["2026-06-08T07:00:00+00:00", "2026-06-09T07:00:00+00:00"],
        ),
        (
            "0 7 * * MON-fri",
            "2026-06-05T06:59:59+00:00",
            ["2026-06-05T07:00:00+00:00", "2026-06-08T07:00:00+00:00"],
        ),
        (
            "30 8 * JUN,jul sat",
            "2026-01-01T00:00:00+00:00",
            ["2026-06-06T08:30:00+00:00", "2026-06-13T08:30:00+00:00"],
        ),
        (
            "0 0 L * *",
            "2026-02-01T00:00:00+00:00",
            ["2026-02-28T00:00:00+00:00", "2026-03-31T00:00:00+00:00"],
        ),
        (
            "0 0 LW * *",  # May 31 2026 is a Sunday
            "2026-05-01T00:00:00+00:00",
            ["2026-05-29T00:00:00+00:00", "2026-06-30T00:00:00+00:00"],
        ),
        (
            "0 0 * * 5L",
            "2026-01-01T00:00:00+00:00",
            ["2026-01-30T00:00:00+00:00", "2026-02-27T00:00:00+00:00"],
        ),
        (
            "0 9 * * fri#2",
            "2026-01-01T00:00:00+00:00",
            ["2026-01-09T09:00:00+00:00", "2026-02-13T09:00:00+00:00"],
        ),
        (
            "0 0 * 2 sun#5",
            "2026-01-01T00:00:00+00:00",
            ["2032-02-29T00:00:00+00:00"],
        ),
        (
            "0 0 29 2 *",
            "2026-01-01T00:00:00+00:00",
            ["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"],
        ),
        (
            # Both day fields restricted: the 13th OR any Friday (Vixie cron).
            "0 0 13 * 5",
            "2026-01-01T00:00:00+00:00",
            [
                "2026-01-02T00:00:00+00:00",
                "2026-01-09T00:00:00+00:00",
                "2026-01-13T00:00:00+00:00",
                "2026-01-16T00:00:00+00:00",
            ],
        ),
        (
            # Day-of-month starts with "*": odd days AND Fridays.
            "0 0 */2 * 5",
            "2026-01-01T00:00:00+00:00",
            ["2026-01-09T00:00:00+00:00", "2026-01-23T00:00:00+00:00"],
        ),
        (
            "5/20 9 * * *",
            "2026-06-05T00:00:00+00:00",
            ["2026-06-05T09:05:00+00:00", "2026-06-05T09:25:00+00:00", "2026-06-05T09:45:00+00:00"],
        ),
    ],
)
def test_cron_next_fire(expr: str, after: str, expected: list[str]) -> None:
    trigger = CronTrigger(expr, UTC)
    assert chain(trigger, after, len(expected)) == expected
    # Walking back from the last one retraces the chain.
    moment = at(expected[-1])
    for earlier in reversed(expected[:-1]):
        moment = trigger.previous_fire(moment)
        assert moment.isoformat() == earlier


def test_cron_reads_the_wall_clock_of_its_zone() -> None:
    trigger = CronTrigger("0 7 * * *", BERLIN)
    # 07:00 in Berlin summer is 05:00 UTC, so 06:00 UTC is past today's run.
    assert chain(trigger, "2026-06-05T06:00:00+00:00", 1) == ["2026-06-06T07:00:00+02:00"]
    assert chain(trigger, "2026-01-05T06:00:00+00:00", 1) == ["2026-01-06T07:00:00+01:00"]


@pytest.mark.parametrize("sunday", ["0", "7", "sun", "SUN"])
def test_cron_sunday_is_0_and_7(sunday: str) -> None:
    trigger = CronTrigger(f"0 0 * * {sunday}", UTC)
    # 2026-01-04 and 2026-01-11 are Sundays.
    assert chain(trigger, "2026-01-01T00:00:00+00:00", 2) == [
        "2026-01-04T00:00:00+00:00",
        "2026-01-11T00:00:00+00:00",
    ]


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_cron_aliases_match_their_expansion(alias: str) -> None:
    aliased = CronTrigger(alias, BERLIN)
    spelled = CronTrigger(ALIASES[alias], BERLIN)
    assert chain(aliased, "2026-02-10T13:17:00+01:00", 3) == chain(
        spelled, "2026-02-10T13:17:00+01:00", 3
    )


def test_cron_aliases_expand_as_in_crontab() -> None:
    assert ALIASES == {
        "@hourly": "0 * * * *",
        "@daily": "0 0 * * *",
        "@midnight": "0 0 * * *",
        "@weekly": "0 0 * * 0",
        "@monthly": "0 0 1 * *",
        "@yearly": "0 0 1 1 *",
        "@annually": "0 0 1 1 *",
    }


def test_next_fire_is_strictly_after_and_previous_strictly_before() -> None:
    trigger = CronTrigger("*/15 * * * *", UTC)
    assert trigger.next_fire(at("2026-06-05T10:15:00+00:00")).isoformat() == (
        "2026-06-05T10:30:00+00:00"
    )
    assert trigger.previous_fire(at("2026-06-05T10:15:00+00:00")).isoformat() == (
        "2026-06-05T10:00:00+00:00"
    )
    # Sub-second parts count: 10:15:00.5 is after the 10:15 fire.
    assert trigger.next_fire(at("2026-06-05T10:14:59.999999+00:00")).isoformat() == (
        "2026-06-05T10:15:00+00:00"
    )
    assert trigger.previous_fire(at("2026-06-05T10:15:00.500000+00:00")).isoformat() == (
        "2026-06-05T10:15:00+00:00"
    )


def test_results_are_in_the_trigger_zone_whatever_zone_is_asked() -> None:
    trigger = CronTrigger("0 7 * * *", BERLIN)
    fire = trigger.next_fire(at("2026-06-05T12:00:00+09:00"))  # 05:00 Berlin
    assert fire.tzinfo is BERLIN
    assert fire.isoformat() == "2026-06-05T07:00:00+02:00"
    assert trigger.previous_fire(fire).tzinfo is BERLIN


def test_naive_datetimes_are_refused() -> None:
    trigger = CronTrigger("0 7 * * *", UTC)
    with pytest.raises(ValueError, match=r"^after must be a timezone-aware datetime"):
        trigger.next_fire(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match=r"^before must be a timezone-aware datetime"):
        trigger.previous_fire(datetime(2026, 1, 1))


def test_cron_trigger_refuses_bad_expression() -> None:
    with pytest.raises(ValueError) as caught:
        CronTrigger("0 7 * *", UTC)
    assert str(caught.value) == (
        'invalid cron expression "0 7 * *": expected 5 fields '
        "(minute hour day-of-month month day-of-week), got 4"
    )


def test_fires_lists_a_window() -> None:
    trigger = CronTrigger("0 */6 * * *", UTC)
    fires = trigger.fires(at("2026-06-05T00:00:00+00:00"), at("2026-06-05T18:00:00+00:00"))
    assert [f.isoformat() for f in fires] == [
        "2026-06-05T06:00:00+00:00",
        "2026-06-05T12:00:00+00:00",
        "2026-06-05T18:00:00+00:00",
    ]


@pytest.mark.parametrize(
    ("expr", "zone", "words"),
    [
        ("* * * * *", UTC, "every minute"),
        ("*/15 * * * *", BERLIN, "every 15 minutes"),
        ("0,30 * * * *", BERLIN, "every 30 minutes"),
        ("0 * * * *", BERLIN, "every hour"),
        ("@hourly", BERLIN, "every hour"),
        ("5 * * * *", BERLIN, "every hour at :05"),
        ("15,45 * * * *", BERLIN, "every hour at :15 and :45"),
        ("*/15 * * * 1-5", BERLIN, "every 15 minutes on weekdays (Europe/Berlin)"),
        ("0 */2 * * *", BERLIN, "every 2 hours at :00 (Europe/Berlin)"),
        ("0 7 * * *", UTC, "every day at 07:00 UTC"),
        ("@daily", BERLIN, "every day at 00:00 Europe/Berlin"),
        ("0 7 * * 1-5", BERLIN, "weekdays at 07:00 Europe/Berlin"),
        ("0 7 * * mon-fri", BERLIN, "weekdays at 07:00 Europe/Berlin"),
        ("0 10 * * sat,sun", UTC, "weekends at 10:00 UTC"),
        ("0 8 * * 1,5", BERLIN, "on Mon and Fri at 08:00 Europe/Berlin"),
        ("0 8 * * 0,3,5", BERLIN, "on Wed, Fri and Sun at 08:00 Europe/Berlin"),
        ("@weekly", UTC, "on Sun at 00:00 UTC"),
        ("0,30 8,17 * * *", UTC, "every day at 08:00, 08:30, 17:00 and 17:30 UTC"),
        ("30 8,17 * * *", UTC, "every day at 08:30 and 17:30 UTC"),
        # Both day fields restricted and the day-of-month is every day: runs daily.
        ("0 0 1-31 * 1", UTC, "every day at 00:00 UTC"),
        ("0 7 1 * *", BERLIN, "cron 0 7 1 * * (Europe/Berlin)"),
        ("@monthly", BERLIN, "cron @monthly (Europe/Berlin)"),
        ("0 9-17 * * *", UTC, "cron 0 9-17 * * * (UTC)"),
        ("*/7 * * * *", UTC, "cron */7 * * * * (UTC)"),
        ("0 0 * * 5L", UTC, "cron 0 0 * * 5L (UTC)"),
        ("0 0 * 1 *", UTC, "cron 0 0 * 1 * (UTC)"),
    ],
)
def test_cron_describe(expr: str, zone: ZoneInfo, words: str) -> None:
    assert CronTrigger(expr, zone).describe() == words


@pytest.mark.parametrize(
    ("expr", "gap"),
    [
        ("* * * * *", timedelta(minutes=1)),
        ("*/15 * * * *", timedelta(minutes=15)),
        ("15,45 * * * *", timedelta(minutes=30)),
        ("0 * * * *", timedelta(hours=1)),
        ("0 8,17 * * *", timedelta(hours=9)),
        ("0 1,23 * * *", timedelta(hours=2)),  # 23:00 to 01:00 the next day
        ("0 7 * * *", timedelta(days=1)),
        ("0 7 * * 1-5", timedelta(days=1)),
        ("0 8 * * 1,5", timedelta(days=3)),
        ("@weekly", timedelta(days=7)),
        ("@monthly", timedelta(days=28)),
        ("0 0 L * *", timedelta(days=28)),
        ("@yearly", timedelta(days=365)),
        ("0 0 29 2 *", timedelta(days=1461)),
    ],
)
def test_cron_min_interval(expr: str, gap: timedelta) -> None:
    assert CronTrigger(expr, UTC).min_interval == gap


# --------------------------------------------------------------------------- daily


def test_daily_every_day() -> None:
    trigger = DailyTrigger([time(17, 30), time(8, 0)], None, UTC)
    assert chain(trigger, "2026-06-05T12:00:00+00:00", 3) == [
        "2026-06-05T17:30:00+00:00",
        "2026-06-06T08:00:00+00:00",
        "2026-06-06T17:30:00+00:00",
    ]
    assert trigger.previous_fire(at("2026-06-06T08:00:00+00:00")).isoformat() == (
        "2026-06-05T17:30:00+00:00"
    )


def test_daily_on_given_days() -> None:
    trigger = DailyTrigger([time(8, 0)], ["fri", "mon"], BERLIN)
    # 2026-06-05 is a Friday.
    assert chain(trigger, "2026-06-05T08:00:00+02:00", 3) == [
        "2026-06-08T08:00:00+02:00",
        "2026-06-12T08:00:00+02:00",
        "2026-06-15T08:00:00+02:00",
    ]
    assert trigger.previous_fire(at("2026-06-08T08:00:00+02:00")).isoformat() == (
        "2026-06-05T08:00:00+02:00"
    )


def test_daily_with_seconds() -> None:
    trigger = DailyTrigger([time(8, 0, 30)], None, UTC)
    assert chain(trigger, "2026-06-05T08:00:00+00:00", 1) == ["2026-06-05T08:00:30+00:00"]
    assert trigger.describe() == "every day at 08:00:30 UTC"


@pytest.mark.parametrize(
    ("times", "days", "zone", "words"),
    [
        ([time(8)], None, UTC, "every day at 08:00 UTC"),
        ([time(17, 30), time(8)], None, UTC, "every day at 08:00 and 17:30 UTC"),
        ([time(7)], ["mon", "tue", "wed", "thu", "fri"], BERLIN, "weekdays at 07:00 Europe/Berlin"),
        ([time(10)], ["sun", "sat"], BERLIN, "weekends at 10:00 Europe/Berlin"),
        ([time(8)], ["fri", "mon"], BERLIN, "on Mon and Fri at 08:00 Europe/Berlin"),
        ([time(8)], ["wed"], UTC, "on Wed at 08:00 UTC"),
        ([time(6), time(12), time(18)], ["mon"], UTC, "on Mon at 06:00, 12:00 and 18:00 UTC"),
    ],
)
def test_daily_describe(
    times: list[time], days: list[str] | None, zone: ZoneInfo, words: str
) -> None:
    assert DailyTrigger(times, days, zone).describe() == words


@pytest.mark.parametrize(
    ("times", "days", "gap"),
    [
        ([time(8)], None, timedelta(days=1)),
        ([time(8), time(17, 30)], None, timedelta(hours=9, minutes=30)),
        ([time(1), time(23)], None, timedelta(hours=2)),
        ([time(8)], ["mon", "fri"], timedelta(days=3)),
        ([time(8)], ["wed"], timedelta(days=7)),
        ([time(23)], ["mon", "tue"], timedelta(days=1)),
    ],
)
def test_daily_min_interval(times: list[time], days: list[str] | None, gap: timedelta) -> None:
    assert DailyTrigger(times, days, UTC).min_interval == gap


def test_daily_duplicate_times_fire_once() -> None:
    trigger = DailyTrigger([time(8), time(8)], ["mon", "mon"], UTC)
    assert trigger.times == (time(8),)
    assert trigger.days == ("mon",)


@pytest.mark.parametrize(
    ("times", "days", "message"),
    [
        ([], None, 'daily needs at least one time, such as "08:00"'),
        ([time(8)], [], 'days must name at least one day, such as ["mon", "fri"]'),
        (
            [time(8)],
            ["funday"],
            'unknown day "funday": use mon, tue, wed, thu, fri, sat or sun',
        ),
        (
            [time(8, tzinfo=UTC)],
            None,
            "daily times must be local times of day, got "
            "datetime.time(8, 0, tzinfo=zoneinfo.ZoneInfo(key='UTC'))",
        ),
    ],
)
def test_daily_errors(times: list[time], days: list[str] | None, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        DailyTrigger(times, days, UTC)
    assert str(caught.value) == message


# --------------------------------------------------------------------------- every


def test_every_counts_from_2000_in_the_zone() -> None:
    trigger = EveryTrigger(timedelta(minutes=90), UTC)
    assert chain(trigger, "2026-06-05T00:10:00+00:00", 3) == [
        # 2000-01-01 to 2026-06-05 is a whole number of days, and 16 × 90m is a day.
        "2026-06-05T01:30:00+00:00",
        "2026-06-05T03:00:00+00:00",
        "2026-06-05T04:30:00+00:00",
    ]
    assert trigger.previous_fire(at("2026-06-05T01:30:00+00:00")).isoformat() == (
        "2026-06-05T00:00:00+00:00"
    )


def test_every_from_a_naive_start_is_local_time() -> None:
    trigger = EveryTrigger(timedelta(hours=2), BERLIN, start=datetime(2026, 1, 5, 7, 0))
    assert chain(trigger, "2026-01-05T08:00:00+01:00", 2) == [
        "2026-01-05T09:00:00+01:00",
        "2026-01-05T11:00:00+01:00",
    ]
    # The grid reaches back before the anchor too.
    assert trigger.previous_fire(at("2026-01-05T07:00:00+01:00")).isoformat() == (
        "2026-01-05T05:00:00+01:00"
    )


def test_every_from_an_aware_start() -> None:
    trigger = EveryTrigger(timedelta(minutes=7), UTC, start=at("2026-01-05T07:03:00+05:00"))
    assert chain(trigger, "2026-01-05T02:03:00+00:00", 2) == [
        "2026-01-05T02:10:00+00:00",
        "2026-01-05T02:17:00+00:00",
    ]


def test_every_grid_does_not_depend_on_when_asked() -> None:
    trigger = EveryTrigger(timedelta(minutes=7), BERLIN)
    asked = at("2026-03-25T10:00:00+01:00")
    first = trigger.next_fire(asked)
    # Days later, across the spring-forward change (compared in UTC: two times in
    # one zone subtract by their clock readings).
    restarted = trigger.next_fire(asked + timedelta(days=5, seconds=1))
    elapsed = restarted.astimezone(UTC) - first.astimezone(UTC)
    assert elapsed % timedelta(minutes=7) == timedelta(0)
    assert (restarted - first) % timedelta(minutes=7) != timedelta(0)  # the pitfall itself


@pytest.mark.parametrize(
    ("interval", "start", "words"),
    [
        (timedelta(seconds=1), None, "every second"),
        (timedelta(seconds=30), None, "every 30 seconds"),
        (timedelta(seconds=90), None, "every 90 seconds"),
        (timedelta(minutes=1), None, "every minute"),
        (timedelta(minutes=15), None, "every 15 minutes"),
        (timedelta(minutes=90), None, "every 90 minutes"),
        (timedelta(hours=1), None, "every hour"),
        (timedelta(hours=2), None, "every 2 hours"),
        (timedelta(days=1), None, "every day"),
        (timedelta(days=3), None, "every 3 days"),
        (timedelta(weeks=1), None, "every week"),
        (timedelta(seconds=1.5), None, "every 1.5 seconds"),
        (
            timedelta(hours=2),
            datetime(2026, 1, 5, 7, 0),
            "every 2 hours from 2026-01-05 07:00 Europe/Berlin",
        ),
    ],
)
def test_every_describe(interval: timedelta, start: datetime | None, words: str) -> None:
    assert EveryTrigger(interval, BERLIN, start).describe() == words


def test_every_min_interval_is_the_interval() -> None:
    assert EveryTrigger(timedelta(seconds=45), UTC).min_interval == timedelta(seconds=45)


@pytest.mark.parametrize(
    ("interval", "message"),
    [
        (timedelta(milliseconds=500), 'invalid interval "500ms": must be at least 1s'),
        (timedelta(0), 'invalid interval "0s": must be at least 1s'),
        (timedelta(seconds=-5), 'invalid interval "0s": must be at least 1s'),
        ("15m", "expected an interval such as \"15m\", got '15m'"),
    ],
)
def test_every_errors(interval: timedelta, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        EveryTrigger(interval, UTC)
    assert str(caught.value) == message


# --------------------------------------------------------------------------- build_trigger


def test_build_cron() -> None:
    trigger = build_trigger(cron="0 7 * * 1-5", timezone="Europe/Berlin")
    assert isinstance(trigger, CronTrigger)
    assert trigger.describe() == "weekdays at 07:00 Europe/Berlin"


def test_build_every_from_text_or_timedelta() -> None:
    text = build_trigger(every="90m", timezone="UTC")
    delta = build_trigger(every=timedelta(minutes=90), timezone="UTC")
    assert isinstance(text, EveryTrigger)
    assert text.interval == delta.interval == timedelta(minutes=90)
    started = build_trigger(every="2h", timezone="UTC", start=datetime(2026, 1, 5, 7))
    assert started.describe() == "every 2 hours from 2026-01-05 07:00 UTC"


def test_build_daily_from_text_times_or_lists() -> None:
    one = build_trigger(daily="08:00", timezone="UTC")
    many = build_trigger(daily=["17:30", time(8)], days=["mon", "fri"], timezone="UTC")
    assert isinstance(one, DailyTrigger)
    assert one.describe() == "every day at 08:00 UTC"
    assert many.describe() == "on Mon and Fri at 08:00 and 17:30 UTC"
    assert build_trigger(daily="8:05:30", timezone="UTC").times == (time(8, 5, 30),)


def test_build_uses_the_local_zone_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    trigger = build_trigger(daily="08:00")
    assert trigger.zone == ZoneInfo("Asia/Tokyo")
    assert trigger.describe() == "every day at 08:00 Asia/Tokyo"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, 'give one of "cron", "every" or "daily"'),
        (
            {"cron": "@daily", "every": "1h"},
            'give exactly one of "cron", "every" or "daily", not "cron" and "every"',
        ),
        (
            {"cron": "@daily", "every": "1h", "daily": "08:00"},
            'give exactly one of "cron", "every" or "daily", not "cron" and "every" and "daily"',
        ),
        ({"cron": "@daily", "days": ["mon"]}, '"days" only goes with "daily"'),
        ({"daily": "08:00", "start": datetime(2026, 1, 1)}, '"start" only goes with "every"'),
        (
            {"cron": "@daily", "timezone": "Mars/Olympus"},
            'unknown time zone "Mars/Olympus": expected an IANA name such as '
            '"Europe/Berlin" or "UTC"',
        ),
        (
            {"cron": "61 * * * *"},
            'invalid cron expression "61 * * * *": minute 61 is out of range 0-59',
        ),
        (
            {"every": "soon"},
            'invalid duration "soon": expected a number and a unit, '
            'such as "90s", "15m", "2h", "1d" or "1h30m"',
        ),
        ({"every": "500ms"}, 'invalid interval "500ms": must be at least 1s'),
        ({"daily": "25:00"}, 'invalid time "25:00": hour must be 0-23 and minute 0-59'),
        ({"daily": "8am"}, 'invalid time "8am": expected "HH:MM", such as "08:00"'),
        ({"daily": "08:0"}, 'invalid time "08:0": expected "HH:MM", such as "08:00"'),
        ({"daily": []}, 'daily needs at least one time, such as "08:00"'),
        (
            {"daily": "08:00", "days": ["monday"]},
            'unknown day "monday": use mon, tue, wed, thu, fri, sat or sun',
        ),
    ],
)
def test_build_errors(settings: dict, message: str) -> None:
    settings.setdefault("timezone", "UTC")
    with pytest.raises(ValueError) as caught:
        build_trigger(**settings)
    assert str(caught.value) == message
