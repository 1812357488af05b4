"""Wall clock to instants (gaps and overlaps), and the shared words of descriptions.

Daylight-saving facts used: Europe/Berlin jumps 02:00 -> 03:00 on 2026-03-29
(01:00 UTC) and goes back 03:00 -> 02:00 on 2026-10-25 (01:00 UTC);
America/New_York jumps 02:00 -> 03:00 on 2026-03-08 (07:00 UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from eil_pipelines.schedule.wallclock import gap_end, min_gap, occurrences, overlap, to_utc
from eil_pipelines.schedule.words import clock, days_phrase, join

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------- wallclock


def test_an_ordinary_time_occurs_once() -> None:
    assert occurrences(datetime(2026, 6, 1, 8, 0), BERLIN) == (utc(2026, 6, 1, 6, 0),)


def test_a_skipped_time_never_occurs_and_its_gap_ends_at_the_jump() -> None:
    assert occurrences(datetime(2026, 3, 29, 2, 30), BERLIN) == ()
    assert gap_end(datetime(2026, 3, 29, 2, 30), BERLIN) == utc(2026, 3, 29, 1, 0)
    assert gap_end(datetime(2026, 3, 8, 2, 0), NEW_YORK) == utc(2026, 3, 8, 7, 0)


def test_a_repeated_time_occurs_twice_in_order() -> None:
    assert occurrences(datetime(2026, 10, 25, 2, 30), BERLIN) == (
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 1, 30),
    )


def test_overlap_is_how_far_the_clocks_go_back_in_a_repeated_hour_only() -> None:
    assert overlap(datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN)) == timedelta(hours=1)
    assert overlap(datetime(2026, 10, 25, 3, 30, tzinfo=BERLIN)) == timedelta(0)
    assert overlap(datetime(2026, 3, 29, 2, 30, tzinfo=BERLIN)) == timedelta(0)


def test_to_utc_converts_aware_times_and_names_a_naive_one() -> None:
    assert to_utc(datetime(2026, 6, 1, 8, 0, tzinfo=BERLIN), "after") == utc(2026, 6, 1, 6, 0)
    with pytest.raises(ValueError) as caught:
        to_utc(datetime(2026, 6, 1, 8, 0), "after")
    assert str(caught.value) == (
        "after must be a timezone-aware datetime, got datetime.datetime(2026, 6, 1, 8, 0)"
    )


def test_min_gap_between_times_of_day_and_across_days() -> None:
    assert min_gap([0, 600], 1, 1440) == 600  # 00:00 and 10:00: ten hours apart
    assert min_gap([480, 1380], 1, 1440) == 540  # 23:00 to the next 08:00
    assert min_gap([480], 7, 1440) == 7 * 1440  # weekly at 08:00


# --------------------------------------------------------------------------- words


def test_join() -> None:
    assert join([]) == ""
    assert join(["08:00"]) == "08:00"
    assert join(["a", "b"]) == "a and b"
    assert join(["a", "b", "c"], "or") == "a, b or c"


def test_days_phrase() -> None:
    assert days_phrase(frozenset(range(7))) == "every day"
    assert days_phrase(frozenset(range(5))) == "weekdays"
    assert days_phrase(frozenset({5, 6})) == "weekends"
    assert days_phrase(frozenset({4, 0})) == "on Mon and Fri"


def test_clock_shows_seconds_only_when_there_are_some() -> None:
    assert clock(time(8, 0)) == "08:00"
    assert clock(time(8, 0, 30)) == "08:00:30"
