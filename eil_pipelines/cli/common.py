"""What several commands share: the parser class, PATH, the reports folder, moments.

Logging is in :mod:`.logs`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import ConfigError, ConfigErrors, UsageError

DEFAULT_PATH = "pipelines"


class Parser(argparse.ArgumentParser):
    """An argument parser that raises :class:`UsageError` (exit 2) instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}\nTry '{self.prog} --help'.")


def add_path(parser: argparse.ArgumentParser) -> None:
    """The optional ``PATH`` argument: a pipelines folder or one pipeline file."""
    parser.add_argument(
        "path",
        nargs="?",
        default=DEFAULT_PATH,
        metavar="PATH",
        help="a pipelines folder or one pipeline file (default: pipelines/)",
    )


def add_debug(parser: argparse.ArgumentParser) -> None:
    """``--debug``: every command has it."""
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")


def reports_dir_for(options: argparse.Namespace) -> Path:
    """``--reports`` or ``reports/`` in the project root."""
    if options.reports:
        return Path(options.reports).resolve()
    from ..spec.loader import project_root_for

    return project_root_for(Path(options.path)) / "reports"


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


def check_counts(options: argparse.Namespace) -> None:
    """``--workers`` and ``--chart-processes`` in range."""
    if options.workers < 1:
        raise UsageError("eil-run: --workers must be at least 1")
    if options.chart_processes is not None and options.chart_processes < 0:
        raise UsageError("eil-run: --chart-processes must be 0 or more")


def load_one(path_text: str, command: str) -> Any:
    """Load the single pipeline file a command names; UsageError for anything else.

    Problems in the file itself are raised as ConfigErrors (printed with the
    count, exit 2), like ``eil-run validate`` prints them.
    """
    from ..spec.loader import load_pipeline  # pydantic: off the path of --help

    path = Path(path_text)
    if path.is_dir():
        raise UsageError(
            f"eil-run {command}: {path_text} is a folder; give one pipeline file, "
            f"such as {Path(path_text) / 'daily_sales.toml'}"
        )
    if not path.is_file():
        raise UsageError(f"eil-run {command}: {path_text}: no such pipeline file")
    if path.suffix != ".toml":
        raise UsageError(f"eil-run {command}: {path_text}: a pipeline file must end in .toml")
    try:
        return load_pipeline(path)
    except ConfigError as exc:
        raise ConfigErrors([exc]) from None


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
