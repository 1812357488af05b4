"""``eil-run backfill --with-dependents``: the pipelines that wait for the backfilled one.

The options that say which runs a backfill does (``--reprocess``,
``--with-dependents``), and what it prints for the dependents: each one's plan
and outcome, upstream first.  The use case is :mod:`..app.backfill_dependents`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from .exitcodes import EXIT_FAILED, EXIT_INTERRUPTED
from .progress import Progress, local_text, print_outcome, resume_command, say_stopping
from .signals import stop_on_signals


def add_scope_options(parser: argparse.ArgumentParser) -> None:
    """``--reprocess`` and ``--with-dependents``: which runs the backfill does."""
    parser.add_argument(
        "--reprocess",
        choices=("none", "failed", "all"),
        default="none",
        help="run recorded times again: none (default), failed (also failed, timed-out and "
        "abandoned runs), all (also succeeded ones)",
    )
    parser.add_argument(
        "--with-dependents",
        action="store_true",
        help="then backfill every pipeline of the folder that waits for this one ([schedule] "
        "after), directly or not, upstream first, over the same range; a dependent's time runs "
        "only when its upstream runs for its period succeeded, else it is recorded failed",
    )


def then_dependents(
    options: argparse.Namespace,
    pipeline: Any,
    start: datetime,
    end: datetime,
    reports: Path,
    code: int,
    interrupted: bool = False,
) -> int:
    """After the upstream's backfill (or its dry run) ended with ``code``: the dependents'
    (with ``--with-dependents``); none when the upstream's was ``interrupted``.  Returns
    the exit status of the whole backfill."""
    if not getattr(options, "with_dependents", False):
        return code
    if interrupted:  # Ctrl-C as the upstream's last runs ended: the dependents wait
        print("\nInterrupted: the dependents did not start.  Resume with:")
        print(f"  {resume_command(options, start)}")
        return EXIT_INTERRUPTED
    from ..app.backfill import dry_run
    from ..app.backfill_dependents import backfill_dependent, find_dependents
    from ..run.context import pipeline_zone
    from ..spec.dependencies import upstream_names

    found = find_dependents(pipeline, start, end)
    for shown_file in found.invalid:
        print(f"(left out: {shown_file} is not valid; eil-run validate says why)")
    for name in found.disabled:
        print(f"(left out: {name} is disabled, so the scheduler does not run it)")
    if not found.order:
        if found.disabled:
            return code
        print(
            f"\nNo pipeline waits for {pipeline.name} ([schedule] after): no dependents to backfill."
        )
        return code
    names = ", ".join(d.name for d in found.order)
    print(f"\nDependents of {pipeline.name}, upstream first: {names}.")
    with stop_on_signals(
        threading.Event(), signals=(signal.SIGINT,), on_first=say_stopping
    ) as stop:
        for dependent in found.order:
            shown = local_text(pipeline_zone(dependent.pipeline))
            what = f"{dependent.name} ({dependent.described}, after {', '.join(upstream_names(dependent.pipeline))})"
            if not dependent.times:
                print(f"\nNo fire times of {what} in the range: nothing to backfill.")
                continue
            if options.dry_run:
                planned = dry_run(
                    dependent.pipeline,
                    dependent.times,
                    reports_dir=reports,
                    reprocess=options.reprocess,
                )
                print(f"\nBackfill of {what}: {len(dependent.times)} fire times:")
                for item in planned:
                    print(f"  {shown(item.scheduled_at)}  {item.reason}")
                runs = sum(1 for p in planned if p.run)
                print(
                    f"Would run {runs}, skip {len(planned) - runs}; each only if its upstream runs "
                    "for its period succeed.  (Dry run: nothing was run.)"
                )
                continue
            progress = Progress(0, sys.stderr, shown)

            def on_planned(
                planned: list[Any], what: str = what, progress: Progress = progress
            ) -> None:
                runs = sum(1 for p in planned if p.run)
                print(
                    f"\nBackfill of {what}: {len(planned)} fire times; {runs} to run, "
                    f"{len(planned) - runs} skipped.",
                    flush=True,
                )
                progress.total = runs

            holder = f"eil-run backfill --with-dependents of {pipeline.display_path}"
            planned, outcomes = backfill_dependent(
                found,
                dependent,
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
            code = EXIT_FAILED if failed else code
            if stop.is_set():
                if not left:
                    print(
                        "\nInterrupted: the dependents after this one did not start.  Resume with:"
                    )
                # Succeeded times are skipped on a second go: the same range resumes.
                print(f"  {resume_command(options, start)}")
                return EXIT_INTERRUPTED
    return code
