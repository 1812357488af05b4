"""``eil-run status [PATH]``: the status page's facts, and a health check's exit code."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from ..errors import UsageError
from ..text import printable
from .common import Parser, add_path, reports_dir_for
from .exitcodes import EXIT_FAILED, EXIT_OK
from .listing import add_ledger_reader_options


def build_status_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run status [PATH]``."""
    parser = Parser(
        prog="eil-run status",
        description="The scheduler's heartbeat, what runs now, each pipeline's next fire time, "
        "last run and failures in a row.  Exits 1 when the heartbeat is older than --max-age "
        "(or the scheduler stopped) or a pipeline failed more than --max-failures times in a "
        "row: a container or systemd health check.",
    )
    add_path(parser)
    parser.add_argument(
        "--max-age",
        default="60s",
        metavar="DURATION",
        help="a heartbeat older than this is unhealthy (default: 60s; the scheduler beats "
        "every 5s)",
    )
    parser.add_argument(
        "--max-failures",
        type=int,
        default=None,
        metavar="N",
        help="unhealthy when a pipeline failed more than N times in a row (default: no limit)",
    )
    add_ledger_reader_options(parser)
    return parser


def _max_age(text: str) -> timedelta:
    from ..schedule.durations import parse_duration

    try:
        return parse_duration(text, minimum=timedelta(seconds=1))
    except ValueError as exc:
        raise UsageError(f"eil-run status: --max-age: {exc}") from None


def cmd_status(options: argparse.Namespace) -> int:
    """Print the status; exit 0 when healthy, 1 when not (docs/status.md)."""
    from ..app.status import status_report

    if options.max_failures is not None and options.max_failures < 0:
        raise UsageError("eil-run status: --max-failures must be 0 or more")
    report = status_report(
        Path(options.path),
        reports_dir_for(options),
        max_age=_max_age(options.max_age),
        max_failures=options.max_failures,
    )
    if options.format == "json":
        print(json.dumps(report, indent=2))
    else:
        print_status(report)
    return EXIT_OK if report["health"]["ok"] else EXIT_FAILED


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 120:
        return f"{whole}s"
    if whole < 7200:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def print_status(report: Mapping[str, Any], out: TextIO | None = None) -> None:
    """``eil-run status``: the heartbeat, the runners, a table of pipelines, invalid files,
    and the health verdict last."""
    scheduler = report["scheduler"]
    if report["ledger_error"]:
        print(f"ledger:    {printable(report['ledger_error'])}", file=out)
    if scheduler is None:
        print("scheduler: no heartbeat recorded", file=out)
    else:
        state = "stopped" if scheduler["stopped"] else "alive" if scheduler["alive"] else "silent"
        print(
            f"scheduler: {state}, last beat {_ago(scheduler['age_s'])} ago "
            f"({scheduler['last_beat']}), node {printable(scheduler['node'])}, "
            f"version {printable(scheduler['version'])}",
            file=out,
        )
    for node in report["nodes"][1:]:
        state = "stopped" if node["stopped"] else "alive" if node["alive"] else "silent"
        print(
            f"runner:    {printable(node['node'])}: {state}, last beat {_ago(node['age_s'])} ago",
            file=out,
        )
    rows = [("PIPELINE", "SCHEDULE", "NEXT (its zone)", "LAST", "DURATION", "RUNNING", "FAILS")]
    for row in report["pipelines"]:
        last = row["last"]
        running = row["running"]
        rows.append(
            (
                printable(row["pipeline"], keep_newlines=False),
                printable(row["schedule"], keep_newlines=False) if row["enabled"] else "disabled",
                row["next"]["local"] if row["next"] else "-",
                last["status"] if last else "never run",
                f"{last['duration_s']:.1f}s" if last and last["duration_s"] is not None else "-",
                f"for {_ago(running[0]['running_s'])}" if running else "-",
                str(row["failures_in_a_row"]),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for line in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip(),
            file=out,
        )
    for broken in report["invalid"]:
        print(f"invalid:   {printable(broken['file'])}", file=out)
        for problem in broken["problems"]:
            print(f"  problem: {printable(problem)}", file=out)
    verdict = report["health"]
    print("health:    ok" if verdict["ok"] else "health:    UNHEALTHY", file=out)
    for problem in verdict["problems"]:
        print(f"  {printable(problem)}", file=out)
