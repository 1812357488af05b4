"""What backfill prints as it goes: progress, and the command that resumes it."""

from __future__ import annotations

import argparse
import shlex
import sys
import time as _time
from datetime import UTC, datetime
from typing import Any, TextIO


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
    if getattr(options, "with_dependents", False):
        words.append("--with-dependents")
    return " ".join(shlex.quote(w) for w in words)


def local_text(zone: Any) -> Any:
    """A function showing a moment as ``2026-03-29 03:00 +02:00`` in ``zone``."""
    from ..run.explain import format_offset

    def shown(moment: datetime) -> str:
        local = moment.astimezone(zone)
        clock = "%H:%M:%S" if local.second else "%H:%M"
        return f"{local:%Y-%m-%d} {local.strftime(clock)} {format_offset(local)}"

    return shown


def print_outcome(
    planned: list[Any], outcomes: list[Any], shown: Any, *, interrupted: bool
) -> tuple[list[Any], list[Any]]:
    """The counts, each failure and, when interrupted, how many runs did not start.

    Returns the failed outcomes and the planned runs left (the caller prints how to resume).
    """
    todo = [p for p in planned if p.run]
    succeeded = [o for o in outcomes if o.status == "succeeded"]
    failed = [o for o in outcomes if o.status == "failed"]
    skipped = len(planned) - len(todo) + sum(1 for o in outcomes if o.status == "skipped")
    parts = [f"{len(succeeded)} succeeded", f"{len(failed)} failed"]
    if skipped:
        parts.append(f"{skipped} skipped")
    print("\n" + ", ".join(parts) + ".")
    for outcome in failed:
        print(f"  failed: {shown(outcome.scheduled_at)}: {outcome.error}")
    left: list[Any] = []
    if interrupted:
        ended = {o.scheduled_at.astimezone(UTC) for o in outcomes}
        left = [p for p in todo if p.scheduled_at.astimezone(UTC) not in ended]
        if left:
            print(f"\nInterrupted: {len(left)} of {len(todo)} runs did not start.  Resume with:")
    return failed, left


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


def say_stopping() -> None:
    """Say that a first Ctrl-C stops after the runs in flight."""
    print(
        "\nStopping after the runs in flight (Ctrl-C again to quit at once)...",
        file=sys.stderr,
        flush=True,
    )
