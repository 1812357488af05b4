"""``eil-run history [PATH]``: recent runs from the run ledger."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import UsageError
from .common import Parser, add_path, reports_dir_for
from .exitcodes import EXIT_OK
from .listing import add_ledger_reader_options, add_utc_option, shown_time


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
    add_utc_option(parser)
    add_ledger_reader_options(parser)
    return parser


def cmd_history(options: argparse.Namespace) -> int:
    """Print recent runs, with the deliveries that still need attention."""
    from ..app.status import empty_history_note, history_rows
    from ..text import printable
    from .printing import delivery_line

    if options.limit < 1:
        raise UsageError("eil-run history: --limit must be at least 1")
    reports = reports_dir_for(options)
    rows = history_rows(
        Path(options.path),
        reports,
        failed_only=options.failed,
        limit=options.limit,
    )
    if options.format == "json":
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print(empty_history_note(Path(options.path), reports, failed_only=options.failed))
        return EXIT_OK
    table = [
        (
            shown_time(row["scheduled_at"], row["timezone"], options.utc),
            row["pipeline"],
            row["status"],
            str(row["attempt"]),
            f"{row['duration_s']:.2f}s" if row["duration_s"] is not None else "-",
        )
        for row in rows
    ]
    header = ("SCHEDULED (UTC)" if options.utc else "SCHEDULED", "PIPELINE", "STATUS", "ATTEMPT")
    widths = [max(len(line[i]) for line in [*table, (*header, "DURATION")]) for i in range(4)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + "  DURATION")
    for row, line in zip(rows, table, strict=True):
        cells = "  ".join(cell.ljust(w) for cell, w in zip(line[:4], widths, strict=True))
        print(f"{cells}  {line[4]}")
        if row["error"]:
            print(f"    {printable(row['error'])}")  # errors quote data and file names
        for delivery in row["deliveries"]:
            if delivery["status"] not in ("sent", "skipped"):  # what still needs attention
                print(f"    {delivery_line(delivery)}")
    return EXIT_OK
