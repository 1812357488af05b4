"""Cron semantics cross-checked against cronsim, an independent implementation.

The cron engine in ``triggers`` is our own.  Here its wall-clock times are
compared with cronsim's on random expressions, in zones without daylight
saving (where wall clock and instants map one to one; the DST rules are
checked by ``test_triggers_dst`` and ``test_triggers_properties``).  The raw
expression goes to cronsim, so names, ranges, steps, ``L``, ``LW``, ``5L``,
``1#2`` and Vixie's day-of-month/day-of-week rule are each read twice, by
different code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eil_pipelines.schedule.cron import CronTrigger, validate_cron

cronsim = pytest.importorskip("cronsim")

# No daylight saving in the years tested (Kolkata since 1945, Tokyo since 1951).
STEADY_ZONES = [ZoneInfo("UTC"), ZoneInfo("Asia/Kolkata"), ZoneInfo("Asia/Tokyo")]
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


def term(lo: int, hi: int, names: list[str] | None = None, first: int = 0):
    """One item of a field's comma list, in any of the plain forms."""

    def spellings(v: int) -> list[str]:
        out = [str(v)] * 3
        if names and v - first < len(names):
            out += [f(names[v - first]) for f in (str.lower, str.upper, str.title)]
        return out

    spelled = [(v, text) for v in range(lo, hi + 1) for text in spellings(v)]
    value = st.sampled_from(spelled)
    step = st.integers(1, hi - lo)
    pair = st.tuples(value, value).map(sorted)
    return st.one_of(
        st.just("*"),
        step.map(lambda s: f"*/{s}"),
        value.map(lambda v: v[1]),
        # "5/15": from 5 to the end of the field.
        st.builds(lambda v, s: f"{v[0]}/{s}", value, step),
        pair.map(lambda p: f"{p[0][1]}-{p[1][1]}"),
        # cronsim reads a one-value range with a step ("5-5/2") as running to the
        # end of the field, unlike Vixie cron and us: stepped ranges span two values or more.
        st.builds(
            lambda p, s: f"{p[0][1]}-{p[1][1]}/{s}", pair.filter(lambda p: p[0][0] < p[1][0]), step
        ),
    )


def field(lo: int, hi: int, names: list[str] | None = None, first: int = 0, extra=None):
    items = term(lo, hi, names, first)
    if extra is not None:
        items = st.one_of(items, items, items, extra)
    return st.lists(items, min_size=1, max_size=3).map(",".join)


# Day-of-week specials with a number: cronsim takes no name before L.
dow_special = st.one_of(
    st.integers(0, 7).map(lambda d: f"{d}L"),
    st.builds(
        lambda d, nth: f"{d}#{nth}",
        st.integers(0, 7).map(str) | st.sampled_from(DAYS),
        st.integers(1, 5),
    ),
)

expressions = st.builds(
    lambda *fields: " ".join(fields),
    field(0, 59),
    field(0, 23),
    field(1, 31, extra=st.sampled_from(["L", "LW"])),
    field(1, 12, MONTHS, 1),
    field(0, 7, DAYS, extra=dow_special),
)

instants = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2035, 12, 31))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=expressions, wall=instants, zone=st.sampled_from(STEADY_ZONES))
def test_next_and_previous_fire_match_cronsim(expr: str, wall: datetime, zone: ZoneInfo) -> None:
    try:
        trigger = CronTrigger(expr, zone)
    except ValueError:
        # Refused only when no date ever matches; cronsim finds none either.
        with pytest.raises((StopIteration, cronsim.CronSimError)):
            next(cronsim.CronSim(expr, datetime(2000, 1, 1)))
        return
    after = wall.replace(tzinfo=zone)
    expected_next = next(cronsim.CronSim(expr, wall))
    expected_previous = next(cronsim.CronSim(expr, wall, reverse=True))
    assert trigger.next_fire(after).replace(tzinfo=None) == expected_next
    assert trigger.previous_fire(after).replace(tzinfo=None) == expected_previous


@pytest.mark.parametrize(
    ("expr", "after", "expected_next", "expected_previous"),
    [
        # Feb 29th on a Monday: leap years whose February starts on a Monday,
        # 28 or 40 years apart, never in the eight years from 2000.
        ("0 0 * 2 mon#5", "2026-06-01", "2044-02-29", "2016-02-29"),
        ("0 0 29 2 *", "2097-01-01", "2104-02-29", "2096-02-29"),  # 2100 is no leap year
        ("0 0 29 2 *", "2400-01-01", "2400-02-29", "2396-02-29"),  # 2400 is one
        ("30 12 LW 2 *", "2026-03-10", "2027-02-26 12:30", "2026-02-27 12:30"),
        ("0 9 * * 0L", "2026-05-31 10:00", "2026-06-28 09:00", "2026-05-31 09:00"),
    ],
)
def test_rare_and_far_dates(expr: str, after: str, expected_next: str, expected_previous: str):
    trigger = CronTrigger(expr, ZoneInfo("UTC"))
    moment = datetime.fromisoformat(after).replace(tzinfo=UTC)
    assert trigger.next_fire(moment) == datetime.fromisoformat(expected_next).replace(tzinfo=UTC)
    assert trigger.previous_fire(moment) == datetime.fromisoformat(expected_previous).replace(
        tzinfo=UTC
    )
    assert next(cronsim.CronSim(expr, moment.replace(tzinfo=None))) == datetime.fromisoformat(
        expected_next
    )


def test_a_date_that_never_comes_is_refused() -> None:
    # "*/30" starts with "*": the 1st or the 31st of February, and a fifth Monday.
    with pytest.raises(ValueError, match=r"it matches no date$"):
        validate_cron("0 0 */30 2 mon#5")
    with pytest.raises(StopIteration):
        next(cronsim.CronSim("0 0 */30 2 MON#5", datetime(2000, 1, 1)))
