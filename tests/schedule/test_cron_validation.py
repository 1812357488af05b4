"""validate_cron: the exact messages a user reads for a bad cron expression."""

from __future__ import annotations

import pytest

from eil_pipelines.schedule.cron import validate_cron

FIELDS = "minute hour day-of-month month day-of-week"


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("61 * * * *", "minute 61 is out of range 0-59"),
        ("0 24 * * *", "hour 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month 0 is out of range 1-31"),
        ("0 0 32 * *", "day-of-month 32 is out of range 1-31"),
        ("0 0 * 13 *", "month 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week 8 is out of range 0-7"),
        ("* * * *", f"expected 5 fields ({FIELDS}), got 4"),
        ("", f"expected 5 fields ({FIELDS}), got 0"),
        (
            "0 0 7 * * *",
            f"expected 5 fields ({FIELDS}), got 6 (a seconds field is not supported)",
        ),
        (
            "@sometimes",
            'unknown alias "@sometimes"; use @hourly, @daily, @weekly, @monthly or @yearly',
        ),
        (
            "@reboot",
            'unknown alias "@reboot"; use @hourly, @daily, @weekly, @monthly or @yearly',
        ),
        ("x * * * *", 'minute "x" is not a number'),
        ("0 0 * foo *", 'month "foo" is not a number or a month name (jan-dec)'),
        ("0 0 * * funday", 'day-of-week "funday" is not a number or a day name (sun-sat)'),
        ("*/0 * * * *", "minute step 0 is out of range 1-59"),
        ("*/x * * * *", 'minute step "x" is not a number'),
        (
            "*/90 * * * *",
            'minute step 90 is out of range 1-59 (for every 90 minutes, use an "every" schedule)',
        ),
        (
            "0 */36 * * *",
            'hour step 36 is out of range 1-23 (for every 36 hours, use an "every" schedule)',
        ),
        ("0 0 */31 * *", "day-of-month step 31 is out of range 1-30"),
        ("5-2 * * * *", "minute range 5-2 is reversed; write 2-5"),
        ("0 0 * mar-jan *", "month range mar-jan is reversed; write jan-mar"),
        (
            "0 0 * * fri-sun",
            "day-of-week range fri-sun is reversed; write fri-7 for a range that ends on Sunday",
        ),
        ("0 0 * * mon#6", 'day-of-week week number 6 in "mon#6" is out of range 1-5'),
        ("0 0 * * 1#0", 'day-of-week week number 0 in "1#0" is out of range 1-5'),
        ("0 0 * * mon#x", 'day-of-week week number "x" in "mon#x" is not a number'),
        ("0 0 * * L", 'day-of-week "L" needs a day before it, such as 5L for the last Friday'),
        ("0 0 * * 8L", "day-of-week 8 is out of range 0-7"),
        ("0 0 31 2 *", "day-of-month 31 never occurs in February"),
        ("0 0 30 2 *", "day-of-month 30 never occurs in February"),
        ("0 0 31 2,4,6 *", "day-of-month 31 never occurs in February, April or June"),
        # Day-of-week starting with "*" still means "both must match" (Vixie).
        ("0 0 31 2 */2", "day-of-month 31 never occurs in February"),
        ("1,,2 * * * *", 'minute "1,,2" has an empty item'),
        ("1, * * * *", 'minute "1," has an empty item'),
        ("-5 * * * *", 'minute "-5" is missing a number'),
        ("1- * * * *", 'minute "1-" is missing a number'),
        ("0 0 ? * *", 'day-of-month "?" is not supported; use *'),
        ("0 0 L/2 * *", 'day-of-month "L/2": L cannot take a step'),
        ("0 0 15W * *", 'day-of-month "15W" is not supported; use a number, a range, L or LW'),
        ("0 0 * jan-foo *", 'month "foo" is not a number or a month name (jan-dec)'),
        ("L * * * *", 'minute "L" is not a number'),
    ],
)
def test_bad_cron_message(expr: str, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        validate_cron(expr)
    assert str(caught.value) == f'invalid cron expression "{expr}": {reason}'


def test_message_quotes_the_expression_as_written() -> None:
    with pytest.raises(ValueError, match=r'^invalid cron expression "  61 \* \* \* \*  ": '):
        validate_cron("  61 * * * *  ")


def test_not_a_string() -> None:
    with pytest.raises(ValueError) as caught:
        validate_cron(5)  # type: ignore[arg-type]
    assert str(caught.value) == 'expected a cron expression such as "0 7 * * 1-5", got 5'


@pytest.mark.parametrize(
    "expr",
    [
        "* * * * *",
        "*/15 * * * *",
        "0-59/15 * * * *",
        "5/15 * * * *",
        "0 7 * * 1-5",
        "0 7 * * MON-FRI",
        "0 7 * JAN-mar mon,Wed,FRI",
        "0 0 * * 7",
        "0 0 * * fri-7",
        "0 0 * * */2",
        "0 0 L * *",
        "0 0 LW * *",
        "0 0 1,L * *",
        "0 0 * * 5L",
        "0 0 * * friL",
        "0 0 * * fri#2",
        "0 0 * * 0#5",
        "0 0 29 2 *",  # leap days
        "0 0 30 2,4 *",  # April has a 30th
        "0 0 31 2 1",  # both restricted: any Monday in February runs
        "0 0 * 2 sun#5",  # only in some leap years
        "@hourly",
        "@daily",
        "@midnight",
        "@weekly",
        "@monthly",
        "@yearly",
        "@annually",
        "@DAILY",
        "  0 7 * * *  ",
        "0\t7 * * *",
    ],
)
def test_valid_cron(expr: str) -> None:
    validate_cron(expr)
