"""``eil-run list [PATH]``: schedules in words, next fire times, last status."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import UsageError
from .common import Parser, add_path, reports_dir_for
from .exitcodes import EXIT_CONFIG, EXIT_OK


def add_ledger_reader_options(parser: argparse.ArgumentParser) -> None:
    """``--format``, ``--reports`` and ``--debug``: shared by the commands that read the ledger."""
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.add_argument("--reports", metavar="DIR", help="reports folder holding the run ledger")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")


def add_utc_option(parser: argparse.ArgumentParser) -> None:
    """``--utc``: times in UTC instead of each pipeline's zone."""
    parser.add_argument(
        "--utc", action="store_true", help="show times in UTC (default: in each pipeline's zone)"
    )


def shown_time(iso: str, zone: str | None, utc: bool) -> str:
    """An ISO time from the JSON rows as the text output shows it: in ``zone``, or UTC."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    moment = datetime.fromisoformat(iso)
    return moment.astimezone(UTC if utc or not zone else ZoneInfo(zone)).isoformat()


def build_list_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run list [PATH]``."""
    parser = Parser(
        prog="eil-run list",
        description="Each pipeline: its schedule in words, its next fire times (in its zone and "
        "in UTC) and the status of its last run.",
    )
    add_path(parser)
    parser.add_argument(
        "--next", type=int, default=3, metavar="N", help="how many fire times (default: 3)"
    )
    add_utc_option(parser)
    add_ledger_reader_options(parser)
    return parser


def cmd_list(options: argparse.Namespace) -> int:
    """Print each pipeline's schedule, next fire times and last run."""
    from ..app.status import pipeline_rows
    from ..text import printable

    if options.next < 1:
        raise UsageError("eil-run list: --next must be at least 1")
    rows = pipeline_rows(Path(options.path), reports_dir_for(options), count=options.next)
    # Invalid files are rows too (a bad file never hides the good ones); they make it exit 2.
    status = EXIT_CONFIG if any(row["problems"] for row in rows) else EXIT_OK
    if options.format == "json":
        print(json.dumps(rows, indent=2))
        return status
    for row in rows:
        if row["problems"]:
            print(f"{row['pipeline']} (invalid): {row['file']}")
            for problem in row["problems"]:
                print(f"  problem:  {problem}")
            continue
        state = "" if row["enabled"] else " (disabled)"
        # The title is free text from a pipeline file: no raw control characters.
        print(f"{row['pipeline']}{state}: {printable(row['title'], keep_newlines=False)}")
        print(f"  schedule: {row['schedule']}")
        for fire in row["next"]:
            first, second = (
                (fire["utc"], fire["local"]) if options.utc else (fire["local"], fire["utc"])
            )
            print(f"  next:     {first}  ({second} {'local' if options.utc else 'UTC'})")
        last = "never run"
        if row["last_status"]:
            when = shown_time(row["last_scheduled_at"], row["timezone"], options.utc)
            # A run the site shows that the ledger does not have: --once without --deliver.
            how = "ad hoc, not in the run ledger; " if row["last_adhoc"] else ""
            last = f"{row['last_status']} ({how}scheduled {when})"
        print(f"  last run: {last}")
    return status
