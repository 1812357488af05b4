"""``eil-run [--once] [PATH]``: the main parser; ``--once`` runs each pipeline once."""

from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path

from ..errors import UsageError
from .common import (
    Parser,
    add_path,
    check_counts,
    reports_dir_for,
    with_param_options,
)
from .exitcodes import EXIT_CONFIG, EXIT_COULD_NOT_RUN, EXIT_FAILED, EXIT_OK
from .help_text import DESCRIPTION
from .logs import add_log_options, configure_logging
from .moments import parse_at
from .schedule import add_scheduler_options


def build_main_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run [--once] [PATH]``."""
    parser = Parser(
        prog="eil-run",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_path(parser, target=True)  # --target NAME too
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
    add("--ignore-require", action="store_true", help="with --once: run even if a gate is shut")
    add(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="with --once: set a [params] value for this run only (repeatable), checked "
        "against the type in the file and recorded in the manifest",
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
    add_log_options(parser, log_file=True)
    add("--debug", action="store_true", help="show tracebacks of internal errors")
    return parser


def cmd_main(options: argparse.Namespace) -> int:
    """``eil-run [PATH]`` (the scheduler) or ``eil-run --once [PATH]``."""
    configure_logging(options.verbose, options.log_format)
    if options.once:
        return cmd_once(options)
    from .schedule import cmd_schedule

    return cmd_schedule(options)


def cmd_once(options: argparse.Namespace) -> int:
    """``eil-run --once``: every selected pipeline once, a summary table, exit 0, 1 or 2.

    The valid pipelines run, then the problems of invalid files are printed (exit 2,
    docs/cli.md); with ``--only``, problems in other files are only counted.
    """
    from ..app.once import once, select_pipelines
    from ..errors import ConfigErrors
    from ..spec.loader import load_pipelines_lenient
    from .printing import print_config_errors, print_deliveries, print_summary

    check_counts(options)
    if options.processes != 1:
        raise UsageError(
            "eil-run: --processes goes with the scheduler; --once runs in one process "
            "(--workers sets how many pipelines run at once)"
        )
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
    pipelines = with_param_options(pipelines, options.param, "eil-run")
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
        ignore_require=options.ignore_require,
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
