"""The ``eil-run`` command: argument parsing and printing only.

This is the one place that prints, exits, and wires the scheduler to the
runner.  Heavy libraries (pandas, matplotlib, duckdb) are imported only by
the commands that run pipelines, so ``--help`` and ``validate`` stay fast.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO

from .errors import ConfigErrors, EilError

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
DEFAULT_PATH = "pipelines"

#: Subcommands: name -> "module:parser_builder:handler", imported only when used so
#: each command's dependencies stay off the others' start-up path.  A command in a
#: module of its own (eil_pipelines/cli_<name>.py) registers with one line here.
COMMANDS = {
    "validate": "eil_pipelines.cli:build_validate_parser:cmd_validate",
    "list": "eil_pipelines.cli:build_list_parser:cmd_list",
    "history": "eil_pipelines.cli:build_history_parser:cmd_history",
    "send": "eil_pipelines.cli_send:build_send_parser:cmd_send",
    "new": "eil_pipelines.cli_new:build_new_parser:cmd_new",
    "schema": "eil_pipelines.cli_schema:build_schema_parser:cmd_schema",
    "backfill": "eil_pipelines.cli_backfill:build_backfill_parser:cmd_backfill",
    "explain": "eil_pipelines.cli_explain:build_explain_parser:cmd_explain",
    "serve": "eil_pipelines.cli_serve:build_serve_parser:cmd_serve",
}

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
1 a run failed, 2 invalid configuration or arguments.
"""


