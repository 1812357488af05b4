"""``eil-run diff [PATH] --base REV``: what a change does to the reports, for review.

Exit 0 when no report changed, 1 when some did, 2 on an error (an unknown
revision, a folder outside git, an invalid file or a failed render at head).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import Parser, add_debug, add_path
from .exitcodes import EXIT_CONFIG, EXIT_FAILED, EXIT_OK
from .moments import parse_at


def build_diff_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run diff``."""
    parser = Parser(
        prog="eil-run diff",
        description="Render the pipelines a change touches at two revisions, as if "
        "scheduled at the same time on the same data, and show what changes in the "
        "reports: schedules, KPIs, query results, charts. Exit 0: nothing changed, "
        "1: reports changed, 2: an error.",
    )
    add_path(parser)
    add = parser.add_argument
    add("--base", required=True, metavar="REV", help="the revision to compare with (origin/main)")
    add(
        "--head",
        metavar="REV",
        help="the revision with the change (default: the work tree as it is on disk, "
        "uncommitted and untracked files included)",
    )
    add(
        "--at",
        metavar="DATETIME",
        help="render both sides as if scheduled at this time, read in each pipeline's "
        "zone (default: now)",
    )
    add(
        "--format",
        choices=("text", "markdown", "html", "json"),
        default="text",
        help="text (default), Markdown for a pull-request comment, a self-contained "
        "HTML page, or JSON",
    )
    add(
        "--max-cells",
        type=int,
        default=20,
        metavar="N",
        help="changed cells listed per query (default: 20)",
    )
    add("--output", metavar="FILE", help="write the diff to FILE instead of standard output")
    add_debug(parser)
    return parser


def cmd_diff(options: argparse.Namespace) -> int:
    """Compare, print in the chosen format, and exit 0, 1 or 2."""
    from ..app.diff import diff_reports
    from ..app.diff_render import render_diff
    from ..errors import UsageError

    if options.max_cells < 0:
        raise UsageError("eil-run diff: --max-cells must be 0 or more")
    at = parse_at(options.at) if options.at else None
    result = diff_reports(
        Path(options.path), base=options.base, head=options.head, at=at, max_cells=options.max_cells
    )
    text = render_diff(result, options.format)
    if options.output:
        Path(options.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if result.failed:
        print("eil-run diff: the change breaks a pipeline at head (see above)", file=sys.stderr)
        return EXIT_CONFIG
    return EXIT_FAILED if result.changed else EXIT_OK
