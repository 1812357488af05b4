"""Tables and lines the commands print: the ``--once`` summary, deliveries, config errors.

Every piece of user text (errors quoting data, file names, recipients) goes
through :func:`~eil_pipelines.text.printable`: no raw control character
reaches the terminal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from ..errors import ConfigErrors
from ..text import printable


def print_config_errors(exc: ConfigErrors, out: TextIO) -> None:
    """Every problem of every file, then the count."""
    for error in exc.errors:
        print(error, file=out)
    files = len(exc.errors)
    count = exc.problem_count
    print(
        f"\n{count} problem{'s' if count != 1 else ''} in {files} file{'s' if files != 1 else ''}.",
        file=out,
    )


def print_summary(results: Sequence[Any], out: TextIO) -> None:
    """The table printed after ``--once``: pipeline, status, duration, files written."""
    from ..spec.loader import display_path

    rows = []
    for r in results:
        docs = [
            f for f in r.files if f.parent.name == r.pipeline and not f.name.startswith("latest.")
        ]
        images = len([f for f in r.files if f.suffix == ".png"])
        shown = printable(", ".join(display_path(f) for f in docs), keep_newlines=False)
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
            print(f"{r.pipeline} failed: {printable(r.error)}", file=out)
    ok = len(results) - len(failed)
    print(f"\n{ok} succeeded, {len(failed)} failed.", file=out)


def delivery_line(delivery: Mapping[str, Any]) -> str:
    """One delivery (a :meth:`DeliveryRecord.as_dict` mapping) for people:
    ``report email to cfo@example.com: failed (attempt 1 of 8, next 2026-…): error``."""
    what = f"{delivery['kind'].replace('_', ' ')} {delivery['channel']} to {delivery['recipient']}"
    attempts = delivery["attempts"]
    if delivery["status"] == "failed":
        state = (
            f"failed (attempt {attempts} of {delivery['max_attempts']}, "
            f"next {delivery['next_attempt_at']})"
        )
    elif delivery["status"] == "gave_up":
        state = f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}"
    else:
        state = delivery["status"]
    line = f"{what}: {state}" + (f": {delivery['error']}" if delivery["error"] else "")
    return printable(line)


def print_deliveries(records: Sequence[Any], out: TextIO) -> None:
    """The deliveries table printed after ``--once --deliver``."""
    print("\ndeliveries:", file=out)
    if not records:
        print("  none", file=out)
        return
    for record in records:
        print(f"  {record.pipeline}: {delivery_line(record.as_dict())}", file=out)
    waiting = [r for r in records if r.status in ("pending", "failed")]
    if waiting:
        print(
            f"\n{len(waiting)} not delivered yet: the scheduler (eil-run PATH) or the next "
            "--once --deliver tries again.",
            file=out,
        )