class UsageError(EilError):
    """Bad command-line arguments (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}\nTry '{self.prog} --help'.")


def _add_path(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        nargs="?",
        default=DEFAULT_PATH,
        metavar="PATH",
        help="a pipelines folder or one pipeline file (default: pipelines/)",
    )


def build_main_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run [--once] [PATH]``."""
    parser = _Parser(
        prog="eil-run",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_path(parser)
    parser.add_argument(
        "--once", action="store_true", help="run every enabled pipeline once, now, and exit"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only this pipeline (repeatable); a disabled pipeline named here runs too",
    )
    parser.add_argument(
        "--deliver",
        action="store_true",
        help="with --once: send the deliveries, alerts and failure notices, as a scheduled "
        "run does (recorded in the run ledger); without it --once sends nothing",
    )
    parser.add_argument(
        "--at",
        metavar="DATETIME",
        help="render as if scheduled at this time, read in each pipeline's zone "
        "(e.g. 2026-11-27T07:00); regenerates past reports",
    )
    parser.add_argument(
        "--reports", metavar="DIR", help="reports folder (default: reports/ beside PATH's folder)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=4,
        metavar="N",
        help="pipelines run in parallel (default: 4)",
    )
    parser.add_argument(
        "--chart-processes",
        type=int,
        default=None,
        metavar="N",
        help="processes that draw charts side by side; 0 draws them in the runs' threads "
        "(default: the scheduler starts one per CPU, up to 4; --once draws in its threads)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="scheduler: at shutdown, wait this long for runs in flight (default: 30)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    return parser


def _add_ledger_reader_options(parser: argparse.ArgumentParser) -> None:
    """``--format``, ``--reports`` and ``--debug``: shared by the commands that read the ledger."""
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.add_argument("--reports", metavar="DIR", help="reports folder holding the run ledger")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")


def build_list_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run list [PATH]``."""
    parser = _Parser(
        prog="eil-run list",
        description="Each pipeline: its schedule in words, its next fire times (in its zone and "
        "in UTC) and the status of its last run.",
    )
    _add_path(parser)
    parser.add_argument(
        "--next", type=int, default=3, metavar="N", help="how many fire times (default: 3)"
    )
    _add_ledger_reader_options(parser)
    return parser


def build_history_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run history [PATH]``."""
    parser = _Parser(
        prog="eil-run history",
        description="Recent runs from the run ledger, newest first.  PATH a single pipeline "
        "file shows only that pipeline.",
    )
    _add_path(parser)
    parser.add_argument(
        "--failed", action="store_true", help="only failed, timed-out and abandoned runs"
    )
    parser.add_argument(
        "--limit", type=int, default=20, metavar="N", help="how many runs (default: 20)"
    )
    _add_ledger_reader_options(parser)
    return parser


def build_validate_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run validate [PATH]``."""
    parser = _Parser(
        prog="eil-run validate",
        description="Check every pipeline file in PATH without running queries: keys and types, "
        "schedules, SQL and template files, template syntax.  Prints every problem.  "
        "Exit 0 when all are valid, 2 otherwise.",
    )
    _add_path(parser)
    parser.add_argument(
        "--deep",
        action="store_true",
        help="also prepare each query against its source with the run parameters for now, "
        "check metric and chart columns against the query results, and check the names "
        "templates use (imports DuckDB; reads no rows)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="json: a list of {file, key, message} on stdout, for CI annotations",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``eil-run``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        if args and args[0] in COMMANDS:
            import importlib

            module_name, builder, handler = COMMANDS[args[0]].split(":")
            module = importlib.import_module(module_name)
            return getattr(module, handler)(getattr(module, builder)().parse_args(args[1:]))
        options = build_main_parser().parse_args(args)
        _configure_logging(options.verbose)
        if options.once:
            return cmd_once(options)
        return cmd_schedule(options)
    except ConfigErrors as exc:
        _print_config_errors(exc, sys.stderr)
        return EXIT_CONFIG
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except EilError as exc:
        print(f"eil-run: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print("eil-run: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # argparse's --help
        return int(exc.code or 0)
    except Exception as exc:
        if debug:
            raise
        print(
            f"eil-run: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in eil-run; run again with --debug to see the traceback.",
            file=sys.stderr,
        )
        return EXIT_FAILED


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _print_config_errors(exc: ConfigErrors, out: TextIO) -> None:
    for error in exc.errors:
        print(error, file=out)
    files = len(exc.errors)
    count = exc.problem_count
    print(
        f"\n{count} problem{'s' if count != 1 else ''} in {files} file{'s' if files != 1 else ''}.",
        file=out,
    )


def cmd_validate(options: argparse.Namespace) -> int:
    """``eil-run validate``: load everything, run nothing.

    ``--deep`` also prepares each query and checks columns and template names
    (see :mod:`eil_pipelines.run.deep`); ``--format json`` prints the problems
    as ``[{"file", "key", "message"}]`` for CI annotations.
    """
    import json

    from .run.deep import check_path

    try:
        pipelines, errors = check_path(Path(options.path), deep=options.deep)
    except EilError as exc:
        if options.format != "json":
            raise
        row = {"file": options.path, "key": "", "message": str(exc)}
        print(json.dumps([row], indent=2, ensure_ascii=False))
        return EXIT_CONFIG
    if options.format == "json":
        rows = [
            {"file": error.shown, "key": key, "message": message}
            for error in errors
            for key, message in error.problems
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_CONFIG if rows else EXIT_OK
    if errors:
        raise ConfigErrors(errors)  # main() prints each problem and the count; exit 2
    for pipeline in pipelines:
        state = "" if pipeline.spec.enabled else " (disabled)"
        print(f"ok  {pipeline.display_path}{state}")
    checked = (
        " (deep: queries prepared, columns and template names checked)" if options.deep else ""
    )
    print(f"\n{len(pipelines)} pipeline{'s' if len(pipelines) != 1 else ''} valid{checked}.")
    return EXIT_OK


def parse_at(text: str) -> datetime:
    """Parse ``--at``: an ISO date or date-time, naive (each pipeline's zone) or with an offset."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f'eil-run: --at: invalid date-time "{text}": expected ISO 8601 such as '
            "2026-11-27T07:00 or 2026-11-27"
        ) from None


def select(pipelines: list, only: list[str] | None) -> list:
    """The pipelines to run: the ``--only`` names, else every enabled one."""
    if not only:
        return [p for p in pipelines if p.spec.enabled]
    by_name = {p.name: p for p in pipelines}
    unknown = [n for n in only if n not in by_name]
    if unknown:
        known = ", ".join(sorted(by_name))
        raise UsageError(
            f"eil-run: --only: no pipeline named {', '.join(unknown)} (pipelines: {known})"
        )
    return [by_name[n] for n in dict.fromkeys(only)]


def reports_dir_for(options: argparse.Namespace) -> Path:
    """``--reports`` or ``reports/`` in the project root."""
    if options.reports:
        return Path(options.reports).resolve()
    from .spec import project_root_for

    return project_root_for(Path(options.path)) / "reports"


def cmd_once(options: argparse.Namespace) -> int:
    """``eil-run --once``: every selected pipeline once, a summary table, exit 0 or 1."""
    from .run.batch import run_once
    from .spec import load_pipelines

    _check_counts(options)
    at = parse_at(options.at) if options.at else None
    pipelines = select(load_pipelines(Path(options.path)), options.only)
    if not pipelines:
        print("No enabled pipelines to run.")
        return EXIT_OK
    # A one-shot run allocates many short-lived objects (DataFrames, artists) and
    # ends soon: frequent young-generation collections cost ~0.1 s for nothing.
    import gc

    gc.set_threshold(50_000, 20, 20)
    with contextlib.ExitStack() as stack:
        charts = None
        if options.chart_processes:  # a one-shot run does not pay to start them unasked
            from .charts.processes import ChartProcesses

            charts = stack.enter_context(ChartProcesses(options.chart_processes))
        how = {
            "reports_dir": reports_dir_for(options),
            "at": at,
            "workers": options.workers,
            "chart_processes": charts,
        }
        if options.deliver:
            from .deliver.once import print_deliveries, run_and_deliver

            outcome = run_and_deliver(pipelines, **how)
            print_summary(outcome.results, sys.stdout)
            print_deliveries(outcome.deliveries, sys.stdout)
            return EXIT_OK if outcome.ok else EXIT_FAILED
        results = run_once(pipelines, **how)
    print_summary(results, sys.stdout)
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def _check_counts(options: argparse.Namespace) -> None:
    if options.workers < 1:
        raise UsageError("eil-run: --workers must be at least 1")
    if options.chart_processes is not None and options.chart_processes < 0:
        raise UsageError("eil-run: --chart-processes must be 0 or more")


def print_summary(results: list, out: TextIO) -> None:
    """The table printed after ``--once``: pipeline, status, duration, files written."""
    from .spec.loader import display_path

    rows = []
    for r in results:
        docs = [
            f for f in r.files if f.parent.name == r.pipeline and not f.name.startswith("latest.")
        ]
        images = len([f for f in r.files if f.suffix == ".png"])
        shown = ", ".join(display_path(f) for f in docs)
        if images:
            shown += f" (+{images} chart{'s' if images != 1 else ''})"
        rows.append((r.pipeline, r.status, f"{r.duration:.2f}s", shown or "-"))
    headers = ("pipeline", "status", "duration", "files written")
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers[:3])]
    line = (
        "  ".join(h.ljust(w) for h, w in zip(headers[:3], widths, strict=True)) + "  " + headers[3]
    )
    print(line, file=out)
    for row in rows:
        print(
            "  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3],
            file=out,
        )
    failed = [r for r in results if not r.ok]
    if failed:
        print(file=out)
        for r in failed:
            print(f"{r.pipeline} failed: {r.error}", file=out)
    ok = len(results) - len(failed)
    print(f"\n{ok} succeeded, {len(failed)} failed.", file=out)


