"""``eil-run backfill PIPELINE_FILE --from DATE --to DATE``: past reports, as scheduled then."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
import time as _time
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO

from .cli import EXIT_FAILED, EXIT_OK, UsageError, _Parser
from .cli_explain import load_one, parse_moment

EXIT_INTERRUPTED = 130


def build_backfill_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run backfill``."""
    parser = _Parser(
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
    parser.add_argument(
        "--reprocess",
        choices=("none", "failed", "all"),
        default="none",
        help="run recorded times again: none (default), failed (also failed, timed-out and "
        "abandoned runs), all (also succeeded ones)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="runs at once (default: 1); they still start oldest first",
    )
    parser.add_argument(
        "--reports", metavar="DIR", help="reports folder (default: reports/ in the project root)"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    return parser


def parse_to(text: str, zone: Any) -> datetime:
    """``--to``: a date means through the end of that day; a date-time is that instant."""
    moment = parse_moment(text, "--to", "backfill", zone)
    if "T" in text or " " in text.strip():
        return moment
    next_day = datetime.combine(moment.date() + timedelta(days=1), time(), tzinfo=moment.tzinfo)
    return (next_day.astimezone(UTC) - timedelta(microseconds=1)).astimezone(moment.tzinfo)


def cmd_backfill(options: argparse.Namespace) -> int:
    """Plan, then run (or list, with ``--dry-run``) the fire times of the range."""
    from .ledger import Ledger
    from .run.backfill import fire_times, lease_name, plan, run_backfill
    from .run.context import pipeline_trigger, pipeline_zone
    from .run.explain import format_offset
    from .run.service import ledger_path
    from .spec.loader import display_path

    if options.workers < 1:
        raise UsageError("eil-run backfill: --workers must be at least 1")
    pipeline = load_one(options.file, "backfill")
    trigger = pipeline_trigger(pipeline)
    if trigger is None:
        folder = display_path(pipeline.file.parent)
        raise UsageError(
            f"eil-run backfill: {pipeline.display_path} has no [schedule], so it has no fire "
            f"times to backfill; render one past report with: "
            f"eil-run --once --only {pipeline.name} --at DATETIME {folder}"
        )
    zone = pipeline_zone(pipeline)
    start = parse_moment(options.start, "--from", "backfill", zone)
    end = parse_to(options.end, zone)
    if start > end:
        raise UsageError(f"eil-run backfill: --from {options.start} is after --to {options.end}")

    def shown(moment: datetime) -> str:
        local = moment.astimezone(zone)
        clock = "%H:%M:%S" if local.second else "%H:%M"
        return f"{local:%Y-%m-%d} {local.strftime(clock)} {format_offset(local)}"

    now = datetime.now(UTC)
    # Fire times after now are the scheduler's: a backfilled future time would be
    # in the ledger already when it comes, and the scheduler would not run it.
    times = fire_times(trigger, start, min(end, now))
    later = " (fire times after now are left to the scheduler)" if end > now else ""
    what = f"{pipeline.name} ({trigger.describe()})"
    if not times:
        print(
            f"No fire times of {what} from {options.start} to {options.end}{later}: "
            "nothing to backfill."
        )
        return EXIT_OK

    reports = Path(options.reports).resolve() if options.reports else pipeline.root / "reports"
    path = ledger_path(reports)
    if options.dry_run:
        ledger = Ledger(path) if path.exists() else None
        try:
            planned = plan(pipeline, times, ledger, options.reprocess)
        finally:
            if ledger is not None:
                ledger.close()
        print(f"Backfill of {what}: {len(times)} fire times{later}:")
        for item in planned:
            print(f"  {shown(item.scheduled_at)}  {item.reason}")
        runs = sum(1 for p in planned if p.run)
        print(f"\nWould run {runs}, skip {len(planned) - runs}.  (Dry run: nothing was run.)")
        return EXIT_OK

    ledger = Ledger(path)
    lease = lease_name(pipeline.name)
    holder = f"eil-run backfill {pipeline.display_path} --from {options.start} --to {options.end}"
    taken = ledger.acquire_lease(lease, holder=holder, now=now)
    if taken is not None:
        ledger.close()
        raise UsageError(
            f'eil-run backfill: another backfill of "{pipeline.name}" is running: {taken}; '
            "wait for it to finish (one backfill per pipeline at a time)"
        )
    stop = threading.Event()
    restore = _on_interrupt(stop)
    try:
        planned = plan(pipeline, times, ledger, options.reprocess)
        todo = [p for p in planned if p.run]
        skipped = len(planned) - len(todo)
        print(
            f"Backfill of {what}: {len(times)} fire times from {shown(times[0])} to "
            f"{shown(times[-1])}{later}; {len(todo)} to run, {skipped} skipped.",
            flush=True,
        )
        progress = Progress(len(todo), sys.stderr, shown)
        outcomes = run_backfill(
            pipeline,
            planned,
            ledger=ledger,
            reports_dir=reports,
            reprocess=options.reprocess,
            workers=options.workers,
            stop=stop,
            on_done=progress.done,
        )
        progress.close()
    finally:
        restore()
        ledger.release_lease(lease)
        ledger.close()

    succeeded = [o for o in outcomes if o.status == "succeeded"]
    failed = [o for o in outcomes if o.status == "failed"]
    taken_meanwhile = [o for o in outcomes if o.status == "skipped"]
    parts = [f"{len(succeeded)} succeeded", f"{len(failed)} failed"]
    if skipped or taken_meanwhile:
        parts.append(f"{skipped + len(taken_meanwhile)} skipped")
    print("\n" + ", ".join(parts) + ".")
    for outcome in failed:
        print(f"  failed: {shown(outcome.scheduled_at)}: {outcome.error}")
    if stop.is_set():
        ended = {o.scheduled_at.astimezone(UTC) for o in outcomes}
        left = [p for p in todo if p.scheduled_at.astimezone(UTC) not in ended]
        if left:
            print(
                f"\nInterrupted: {len(left)} of {len(todo)} runs did not start.  Resume with:\n"
                f"  {resume_command(options, left[0].scheduled_at.astimezone(zone))}"
            )
            return EXIT_INTERRUPTED
    return EXIT_FAILED if failed else EXIT_OK


def resume_command(options: argparse.Namespace, first_left: datetime) -> str:
    """The command that carries on from ``first_left`` with the same options."""
    words = ["eil-run", "backfill", options.file, "--from", first_left.isoformat()]
    words += ["--to", options.end]
    if options.reprocess != "none":
        words += ["--reprocess", options.reprocess]
    if options.workers != 1:
        words += ["--workers", str(options.workers)]
    if options.reports:
        words += ["--reports", options.reports]
    return " ".join(shlex.quote(w) for w in words)


def _on_interrupt(stop: threading.Event) -> Any:
    """Ctrl-C sets ``stop`` (runs in flight finish); a second one quits at once.

    Returns a function that puts the previous handler back.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGINT)
    count = {"n": 0}

    def handler(_signum: int, _frame: Any) -> None:
        count["n"] += 1
        if count["n"] > 1:
            # The runs in flight keep their ledger rows "running"; the scheduler's
            # next start marks them abandoned, and --reprocess failed runs them.
            os._exit(EXIT_INTERRUPTED)
        stop.set()
        print(
            "\nStopping after the runs in flight (Ctrl-C again to quit at once)...",
            file=sys.stderr,
            flush=True,
        )

    signal.signal(signal.SIGINT, handler)
    return lambda: signal.signal(signal.SIGINT, previous)


class Progress:
    """Progress to ``out``: a bar redrawn in place on a terminal, one line per run otherwise."""

    WIDTH = 24

    def __init__(
        self,
        total: int,
        out: TextIO,
        shown: Any = str,
        *,
        tty: bool | None = None,
        clock: Any = _time.monotonic,
    ):
        self.total = total
        self.out = out
        self.shown = shown
        self.tty = out.isatty() if tty is None else tty
        self.clock = clock
        self.started = clock()
        self.count = 0

    def done(self, outcome: Any) -> None:
        """Count a finished run and show it."""
        self.count += 1
        took = f"in {outcome.duration:.2f}s"
        line = f"[{self.count}/{self.total}] {self.shown(outcome.scheduled_at)} {outcome.status}"
        if outcome.status == "failed":
            line += f" {took}: {outcome.error}"
        elif outcome.status == "skipped":
            line += f": {outcome.error}"
        else:
            line += f" {took}"
        if not self.tty:
            print(line, file=self.out, flush=True)
            return
        if outcome.status != "succeeded":
            # Keep failures on screen: print them above the bar.
            self.out.write("\r\x1b[K" + line + "\n")
        self.out.write("\r\x1b[K" + self.bar())
        self.out.flush()

    def bar(self) -> str:
        """``12/48 [######..................] 3.1 runs/s, 0:00:12 left``."""
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = self.count / elapsed
        filled = round(self.WIDTH * self.count / self.total) if self.total else self.WIDTH
        left = (self.total - self.count) / rate if rate > 0 else 0.0
        return (
            f"{self.count}/{self.total} [{'#' * filled}{'.' * (self.WIDTH - filled)}] "
            f"{rate:.1f} runs/s, {_clock(left)} left"
        )

    def close(self) -> None:
        """End the bar's line (a terminal only)."""
        if self.tty and self.count:
            self.out.write("\n")
            self.out.flush()


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
