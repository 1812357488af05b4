"""``eil-run backfill PIPELINE_FILE --from DATE --to DATE``: past reports, as scheduled then."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .backfill_dependents import add_scope_options, then_dependents
from .common import Parser, add_debug, add_target, load_one, with_param_options
from .exitcodes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from .moments import parse_moment, parse_to
from .progress import Progress, local_text, print_outcome, resume_command, say_stopping
from .signals import stop_on_signals


def build_backfill_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run backfill``."""
    parser = Parser(
        prog="eil-run backfill",
        description="Run a pipeline for every fire time of its schedule from --from to --to, "
        "oldest first, each as if the scheduler had fired it then (its period, its dates in "
        "file names), recording each in the run ledger.  Times that already succeeded are "
        "skipped.  Ctrl-C stops after the runs in flight and prints how to resume.",
    )
    parser.add_argument("file", metavar="PIPELINE_FILE", help="one pipeline file (.toml)")
    parser.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="DATE",
        help="first day (2026-03-01) or time (2026-03-01T07:00); naive values are read in "
        "the pipeline's zone",
    )
    parser.add_argument(
        "--to",
        dest="end",
        required=True,
        metavar="DATE",
        help="last day, inclusive: a date means through the end of that day; or a time",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the fire times and what would run or be skipped; run and record nothing",
    )
    add_scope_options(parser)  # --reprocess, --with-dependents
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="runs at once (default: 1); they still start oldest first",
    )
    parser.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="set a [params] value for these runs (repeatable), checked against the type in "
        "the file and recorded in each manifest",
    )
    parser.add_argument(
        "--reports", metavar="DIR", help="reports folder (default: reports/ in the project root)"
    )
    add_target(parser)
    add_debug(parser)
    return parser


def cmd_backfill(options: argparse.Namespace) -> int:
    """Plan, then run (or list, with ``--dry-run``) the fire times of the range."""
    from ..app.backfill import backfill, backfill_trigger, dry_run, fire_times
    from ..app.storage import default_reports_dir
    from ..run.context import pipeline_zone

    if options.workers < 1:
        raise UsageError("eil-run backfill: --workers must be at least 1")
    pipeline = load_one(options.file, "backfill")
    (pipeline,) = with_param_options([pipeline], options.param, "eil-run backfill")
    trigger = backfill_trigger(pipeline)
    zone = pipeline_zone(pipeline)
    start = parse_moment(options.start, "--from", "backfill", zone)
    end = parse_to(options.end, zone)
    if start > end:
        raise UsageError(f"eil-run backfill: --from {options.start} is after --to {options.end}")

    shown = local_text(zone)
    now = datetime.now(UTC)
    # Fire times after now are the scheduler's: a backfilled future time would be
    # in the ledger already when it comes, and the scheduler would not run it.
    times = fire_times(trigger, start, min(end, now))
    later = " (fire times after now are left to the scheduler)" if end > now else ""
    what = f"{pipeline.name} ({trigger.describe()})"
    reports = (
        Path(options.reports).resolve() if options.reports else default_reports_dir(pipeline.root)
    )
    if not times:
        print(
            f"No fire times of {what} from {options.start} to {options.end}{later}: "
            "nothing to backfill."
        )
        return then_dependents(options, pipeline, start, end, reports, EXIT_OK)
    if options.dry_run:
        planned = dry_run(pipeline, times, reports_dir=reports, reprocess=options.reprocess)
        print(f"Backfill of {what}: {len(times)} fire times{later}:")
        for item in planned:
            print(f"  {shown(item.scheduled_at)}  {item.reason}")
        runs = sum(1 for p in planned if p.run)
        print(f"\nWould run {runs}, skip {len(planned) - runs}.  (Dry run: nothing was run.)")
        return then_dependents(options, pipeline, start, end, reports, EXIT_OK)

    def on_planned(planned: list[Any]) -> None:
        runs = sum(1 for p in planned if p.run)
        print(
            f"Backfill of {what}: {len(times)} fire times from {shown(times[0])} to "
            f"{shown(times[-1])}{later}; {runs} to run, {len(planned) - runs} skipped.",
            flush=True,
        )
        progress.total = runs

    progress = Progress(0, sys.stderr, shown)
    holder = f"eil-run backfill {pipeline.display_path} --from {options.start} --to {options.end}"
    with stop_on_signals(
        threading.Event(), signals=(signal.SIGINT,), on_first=say_stopping
    ) as stop:
        planned, outcomes = backfill(
            pipeline,
            times,
            reports_dir=reports,
            reprocess=options.reprocess,
            holder=holder,
            workers=options.workers,
            stop=stop,
            on_planned=on_planned,
            on_done=progress.done,
        )
        progress.close()
    failed, left = print_outcome(planned, outcomes, shown, interrupted=stop.is_set())
    if left:
        print(f"  {resume_command(options, left[0].scheduled_at.astimezone(zone))}")
        return EXIT_INTERRUPTED
    code = EXIT_FAILED if failed else EXIT_OK
    return then_dependents(options, pipeline, start, end, reports, code, stop.is_set())
