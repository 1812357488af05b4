"""Scheduling lateness with and without dependencies (issue 15, "Done means").

Run from anywhere (about 3 minutes with the defaults)::

    python benchmarks/bench_dependencies.py [--pipelines 1000] [--dependents 100]
        [--seconds 70] [--interval 60] [--workers 4] [--real-runs] [--keep]

Two passes in one process, each the real :class:`SchedulerService` (its
loop thread, its workers, the waiter, the SQLite run ledger, real pipeline
files of a temporary project), on the system clock:

* ``without after``: ``--pipelines`` tiny pipelines (one ``SELECT`` in DuckDB,
  a Markdown report), ``every = "{interval}s"``, their grids anchored on
  different seconds so about ``pipelines / interval`` fire each second;
* ``with after``: the same files, except that ``--dependents`` of them wait
  for three of the others (``[schedule] after``) that fire at the same second:
  each of their runs asks the ledger whether its upstream runs succeeded
  (:mod:`eil_pipelines.app.dependencies`), usually has to wait (a ``waiting``
  row), and is started by the waiter when the upstream runs end.

By default a run does almost nothing: the service's ledgered run is real
(claim, finish, the waiter's checks, the upstream rule on the ledger), but
the pipeline's own work (``run_pipeline``: the query, the report) is
replaced by a succeeded result, so the figures are the scheduling's cost and
not the queries' (a real tiny run costs 50-90 ms of CPU on the 2-core VM:
1,000 of them a minute would saturate it and measure only the queue).
``--real-runs`` runs the pipelines for real (use fewer of them).

For each pass, over the fire times from ``--warmup`` seconds after the start
to ``--seconds``:

* **dispatch**: the loop thread's lateness, the moment it dispatches a fire
  time minus that fire time, for every job (measured as in
  ``bench_scheduler_growth.py``: a wrapper on ``Scheduler._fire``);
* **claim**: the ledger row's start minus its fire time, for the pipelines
  that are never dependents (the worker queue is in it);
* **dependents**: the same for the ``--dependents`` pipelines; in the second
  pass it includes their wait for their upstream runs (not the scheduler's
  lateness: what a user sees).

A short unmeasured warm-up pass (``--warm-seconds``, 100 pipelines) comes
first, so neither measured pass pays the process's first imports and
connections.

It prints p50/p99/max of both passes and the ratio with/without, and the
process CPU of each pass.  This is a benchmark, not a test: nothing imports it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_scheduler_growth import nearest_rank  # noqa: E402

from eil_pipelines.app import ledger_path  # noqa: E402
from eil_pipelines.app import ledgered as ledgered_module  # noqa: E402
from eil_pipelines.app import waiting as waiting_module  # noqa: E402
from eil_pipelines.app.service import SchedulerService  # noqa: E402
from eil_pipelines.ledger import Ledger  # noqa: E402
from eil_pipelines.run.pipeline import RunResult  # noqa: E402

TINY = """title = "Tiny {n}"
[schedule]
every = "{interval}s"
start = 2026-01-01T00:00:{second:02d}
timezone = "UTC"
{after}
[queries.q]
sql = "SELECT {n} AS n"
"""


def upstreams_of(index: int, upstream: int, interval: int) -> list[int]:
    """Three upstream pipelines that fire at the same second as dependent ``index``."""
    same = [i for i in range(upstream) if i % interval == index % interval]
    if not same:
        return []
    return [same[(index + k) % len(same)] for k in range(min(3, len(same)))]


def write_project(
    root: Path, pipelines: int, dependents: int, interval: int, with_after: bool
) -> list[str]:
    """The pipeline files; returns the dependents' names."""
    folder = root / "pipelines"
    folder.mkdir(parents=True)
    upstream = pipelines - dependents
    names = []
    for index in range(pipelines):
        after = ""
        if index >= upstream:
            names.append(f"p{index:05d}")
            ups = upstreams_of(index, upstream, interval)
            if with_after and ups:
                after = "after = [" + ", ".join(f'"p{u:05d}"' for u in ups) + ']\nwait_for = "10m"'
        text = TINY.format(n=index, interval=interval, second=index % interval, after=after)
        (folder / f"p{index:05d}.toml").write_text(text, encoding="utf-8")
    return names


def tiny_run(pipeline: Any, ctx: Any, reports_dir: Path, **_how: Any) -> RunResult:
    """A run that does nothing and succeeds: what is left is the scheduling."""
    now = datetime.now(UTC)
    return RunResult(
        pipeline=pipeline.name,
        scheduled_at=ctx.scheduled_at,
        stamp=ctx.stamp,
        status="succeeded",
        started_at=now,
        finished_at=now,
        duration=0.0,
        run_id=ctx.run_id,
    )


def summary(values: Sequence[float]) -> str:
    """``n  p50  p99  max`` in milliseconds."""
    if not values:
        return f"{0:>6} {'-':>9} {'-':>9} {'-':>9}"
    return (
        f"{len(values):>6} {statistics.median(values):>7.1f}ms "
        f"{nearest_rank(values, 99):>7.1f}ms {max(values):>7.1f}ms"
    )


