"""``eil-run [--once] [PATH]``: the main parser; ``--once`` runs each pipeline once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import Parser, add_path, check_counts, configure_logging, parse_at, reports_dir_for
from .exitcodes import EXIT_CONFIG, EXIT_COULD_NOT_RUN, EXIT_FAILED, EXIT_OK
from .schedule import add_scheduler_options

DESCRIPTION = """\
Executive reports as code: each TOML file in PATH (default pipelines/) is a
report; eil-run runs them on their schedules, or once with --once.

commands:
  eil-run [PATH]                 run the scheduler in the foreground
  eil-run --once [PATH]          run every enabled pipeline once, now, and exit
  eil-run validate [PATH]        check every pipeline file without running queries
  eil-run list [PATH]            schedules in words, next fire times, last status
  eil-run history [PATH]         recent runs from the run ledger
  eil-run send FILE --to ADDR    mail a pipeline's latest report to ADDR, for testing
  eil-run new NAME               a new pipeline file and template that run at once
  eil-run explain FILE           a schedule's next fire times, periods, DST notes
  eil-run backfill FILE --from DATE --to DATE   past reports, as scheduled then
  eil-run schema                 the pipeline file's JSON Schema, for editors
  eil-run serve [PATH]           serve the reports folder on 127.0.0.1 (--port N)

PATH is a pipelines folder or a single pipeline file.  Exit status: 0 success,
1 a run failed, 2 invalid configuration or arguments, 3 could not run (ledger
locked, disk full or read-only, another backfill running).
"""


def build_main_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run [--once] [PATH]``."""
    parser = Parser(
        prog="eil-run",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_path(parser)
    add = parser.add_argument
    add("--once", action="store_true", help="run every enabled pipeline once, now, and exit")
    add(
        "--only",
        action="append",
        metavar="NAME",
        help="run only this pipeline (repeatable); a disabled pipeline named here runs too",
    )
    add(
        "--deliver",
        action="store_true",
        help="with --once: send the deliveries, alerts and failure notices, as a scheduled "
        "run does (recorded in the run ledger); without it --once sends nothing",
    )
    add(
        "--at",
        metavar="DATETIME",
        help="render as if scheduled at this time, read in each pipeline's zone "
        "(e.g. 2026-11-27T07:00); regenerates past reports",
    )
    add("--reports", metavar="DIR", help="reports folder (default: reports/ beside PATH's folder)")
    add(
        "--workers", type=int, default=4, metavar="N", help="pipelines run in parallel (default: 4)"
    )
    add(
        "--chart-processes",
        type=int,
        default=None,
        metavar="N",
        help="processes that draw charts side by side; 0 draws them in the runs' threads "
        "(default: the scheduler starts one per CPU, up to 4; --once draws in its threads)",
    )
    add_scheduler_options(parser)
    add("-v", "--verbose", action="store_true", help="log each step")
    add("--debug", action="store_true", help="show tracebacks of internal errors")
    return parser


def cmd_main(options: argparse.Namespace) -> int:
    """``eil-run [PATH]`` (the scheduler) or ``eil-run --once [PATH]``."""
    configure_logging(options.verbose)
    if options.once:
        return cmd_once(options)
    from .schedule import cmd_schedule

    return cmd_schedule(options)


def cmd_once(options: argparse.Namespace) -> int:
    """``eil-run --once``: every selected pipeline once, a summary table, exit 0, 1 or 2.

    A bad file never stops the good ones: the valid pipelines run, then the
    problems of the invalid files are printed and the exit status is 2 (over
    1 for a failed run: see docs/cli.md, "Exit status").  With ``--only``,
    problems in other files are only counted, in one line.
    """
    import gc

    from ..app.once import once, select_pipelines
    from ..errors import ConfigErrors
    from ..spec.loader import load_pipelines_lenient
    from .printing import print_config_errors, print_deliveries, print_summary

    check_counts(options)
    at = parse_at(options.at) if options.at else None
    valid, errors = load_pipelines_lenient(Path(options.path))
    pipelines = select_pipelines(valid, errors, options.only)
    if options.only and errors:
        count = len(errors)
        print(
            f"note: {count} other pipeline file{' has' if count == 1 else 's have'} problems "
            "(eil-run validate shows them)",
            file=sys.stderr,
        )
        errors = []  # --only: the named pipelines are valid; the others are not our business
    if not pipelines:
        if errors:
            raise ConfigErrors(errors)
        print("No enabled pipelines to run.")
        return EXIT_OK
    # A one-shot run allocates many short-lived objects (DataFrames, artists) and
    # ends soon: frequent young-generation collections cost ~0.1 s for nothing.
    gc.set_threshold(50_000, 20, 20)
    outcome = once(
        pipelines,
        reports_dir=reports_dir_for(options),
        at=at,
        workers=options.workers,
        deliver=options.deliver,
        chart_processes=options.chart_processes,
    )
    print_summary(outcome.results, sys.stdout)
    if outcome.delivered:
        print_deliveries(outcome.deliveries, sys.stdout)
    if errors:
        sys.stdout.flush()  # the summary first, then the problems, as a terminal shows them
        print_config_errors(ConfigErrors(errors), sys.stderr)
        return EXIT_CONFIG
    if any(result.could_not_run for result in outcome.results):
        return EXIT_COULD_NOT_RUN
    return EXIT_OK if outcome.ok else EXIT_FAILED
