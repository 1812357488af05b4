"""The report stamp: one helper writes it, the same helper reads it back, and nothing
that is not a stamp reads as one."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eil_pipelines.outputs import owned_files
from eil_pipelines.outputs.stamps import (
    PRECISIONS,
    Stamp,
    format_stamp,
    is_stamp,
    parse_stamp,
)

MOMENT = datetime(2026, 11, 28, 7, 5, 9)


@pytest.mark.parametrize(
    ("precision", "text"),
    [("day", "2026-11-28"), ("minute", "2026-11-28T0705"), ("second", "2026-11-28T070509")],
)
def test_format_and_parse(precision, text):
    assert format_stamp(MOMENT, precision) == text
    assert parse_stamp(text) == Stamp(
        MOMENT.replace(
            hour=0 if precision == "day" else 7,
            minute=0 if precision == "day" else 5,
            second=9 if precision == "second" else 0,
        ),
        precision,
    )
    assert is_stamp(text)


def test_an_aware_moment_is_written_on_its_own_clock():
    berlin = timezone(timedelta(hours=1))
    assert format_stamp(datetime(2026, 11, 28, 23, 30, tzinfo=berlin), "minute") == (
        "2026-11-28T2330"
    )


def test_years_before_1000_keep_four_digits():
    assert format_stamp(datetime(999, 1, 2), "day") == "0999-01-02"
    assert parse_stamp("0999-01-02") == Stamp(datetime(999, 1, 2), "day")


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="unknown stamp precision 'hour'"):
        format_stamp(MOMENT, "hour")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "latest",
        "2026-11-28.md",  # a file name, not its stamp
        " 2026-11-28",
        "2026-11-28\n",
        "2026-11-2",
        "26-11-28",
        "2026/11/28",
        "2026-11-28T07",  # hours alone are no precision
        "2026-11-28T07:05",  # colons never appear in stamps (file names on Windows)
        "2026-11-28T07051",
        "2026-11-28T0705099",
        "2026-11-28 0705",
        "2026-11-28t0705",
        "2026-13-01",  # no such month
        "2026-02-29",  # not a leap year
        "2026-11-28T2400",  # no such hour
        "2026-11-28T0760",
        "2026-11-28T070560",
        "0000-01-01",  # no year 0
        "２０２６-11-28",  # fullwidth digits
        "٢٠٢٦-11-28",  # Arabic-Indic digits
    ],
)
def test_rejects(text):
    assert parse_stamp(text) is None
    assert not is_stamp(text)


moments = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))


@given(moments, st.sampled_from(PRECISIONS))
def test_round_trip_from_a_moment(moment, precision):
    text = format_stamp(moment, precision)
    parsed = parse_stamp(text)
    assert parsed is not None and parsed.precision == precision
    assert parsed.text == text
    # The stamp keeps the fields of its precision and drops the finer ones.
    kept = {"day": 3, "minute": 5, "second": 6}[precision]
    assert parsed.moment.timetuple()[:kept] == moment.timetuple()[:kept]
    assert parsed.moment.timetuple()[kept:6] == (0,) * (6 - kept)


@given(st.from_regex(r"\A\d{4}-\d{2}-\d{2}(T\d{4}(\d{2})?)?\Z"))
def test_round_trip_from_text(text):
    parsed = parse_stamp(text)
    if parsed is not None:  # a real date and time
        assert format_stamp(parsed.moment, parsed.precision) == text


@given(moments, moments, st.sampled_from(PRECISIONS))
def test_stamps_of_one_precision_sort_in_time_order(a, b, precision):
    if a < b:
        assert format_stamp(a, precision) <= format_stamp(b, precision)


def test_only_real_stamps_name_owned_files(tmp_path):
    for name in ("2026-11-28.md", "2026-11-28T0700.html", "2026-02-30.md", "2026-11-28.txt"):
        (tmp_path / name).write_text("x")
    for name in ("2026-11-28_charts", "2026-13-01_charts", "2026-11-28_other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.png").write_bytes(b"png")
    owned = owned_files(tmp_path)
    assert {stamp: [p.name for p in paths] for stamp, paths in owned.items()} == {
        "2026-11-28": ["2026-11-28.md", "a.png"],
        "2026-11-28T0700": ["2026-11-28T0700.html"],
    }