def one_pass(args: argparse.Namespace, with_after: bool) -> dict[str, Any]:
    """One scheduler run; the lateness lists and the CPU it took."""
    root = Path(tempfile.mkdtemp(prefix=f"eil-deps-{'after' if with_after else 'plain'}-"))
    dependents = set(
        write_project(root, args.pipelines, args.dependents, args.interval, with_after)
    )
    service = SchedulerService(root / "pipelines", workers=args.workers, reload_interval=3600)
    dispatch: list[tuple[datetime, float]] = []
    original = service.scheduler._fire

    def measuring(job: Any, planned: datetime, now: datetime, *rest: Any) -> Any:
        dispatch.append((planned, (time.time() - planned.timestamp()) * 1000))
        return original(job, planned, now, *rest)

    service.scheduler._fire = measuring  # type: ignore[method-assign]
    held = [0]
    hold = waiting_module.Waiter.hold

    def counting(self: Any, *a: Any, **k: Any) -> bool:
        may = hold(self, *a, **k)
        if not may:
            held[0] += 1
        return may

    waiting_module.Waiter.hold = counting  # type: ignore[method-assign]
    real_run = ledgered_module.run_pipeline
    if not args.real_runs:
        ledgered_module.run_pipeline = tiny_run  # type: ignore[assignment]
    began = time.monotonic()
    cpu = time.process_time()
    try:
        service.start(watch=False)
        if service.broken():
            raise SystemExit(f"invalid pipeline files: {list(service.broken().values())[:3]}")
        started = datetime.now(UTC)
        loaded = time.monotonic() - began
        first = started + timedelta(seconds=args.warmup)
        last = started + timedelta(seconds=args.seconds)
        stop = threading.Event()
        stop.wait(max(0.0, (last - datetime.now(UTC)).total_seconds()) + 2)
    finally:
        service.stop(grace=60)
        waiting_module.Waiter.hold = hold  # type: ignore[method-assign]
        ledgered_module.run_pipeline = real_run
    cpu = time.process_time() - cpu
    with Ledger(ledger_path(root / "reports")) as ledger:
        rows = ledger.history(limit=None)
    claim, waited = [], []
    unfinished = 0
    for row in rows:
        at = row.scheduled_at.astimezone(UTC)
        if not first <= at <= last:
            continue
        if row.started_at is None or row.status != "succeeded":
            unfinished += 1
            continue
        late = (row.started_at - at).total_seconds() * 1000
        (waited if row.pipeline in dependents else claim).append(late)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"  kept {root}")
    return {
        "dispatch": [late for planned, late in dispatch if first <= planned <= last],
        "claim": claim,
        "waited": waited,
        "held": held[0],
        "unfinished": unfinished,
        "cpu": cpu,
        "loaded": loaded,
        "rows": len(rows),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Both passes, then the table and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipelines", type=int, default=1000, help="pipelines in all")
    parser.add_argument("--dependents", type=int, default=100, help="of them, with after")
    parser.add_argument("--seconds", type=float, default=70, help="each pass runs this long")
    parser.add_argument("--warm-seconds", type=float, default=10, help="unmeasured pass first")
    parser.add_argument("--warmup", type=float, default=5, help="fire times before are left out")
    parser.add_argument("--interval", type=int, default=60, help="every N seconds (1 to 60)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--real-runs", action="store_true", help="run the pipelines' queries and reports too"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary projects")
    args = parser.parse_args(argv)
    if not 1 <= args.interval <= 60 or args.dependents >= args.pipelines:
        parser.error("--interval must be 1 to 60, and --dependents fewer than --pipelines")
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; {args.pipelines} pipelines "
        f"every {args.interval}s ({args.dependents} dependents), {args.workers} workers, "
        f"{args.seconds:.0f}s per pass, {'real' if args.real_runs else 'no-op'} runs"
    )
    if args.warm_seconds > 0:
        print("warm-up pass ...", flush=True)
        warm = argparse.Namespace(**vars(args))
        warm.pipelines, warm.dependents = min(100, args.pipelines), min(10, args.dependents)
        warm.seconds, warm.warmup, warm.keep = args.warm_seconds, 0, False
        one_pass(warm, True)
    results = {}
    for with_after in (False, True):
        label = "with after" if with_after else "without after"
        print(f"pass: {label} ...", flush=True)
        results[label] = one_pass(args, with_after)
    print(f"\n{'pass':<15} {'what':<34} {'n':>6} {'p50':>9} {'p99':>9} {'max':>9}")
    for label, found in results.items():
        print(f"{label:<15} {'dispatch (loop: fire -> dispatch)':<34} {summary(found['dispatch'])}")
        print(f"{'':<15} {'claim (fire -> row started)':<34} {summary(found['claim'])}")
        print(f"{'':<15} {'dependents: fire -> started':<34} {summary(found['waited'])}")
    print()
    for label, found in results.items():
        print(
            f"{label:<15} start {found['loaded']:.1f}s, CPU {found['cpu']:.1f}s, "
            f"{found['rows']} ledger rows, {found['held']} runs waited, "
            f"{found['unfinished']} in the window not succeeded"
        )
    plain, after = results["without after"], results["with after"]
    print("\nratio with/without:")
    for key in ("dispatch", "claim", "waited"):
        if plain[key] and after[key]:
            p50 = statistics.median(after[key]) / max(statistics.median(plain[key]), 1e-9)
            p99 = nearest_rank(after[key], 99) / max(nearest_rank(plain[key], 99), 1e-9)
            name = "dependents" if key == "waited" else key
        print(f"  {name:<10} p50 {p50:.2f}x  p99 {p99:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
