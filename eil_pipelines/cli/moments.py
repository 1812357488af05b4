"""Dates and times on the command line: ``--at``, ``--from`` and ``--to``."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import UsageError

#: ``--at``, ``--from``, ``--to``: these years (docs/cli.md), so the periods and fire
#: times around them stay in the clock's years 1 to 9999.
MOMENT_YEARS = (1900, 9000)


def _check_years(moment: datetime, text: str, option: str, command: str) -> datetime:
    low, high = MOMENT_YEARS
    utc = moment.astimezone(UTC).year if moment.tzinfo else moment.year  # 9000-12-31T23:00-05:00
    if not (low <= moment.year <= high and low <= utc <= high):
        raise UsageError(
            f'{command}: {option}: "{text}" is out of range: the year must be {low} to {high}'
        )
    return moment


def parse_at(text: str) -> datetime:
    """Parse ``--at``: an ISO date or date-time, naive (each pipeline's zone) or with an
    offset, in the years 1900 to 9000."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f'eil-run: --at: invalid date-time "{text}": expected ISO 8601 such as '
            "2026-11-27T07:00 or 2026-11-27"
        ) from None
    return _check_years(moment, text, "--at", "eil-run")


def parse_moment(text: str, option: str, command: str, zone: ZoneInfo) -> datetime:
    """An ISO date or date-time; naive values are read in ``zone`` (a date is its midnight)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f'eil-run {command}: {option}: invalid date-time "{text}": expected ISO 8601 such '
            "as 2026-03-29T07:00 or 2026-03-29"
        ) from None
    _check_years(moment, text, option, f"eil-run {command}")
    if "T" not in text and " " not in text.strip():
        moment = datetime.combine(moment.date(), time())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment


def parse_to(text: str, zone: Any) -> datetime:
    """``--to``: a date means through the end of that day; a date-time is that instant."""
    moment = parse_moment(text, "--to", "backfill", zone)
    if "T" in text or " " in text.strip():
        return moment
    next_day = datetime.combine(moment.date() + timedelta(days=1), time(), tzinfo=moment.tzinfo)
    return (next_day.astimezone(UTC) - timedelta(microseconds=1)).astimezone(moment.tzinfo)
