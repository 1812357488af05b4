"""parse_duration / format_duration: the durations users write for every, timeout, retry_delay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eil_pipelines.schedule.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1w", timedelta(weeks=1)),
        ("500ms", timedelta(milliseconds=500)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("  15M  ", timedelta(minutes=15)),
        ("1.5h", timedelta(minutes=90)),
        ("1m30s", timedelta(seconds=90)),
        ("1d2h3m4s5ms", timedelta(days=1, hours=2, minutes=3, seconds=4, milliseconds=5)),
    ],
)
def test_parse_duration(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "",
            'invalid duration "": expected a number and a unit, '
            'such as "90s", "15m", "2h", "1d" or "1h30m"',
        ),
        (
            "15",
            'invalid duration "15": expected a number and a unit, '
            'such as "90s", "15m", "2h", "1d" or "1h30m"',
        ),
        (
            "soon",
            'invalid duration "soon": expected a number and a unit, '
            'such as "90s", "15m", "2h", "1d" or "1h30m"',
        ),
        (
            "-5m",
            'invalid duration "-5m": expected a number and a unit, '
            'such as "90s", "15m", "2h", "1d" or "1h30m"',
        ),
        (
            "5 minutes",
            'invalid duration "5 minutes": expected a number and a unit, '
            'such as "90s", "15m", "2h", "1d" or "1h30m"',
        ),
        ("0s", 'invalid duration "0s": must be greater than zero'),
        ("0h0m", 'invalid duration "0h0m": must be greater than zero'),
    ],
)
def test_parse_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == message


def test_parse_duration_not_a_string() -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(15)  # type: ignore[arg-type]
    assert str(caught.value) == 'expected a duration string such as "15m", got 15'


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=90), "1m30s"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(hours=2), "2h"),
        (timedelta(days=1, seconds=5), "1d5s"),
        (timedelta(milliseconds=250), "250ms"),
        (timedelta(seconds=1), "1s"),
    ],
)
def test_format_duration(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


@given(st.integers(min_value=1, max_value=10**8))
def test_whole_seconds_round_trip(seconds: int) -> None:
    delta = timedelta(seconds=seconds)
    assert parse_duration(format_duration(delta)) == delta