def cmd_schedule(options: argparse.Namespace) -> int:
    """``eil-run [PATH]``: the long-running scheduler, in the foreground."""
    import signal
    import threading

    from .run.service import SchedulerService
    from .spec import load_pipelines

    _check_counts(options)
    if options.grace < 0:
        raise UsageError("eil-run: --grace must be 0 or more seconds")
    if options.deliver:
        raise UsageError("eil-run: --deliver goes with --once (the scheduler always delivers)")
    # Validate before writing anything: an invalid folder (or a mistyped PATH)
    # must not leave a reports folder with a log behind.  start() loads again.
    load_pipelines(Path(options.path))
    from .spec import project_root_for
    from .spec.project import load_project_settings

    load_project_settings(project_root_for(Path(options.path)))  # eil.toml, likewise
    reports = reports_dir_for(options)
    _log_to_file(reports / "scheduler.log")
    logging.getLogger("eil_pipelines").setLevel(logging.INFO)
    service = SchedulerService(
        Path(options.path),
        reports_dir=reports,
        workers=options.workers,
        chart_processes=options.chart_processes,
    )
    stop = threading.Event()
    reload_asked = threading.Event()
    interrupts = {"count": 0}

    def on_stop(signum: int, _frame: object) -> None:
        interrupts["count"] += 1
        if interrupts["count"] > 1:
            # A second Ctrl-C: the user does not want to wait for the runs in flight.
            os._exit(130)
        stop.set()

    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: reload_asked.set())
    service.start()
    log = logging.getLogger("eil_pipelines.scheduler")
    log.info("scheduler running (pid %d); Ctrl-C stops it", os.getpid())

    def take_reload() -> bool:
        asked = reload_asked.is_set()
        reload_asked.clear()
        return asked

    from .run.service import run_forever

    run_forever(service, stop, on_reload=take_reload)
    log.info("stopping: waiting up to %gs for runs in flight", options.grace)
    finished = service.stop(options.grace)
    log.info("stopped" if finished else "stopped; unfinished runs recorded as abandoned")
    if not finished:
        # The grace period is over: don't let the interpreter's exit wait for the
        # worker threads of the abandoned runs (it joins them, however long they take).
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_OK)
    return EXIT_OK


