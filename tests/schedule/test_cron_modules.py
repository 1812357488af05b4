"""The cron package module by module: parse, match, describe.

The triggers' tests cover what a schedule fires at; these pin the seams
between the modules.  Calendar facts used below: 2026-02-01 is a Sunday
(February 2026 has 28 days, its Fridays are the 6th, 13th, 20th and 27th,
its Mondays the 2nd, 9th, 16th and 23rd) and 2026-06-01 is a Monday.
"""

from __future__ import annotations

from datetime import time
from zoneinfo import ZoneInfo

import pytest

from eil_pipelines.schedule.cron import ALIASES, CronTrigger, validate_cron
from eil_pipelines.schedule.cron.describe import describe_cron, weekdays
from eil_pipelines.schedule.cron.match import Field, days_of, times_of_day
from eil_pipelines.schedule.cron.parse import parse_cron

# --------------------------------------------------------------------------- parse


def test_fields_parse_to_the_values_they_match() -> None:
    cron = parse_cron("5,10-12 */6 1 jan-mar mon-fri")
    assert cron.minute.values == {5, 10, 11, 12}
    assert cron.hour.values == {0, 6, 12, 18}
    assert cron.dom.values == {1}
    assert cron.month.values == {1, 2, 3}
    assert cron.dow.values == {1, 2, 3, 4, 5}
    assert cron.source == "5,10-12 */6 1 jan-mar mon-fri"


def test_star_marks_an_unrestricted_day_field_even_with_a_step() -> None:
    assert parse_cron("0 0 */2 * *").dom.star
    assert not parse_cron("0 0 1-31 * *").dom.star


def test_sunday_is_0_and_7() -> None:
    assert parse_cron("0 0 * * 7").dow.values == {0}
    assert parse_cron("0 0 * * 5-7").dow.values == {5, 6, 0}


def test_last_and_nth_forms() -> None:
    assert parse_cron("0 0 L * *").dom.last
    assert parse_cron("0 0 LW * *").dom.last_weekday
    assert parse_cron("0 0 * * 5L").dow.last_dows == {5}
    assert parse_cron("0 0 * * 1#2").dow.nth_dows == {(1, 2)}
    assert parse_cron("0 0 * * 1#2").dow.special
    assert not parse_cron("0 0 * * 1").dow.special


def test_an_alias_parses_as_what_it_stands_for_and_keeps_its_name() -> None:
    weekly = parse_cron("@weekly")
    assert ALIASES["@weekly"] == "0 0 * * 0"
    assert weekly.source == "@weekly"
    assert weekly.dow == parse_cron("0 0 * * 0").dow
    assert weekly.minute.values == {0}


def test_equal_fields_are_shared_between_expressions() -> None:
    # Thousands of schedules share a few fields: one parsed object each.
    assert parse_cron("5 7 * * *").hour is parse_cron("9 7 * * 1").hour


def test_parse_and_validate_give_the_same_message() -> None:
    message = 'invalid cron expression "0 0 31 2 *": day-of-month 31 never occurs in February'
    with pytest.raises(ValueError) as parsed:
        parse_cron("0 0 31 2 *")
    with pytest.raises(ValueError) as validated:
        validate_cron("0 0 31 2 *")
    assert str(parsed.value) == str(validated.value) == message


# --------------------------------------------------------------------------- match


def test_days_of_a_month_by_its_length_and_first_weekday() -> None:
    # February 2026: 28 days, the 1st a Sunday (Monday is 0).
    def days(expr: str) -> list[int]:
        cron = parse_cron(expr)
        return list(days_of(cron.dom, cron.dow, 6, 28))

    assert days("0 0 * * 5L") == [27]  # the last Friday
    assert days("0 0 * * 1#2") == [9]  # the second Monday
    assert days("0 0 * * 1#5") == []  # no fifth Monday
    assert days("0 0 L * *") == [28]
    assert days("0 0 LW * *") == [27]  # the 28th is a Saturday
    assert days("0 0 30 * *") == []
    assert days("0 0 * * *") == list(range(1, 29))


def test_vixie_rule_either_day_field_when_both_are_restricted() -> None:
    cron = parse_cron("0 0 1,15 * 1")
    assert list(cron.month_days(2026, 2)) == [1, 2, 9, 15, 16, 23]


def test_vixie_rule_both_day_fields_when_one_starts_with_a_star() -> None:
    cron = parse_cron("0 0 */10 * 1")  # days 1, 11, 21, 31 that are Mondays
    assert list(cron.month_days(2026, 2)) == []
    assert list(cron.month_days(2026, 6)) == [1]


def test_days_of_with_fields_built_by_hand() -> None:
    every_day = Field(values=frozenset(range(1, 32)), star=True)
    fridays = Field(values=frozenset({5}), star=False)
    assert list(days_of(every_day, fridays, 6, 28)) == [6, 13, 20, 27]


def test_a_cron_that_matches_no_date_is_found_out() -> None:
    assert parse_cron("0 0 30 * *").runs_some_day()
    # Days 1 and 31 that are a fifth Monday of February: none, in any year.
    with pytest.raises(ValueError, match="it matches no date"):
        parse_cron("0 0 */30 2 mon#5")


def test_times_of_day_are_sorted_and_shared() -> None:
    times = times_of_day(frozenset({9, 8}), frozenset({30, 0}))
    assert times == (time(8, 0), time(8, 30), time(9, 0), time(9, 30))
    assert times_of_day(frozenset({8, 9}), frozenset({0, 30})) is times


# --------------------------------------------------------------------------- describe


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("* * * * *", "every minute"),
        ("*/15 * * * *", "every 15 minutes"),
        ("0 * * * 1-5", "every hour on weekdays (Europe/Berlin)"),
        ("0 */2 * * *", "every 2 hours at :00 (Europe/Berlin)"),
        ("0 7 * * 1-5", "weekdays at 07:00 Europe/Berlin"),
        ("30 8,17 * * 6,0", "weekends at 08:30 and 17:30 Europe/Berlin"),
        ("0 7 1 * *", "cron 0 7 1 * * (Europe/Berlin)"),
        ("@daily", "every day at 00:00 Europe/Berlin"),
    ],
)
def test_describe_cron(expr: str, words: str) -> None:
    assert describe_cron(parse_cron(expr), "Europe/Berlin") == words


def test_weekdays_of_an_expression() -> None:
    assert weekdays(parse_cron("0 0 * * 0,6")) == {5, 6}  # Monday is 0 here
    assert weekdays(parse_cron("0 0 * * 7")) == {6}
    # Both day fields restricted: a day matching either runs, and 1-31 is every day.
    assert weekdays(parse_cron("0 0 1-31 * 1")) == set(range(7))
    assert weekdays(parse_cron("0 0 1,15 * *")) is None
    assert weekdays(parse_cron("0 0 * 6 *")) is None
    assert weekdays(parse_cron("0 0 * * 5L")) is None


def test_the_trigger_describes_itself_through_describe_cron() -> None:
    trigger = CronTrigger("0 7 * * 1-5", ZoneInfo("Europe/Berlin"))
    assert trigger.describe() == describe_cron(parse_cron("0 7 * * 1-5"), "Europe/Berlin")
