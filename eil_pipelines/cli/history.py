"""``eil-run history [PATH]``: recent runs from the run ledger."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import UsageError
from .common import Parser, add_path, reports_dir_for
from .exitcodes import EXIT_OK
from .listing import add_ledger_reader_options


def build_history_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run history [PATH]``."""
    parser = Parser(
        prog="eil-run history",
        description="Recent runs from the run ledger, newest first.  PATH a single pipeline "
        "file shows only that pipeline.",
    )
    add_path(parser)
    parser.add_argument(
        "--failed", action="store_true", help="only failed, timed-out and abandoned runs"
    )
    parser.add_argument(
        "--limit", type=int, default=20, metavar="N", help="how many runs (default: 20)"
    )
    add_ledger_reader_options(parser)
    return parser


def cmd_history(options: argparse.Namespace) -> int:
    """Print recent runs, with the deliveries that still need attention."""
    from ..app.status import history_rows
    from ..text import printable
    from .printing import delivery_line

    if options.limit < 1:
        raise UsageError("eil-run history: --limit must be at least 1")
    rows = history_rows(
        Path(options.path),
        reports_dir_for(options),
        failed_only=options.failed,
        limit=options.limit,
    )
    if options.format == "json":
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print("No runs recorded yet.")
        return EXIT_OK
    for row in rows:
        duration = f"{row['duration_s']:.2f}s" if row["duration_s"] is not None else "-"
        print(
            f"{row['scheduled_at']}  {row['pipeline']}  {row['status']}  "
            f"attempt {row['attempt']}  {duration}"
        )
        if row["error"]:
            print(f"    {printable(row['error'])}")  # errors quote data and file names
        for delivery in row["deliveries"]:
            if delivery["status"] not in ("sent", "skipped"):  # what still needs attention
                print(f"    {delivery_line(delivery)}")
    return EXIT_OK