def _log_to_file(path: Path) -> None:
    from logging.handlers import RotatingFileHandler

    path.parent.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(path, maxBytes=5_000_000, backupCount=5, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("eil_pipelines")
    logger.addHandler(handler)
    # The console handler comes from basicConfig on the root logger; show INFO there too.
    for root_handler in logging.getLogger().handlers:
        root_handler.setLevel(logging.INFO)
        root_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))


def _open_ledger(reports: Path):
    from .ledger import Ledger
    from .run.service import ledger_path

    path = ledger_path(reports)
    if not path.exists():
        return None
    return Ledger(path)


def cmd_list(options: argparse.Namespace) -> int:
    """``eil-run list``: schedules in words, next fire times, last status."""
    import json
    from datetime import UTC

    from .run.context import pipeline_trigger, pipeline_zone
    from .spec import load_pipelines

    if options.next < 1:
        raise UsageError("eil-run list: --next must be at least 1")
    pipelines = load_pipelines(Path(options.path))
    ledger = _open_ledger(reports_dir_for(options))
    now = datetime.now(UTC)
    rows = []
    for pipeline in pipelines:
        trigger = pipeline_trigger(pipeline)
        zone = pipeline_zone(pipeline)
        fires = []
        if trigger is not None and pipeline.spec.enabled:
            moment = now
            for _ in range(options.next):
                moment = trigger.next_fire(moment)
                fires.append(moment)
        last = ledger.last_run(pipeline.name) if ledger else None
        rows.append(
            {
                "pipeline": pipeline.name,
                "title": pipeline.spec.title,
                "enabled": pipeline.spec.enabled,
                "schedule": trigger.describe() if trigger else "on demand only",
                "timezone": zone.key,
                "next": [
                    {"local": f.astimezone(zone).isoformat(), "utc": f.astimezone(UTC).isoformat()}
                    for f in fires
                ],
                "last_status": last.status if last else None,
                "last_scheduled_at": last.scheduled_at.isoformat() if last else None,
            }
        )
    if ledger is not None:
        ledger.close()
    if options.format == "json":
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    for row in rows:
        state = "" if row["enabled"] else " (disabled)"
        print(f"{row['pipeline']}{state}: {row['title']}")
        print(f"  schedule: {row['schedule']}")
        for fire in row["next"]:
            print(f"  next:     {fire['local']}  ({fire['utc']} UTC)")
        last = (
            f"{row['last_status']} (scheduled {row['last_scheduled_at']})"
            if row["last_status"]
            else "never run"
        )
        print(f"  last run: {last}")
    return EXIT_OK


def cmd_history(options: argparse.Namespace) -> int:
    """``eil-run history``: recent runs from the ledger."""
    import json

    from .spec.loader import load_pipeline

    if options.limit < 1:
        raise UsageError("eil-run history: --limit must be at least 1")
    path = Path(options.path)
    pipeline = None
    if path.is_file():
        pipeline = load_pipeline(path).name
    elif not path.exists():
        raise EilError(f"{path}: no such file or folder")
    ledger = _open_ledger(reports_dir_for(options))
    records = []
    deliveries: dict = {}
    if ledger is not None:
        records = ledger.history(pipeline=pipeline, failed_only=options.failed, limit=options.limit)
        deliveries = ledger.deliveries_by_run(records)
        ledger.close()
    rows = [
        {
            "pipeline": r.pipeline,
            "scheduled_at": r.scheduled_at.isoformat(),
            "started_at": r.started_at.isoformat() if r.started_at else None,
            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            "duration_s": r.duration_s,
            "status": r.status,
            "attempt": r.attempt,
            "error": r.error,
            "files": r.files,
            "deliveries": [d.as_dict() for d in deliveries.get((r.pipeline, r.scheduled_at), [])],
        }
        for r in records
    ]
    if options.format == "json":
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        print("No runs recorded yet.")
        return EXIT_OK
    for row in rows:
        duration = f"{row['duration_s']:.2f}s" if row["duration_s"] is not None else "-"
        print(
            f"{row['scheduled_at']}  {row['pipeline']}  {row['status']}  attempt {row['attempt']}  {duration}"
        )
        if row["error"]:
            print(f"    {row['error']}")
        from .deliver.once import delivery_line

        for delivery in row["deliveries"]:
            if delivery["status"] not in ("sent", "skipped"):  # what still needs attention
                print(f"    {delivery_line(delivery)}")
    return EXIT_OK


def entry() -> None:
    """The ``eil-run`` console script: :func:`main`, then a fast exit.

    Tearing down a thousand imported modules (pandas, matplotlib) takes
    about a quarter of a second and does nothing useful once every file is
    written and every stream flushed, so the process ends with ``os._exit``.
    """
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        logging.shutdown()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
