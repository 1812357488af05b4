"""``eil-run send PIPELINE_FILE --to ADDRESS``: mail the latest report, for testing."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ..errors import UsageError
from .common import Parser, add_debug, add_target
from .exitcodes import EXIT_FAILED, EXIT_OK


def build_send_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run send PIPELINE_FILE --to ADDRESS``."""
    parser = Parser(
        prog="eil-run send",
        description="Send the latest report of one pipeline to ADDRESS now, as its first "
        "email [[deliver]] would (subject, attachments), through the [smtp] server of eil.toml. "
        "For testing: nothing is recorded in the outbox, so it can be repeated.",
    )
    parser.add_argument("path", metavar="PIPELINE_FILE", help="the pipeline file")
    parser.add_argument(
        "--to",
        action="append",
        required=True,
        metavar="ADDRESS",
        help="recipient address (repeatable)",
    )
    parser.add_argument("--reports", metavar="DIR", help="reports folder (default: reports/)")
    add_target(parser)
    add_debug(parser)
    return parser


def cmd_send(options: argparse.Namespace) -> int:
    """Send the latest report; exit 0 when every address took it, 1 otherwise."""
    from ..app.send import send_latest
    from ..app.storage import default_reports_dir
    from ..spec.loader import display_path, project_root_for
    from ..spec.models import EMAIL_PATTERN

    path = Path(options.path)
    if not path.is_file():
        raise UsageError(f"eil-run send: {path}: not a pipeline file")
    bad = [a for a in options.to if not re.match(EMAIL_PATTERN, a)]
    if bad:
        raise UsageError(f'eil-run send: --to: "{bad[0]}" is not an email address')
    reports = (
        Path(options.reports).resolve()
        if options.reports
        else default_reports_dir(project_root_for(path))
    )
    failed = 0
    for sent in send_latest(path, options.to, reports):
        if sent.error is not None:
            print(f"eil-run send: {sent.recipient}: {sent.error}", file=sys.stderr)
            failed += 1
            continue
        shown = display_path(sent.report) if sent.report else "the report"
        print(f"sent {shown} to {sent.recipient}")
    return EXIT_FAILED if failed else EXIT_OK
