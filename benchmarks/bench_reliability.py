"""Reliability figures of the scheduler, on the real daemon (issue 12, "Figures").

Run from anywhere (one run prints everything; about 10 minutes on 2 loaded CPUs)::

    python benchmarks/bench_reliability.py [--only tiny,burst,startup,loop]
        [--tiny-pipelines 200] [--tiny-seconds 180] [--tiny-daemons 2]
        [--tiny-processes 2] [--burst-reports 50]
        [--chart-processes 2] [--keep]

Every section but ``loop`` starts ``eil-run pipelines`` as a child process
(the console script beside this Python, else ``python -m eil_pipelines``) on
a temporary project, stops it with SIGTERM, and reads the figures from its
run ledger and its log, as an operator would:

* ``tiny``: ``--tiny-pipelines`` pipelines ``every = "10s"`` (one small
  DuckDB query, no charts) for ``--tiny-seconds``.  Checks from the ledger
  that every fire time between the first and the SIGTERM has exactly one row
  (missing rows, and runs started twice from the log), then prints the
  lateness (the row's start minus its fire time: p50, p99, max), the skip
  counts by reason and the daemon's CPU per run (user + system of the
  process, from /proc, over the measured window).  Targets: 0 missing, 0
  duplicates, p50 < 1 s, no skips on an unloaded machine, <= 20 ms CPU/run.
  With ``--tiny-daemons N`` (N > 1) it runs again with N daemons started on
  the same project: several runners sharing one ledger, which claims each
  fire time for one of them, so the work spreads over N CPUs.  The CPU per
  run then sums every daemon's, the losing claims included.  With
  ``--tiny-processes N`` (N > 1) it runs again as ``eil-run pipelines
  --processes N``: one supervisor and N scheduler processes (the CPU per run
  sums them all, the supervisor included).
* ``burst``: ``--burst-reports`` four-chart reports due at the same minute
  (a daily cron), beside a pipeline every second; once with chart processes
  (``--chart-processes``), once without (0).  Prints the burst's total time
  (from the fire time to the last report recorded) and reports per second,
  and the one-second pipeline's lateness p99 and skips from the fire time to
  the end of the burst.  Targets: its p99 < 1 s, never skipped.
* ``startup``: an ``every = "5s"`` pipeline whose last ledger row is a year
  old: the time from the process start, and from its first log line, to the
  caught-up run's start, and how many skipped rows the year got.  Target:
  < 1 s to the first run.
* ``loop``: the loop thread's dispatch lateness with every worker busy, from
  ``bench_scheduler_growth.py`` (reused, not copied).  Target: p99 < 10 ms.

This is a benchmark, not a test: nothing imports it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

TINY = """
title = "Tiny {n}"
[schedule]
every = "10s"
timezone = "UTC"
[queries.q]
sql = "SELECT {n} AS n, 'tiny' AS label"
"""

EVERY_SECOND = """
title = "Every second"
[schedule]
every = "1s"
timezone = "UTC"
[queries.q]
sql = "SELECT 1 AS x"
"""

EVERY_5S = """
title = "Every five seconds"
[schedule]
every = "5s"
timezone = "UTC"
catch_up = "latest"
[queries.q]
sql = "SELECT 1 AS x"
"""

# Four charts from generated data (no data file): 60 days x 3 regions.
FOUR_CHARTS = """
title = "Burst {n}"
[schedule]
cron = "{minute} {hour} * * *"
timezone = "UTC"
timeout = "30m"
[queries.daily]
sql = \"\"\"
SELECT DATE '2026-01-01' + CAST(i // 3 AS INTEGER) AS day,
       ['EMEA', 'APAC', 'AMER'][1 + i % 3] AS region,
       CAST((i * 37 + {n}) % 1000 AS DOUBLE) AS revenue
FROM range(180) t(i)
\"\"\"
[queries.by_region]
sql = "SELECT region, sum(revenue) AS revenue FROM (VALUES ('EMEA', 3.0), ('APAC', 5.0), ('AMER', 4.0)) t(region, revenue) GROUP BY ALL ORDER BY region"
[queries.per_day]
sql = "SELECT DATE '2026-01-01' + CAST(i AS INTEGER) AS day, (i * 7 + {n}) % 50 AS orders FROM range(60) t(i)"
[[charts]]
name = "revenue_by_day"
query = "daily"
type = "line"
x = "day"
y = "revenue"
series = "region"
[[charts]]
name = "revenue_by_region"
query = "by_region"
type = "bar"
x = "region"
y = "revenue"
[[charts]]
name = "revenue_by_region_h"
query = "by_region"
type = "barh"
x = "region"
y = "revenue"
[[charts]]
name = "orders_per_day"
query = "per_day"
type = "area"
x = "day"
y = "orders"
"""


# --------------------------------------------------------------------------- helpers


def eil_command() -> list[str]:
    """The console script beside this Python, else ``python -m eil_pipelines``."""
    script = Path(sys.executable).with_name("eil-run")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "eil_pipelines"]


def nearest_rank(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile by nearest rank (nan when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, -(-len(ordered) * pct // 100) - 1))
    return ordered[int(index)]


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    """Poll ``predicate`` for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def children_of(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux: /proc/PID/task/*/children)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its reaped children so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    # utime, stime, cutime, cstime are fields 14-17 (1-based); [0] here is field 3.
    return sum(int(value) for value in fields[11:15]) / TICKS


class Project:
    """A temporary project: ``pipelines/``, ``reports/``, the daemon and its ledger."""

    def __init__(self, keep: bool, tag: str):
        self.root = Path(tempfile.mkdtemp(prefix=f"eil-reliab-{tag}-"))
        self.keep = keep
        (self.root / "pipelines").mkdir()
        self.reports = self.root / "reports"
        self.ledger = self.reports / ".eil" / "ledger.sqlite3"
        self.log = self.reports / ".eil" / "scheduler.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.others: list[subprocess.Popen[bytes]] = []
        """More daemons on the same project (``start(copies=N)``)."""
        self.spawned = 0.0

    def pipeline(self, name: str, text: str) -> None:
        """Write ``pipelines/<name>.toml``."""
        (self.root / "pipelines" / f"{name}.toml").write_text(text, encoding="utf-8")

    def start(self, *args: str, copies: int = 1) -> None:
        """Start the daemon (stderr to a file); ``copies`` > 1 starts more runners
        on the same project, which share the fire times through the ledger's claims."""
        self.spawned = time.monotonic()
        self.stderr = (self.root / "daemon.stderr").open("wb")
        started = [
            subprocess.Popen(
                [*eil_command(), "pipelines", *args],
                cwd=self.root,
                stdout=subprocess.DEVNULL,
                stderr=self.stderr,
            )
            for _ in range(copies)
        ]
        self.process, self.others = started[0], started[1:]

    def pids(self) -> list[int]:
        """Every daemon's process id, and their children's (``--processes``)."""
        own = [p.pid for p in ([self.process] if self.process else []) + self.others]
        return own + [child for pid in own for child in children_of(pid)]

    def stop(self, grace: float = 120) -> int:
        """SIGTERM to every daemon; the first one's exit code (killed after ``grace`` s)."""
        assert self.process is not None
        processes = [self.process, *self.others]
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = []
        try:
            for process in processes:
                try:
                    codes.append(process.wait(grace))
                except subprocess.TimeoutExpired:
                    process.kill()
                    codes.append(process.wait())
        finally:
            self.stderr.close()
        return max(codes, key=abs)

    def rows(self, where: str = "1", params: Sequence[object] = ()) -> list[tuple]:
        """(pipeline, scheduled_at, status, started_at, finished_at, error) rows."""
        if not self.ledger.exists():
            return []
        try:
            with closing(sqlite3.connect(self.ledger, timeout=30)) as conn:
                return conn.execute(
                    "SELECT pipeline, scheduled_at, status, started_at, finished_at, error"
                    f" FROM runs WHERE {where} ORDER BY scheduled_at",
                    tuple(params),
                ).fetchall()
        except sqlite3.OperationalError:
            return []

    def log_text(self) -> str:
        """The daemon's log, and those of its scheduler processes (``--processes``)."""
        files = sorted(self.log.parent.glob("scheduler*.log")) if self.log.parent.exists() else []
        return "".join(path.read_text(encoding="utf-8") for path in files)

    def cleanup(self) -> None:
        for process in ([self.process] if self.process else []) + self.others:
            if process.poll() is None:
                process.kill()
                process.wait()
        if self.keep:
            print(f"  kept {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def lateness_of(rows: list[tuple]) -> list[float]:
    """Seconds from each started row's fire time to its claim."""
    return [
        (when(r[3]) - when(r[1])).total_seconds()  # type: ignore[operator]
        for r in rows
        if r[3] is not None and r[2] != "skipped"
    ]


def skip_reasons(rows: list[tuple]) -> Counter[str]:
    return Counter(r[5] for r in rows if r[2] == "skipped")


def duplicate_starts(log: str) -> int:
    """Fire times started more than once as a first attempt, by the log."""
    starts = Counter(re.findall(r"started: (\S+) at (\S+) \(attempt 1\)", log))
    return sum(count - 1 for count in starts.values() if count > 1)


# --------------------------------------------------------------------------- tiny


def bench_tiny(
    pipelines: int, seconds: float, keep: bool, daemons: int = 1, processes: int = 1
) -> None:
    """``pipelines`` tiny pipelines every 10 s for ``seconds`` on ``daemons`` daemons
    (each with ``--processes processes``)."""
    on = "the daemon" if daemons == 1 else f"{daemons} daemons sharing one project and ledger"
    if processes > 1:
        on = f"one daemon with --processes {processes}"
    print(f"\n{pipelines} tiny pipelines every 10 s for {seconds:.0f} s on {on}")
    project = Project(keep, "tiny")
    try:
        for n in range(pipelines):
            project.pipeline(f"tiny_{n:03d}", TINY.format(n=n))
        project.start("--processes", str(processes), copies=daemons)
        # The window opens with the first fire time after the daemon is ready.
        if not wait_until(lambda: bool(project.rows()), 120):
            print("  no row after 120 s: the daemon did not start")
            return
        pids = project.pids()
        first = min(when(r[1]) for r in project.rows())  # type: ignore[type-var]
        cpu_from, wall_from = sum(cpu_seconds(p) for p in pids), time.monotonic()
        opened = datetime.now(UTC)
        time.sleep(max(0.0, seconds - (time.monotonic() - project.spawned)))
        cpu_to, wall_to = sum(cpu_seconds(p) for p in pids), time.monotonic()
        closed = datetime.now(UTC)
        code = project.stop()
        rows = project.rows()
        grid = timedelta(seconds=10)
        # Fire times from the first to the last one well before the SIGTERM (a
        # time due in the last second may be reached after it: no row, by design).
        last = closed - timedelta(seconds=2)
        expected: set[tuple[str, datetime]] = set()
        for n in range(pipelines):
            moment = first
            while moment <= last:
                expected.add((f"tiny_{n:03d}", moment))
                moment += grid
        found = Counter((r[0], when(r[1])) for r in rows)
        missing = [key for key in expected if key not in found]
        doubled = sum(count - 1 for count in found.values() if count > 1)
        doubled += duplicate_starts(project.log_text())
        in_window = [r for r in rows if (r[0], when(r[1])) in expected]
        late = lateness_of(in_window)
        # Runs that started while the CPU was measured (the imports are before it).
        measured = [r for r in rows if r[2] != "skipped" and opened <= when(r[3]) <= closed]  # type: ignore[operator]
        cpu = cpu_to - cpu_from
        print(
            f"  exit code {code}; fire times {len(expected):,} from {first:%H:%M:%S} to {last:%H:%M:%S}"
        )
        print(f"  missing rows: {len(missing)}   duplicates: {doubled}")
        print(
            f"  lateness (claim - fire time): p50 {statistics.median(late) if late else float('nan'):.3f} s"
            f"  p99 {nearest_rank(late, 99):.3f} s  max {max(late, default=float('nan')):.3f} s"
            f"  (n {len(late):,})"
        )
        reasons = skip_reasons(in_window)
        print(f"  skipped: {sum(reasons.values()):,}")
        for reason, count in reasons.most_common():
            print(f"    {count:>6,}  {reason}")
        runs = len(measured)
        per_run = cpu / runs * 1000 if runs else float("nan")
        print(
            f"  daemon CPU {cpu:.2f} s over {wall_to - wall_from:.0f} s and {runs:,} runs:"
            f" {per_run:.1f} ms per run (includes the idle loop, watcher and log)"
        )
        if missing:
            print(f"  first missing: {sorted(missing)[:5]}")
    finally:
        project.cleanup()


# --------------------------------------------------------------------------- burst


def bench_burst_once(reports: int, chart_processes: int, keep: bool) -> None:
    """One pass: ``reports`` four-chart reports due at the same minute, beside a 1 s pipeline."""
    project = Project(keep, f"burst{chart_processes}")
    try:
        # Far enough ahead for the daemon (and its chart processes) to start.
        due = (datetime.now(UTC) + timedelta(seconds=75)).replace(second=0, microsecond=0)
        for n in range(reports):
            project.pipeline(
                f"burst_{n:02d}", FOUR_CHARTS.format(n=n, minute=due.minute, hour=due.hour)
            )
        project.pipeline("every_second", EVERY_SECOND)
        project.start("--chart-processes", str(chart_processes))
        key = due.isoformat()
        done = lambda: len(  # noqa: E731
            project.rows(
                "pipeline LIKE 'burst_%' AND scheduled_at = ? AND status != 'running'", [key]
            )
        )
        if not wait_until(lambda: done() >= reports, 3600, step=0.5):
            print(f"  chart processes {chart_processes}: only {done()} reports after an hour")
            return
        burst = project.rows("pipeline LIKE 'burst_%' AND scheduled_at = ?", [key])
        end = max(when(r[4]) for r in burst)  # type: ignore[type-var]
        project.stop()
        statuses = Counter(r[2] for r in burst)
        total = (end - due).total_seconds()  # type: ignore[operator]
        ticks = [
            r
            for r in project.rows("pipeline = 'every_second'")
            if due <= when(r[1]) <= end  # type: ignore[operator]
        ]
        late = lateness_of(ticks)
        skipped = sum(1 for r in ticks if r[2] == "skipped")
        print(
            f"  {chart_processes:>16} {total:>9.1f} s {reports / total:>8.2f}"
            f" {nearest_rank(late, 99):>10.3f} s {max(late, default=float('nan')):>8.3f} s"
            f" {len(ticks):>6} {skipped:>8}  {dict(statuses)}"
        )
        for reason, count in skip_reasons(ticks).most_common():
            print(f"  {'':>16}   1 s pipeline skipped {count}x: {reason}")
    finally:
        project.cleanup()


def bench_burst(reports: int, chart_processes: int, keep: bool) -> None:
    print(
        f"\na burst of {reports} four-chart reports due at one minute, beside a pipeline every 1 s"
    )
    print(
        f"  {'chart processes':>16} {'total':>11} {'rep/s':>8} {'1s p99':>12} {'1s max':>10}"
        f" {'ticks':>6} {'skipped':>8}  statuses"
    )
    for processes in (chart_processes, 0):
        bench_burst_once(reports, processes, keep)


# --------------------------------------------------------------------------- startup


def bench_startup(keep: bool) -> None:
    """A year-old last row on an ``every = "5s"`` pipeline: time to the first run."""
    from eil_pipelines.ledger import Ledger

    print('\nstart-up with a ledger whose last row is a year old, every = "5s"')
    project = Project(keep, "startup")
    try:
        project.pipeline("every_5s", EVERY_5S)
        old = (datetime.now(UTC) - timedelta(days=365)).replace(microsecond=0)
        old -= timedelta(seconds=old.second % 5)
        project.ledger.parent.mkdir(parents=True)
        with Ledger(project.ledger) as ledger:
            ledger.claim("every_5s", old, run_id="old", now=old)
            ledger.finish("every_5s", old, status="succeeded", now=old)
        recent = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        spawned_at = datetime.now(UTC)
        project.start()
        started = lambda: project.rows(  # noqa: E731
            "status != 'skipped' AND scheduled_at > ?", [recent]
        )
        if not wait_until(lambda: bool(started()), 300, step=0.01):
            print("  no run within 300 s")
            return
        run = started()[0]
        to_run = (when(run[3]) - spawned_at).total_seconds()  # type: ignore[operator]
        wait_until(lambda: "INFO started: every_5s" in project.log_text(), 30, step=0.05)
        log = project.log_text()
        stamps = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ", log, re.M)
        first_line = datetime.strptime(stamps[0], "%Y-%m-%d %H:%M:%S,%f") if stamps else None
        match = re.search(r"^(\S+ \S+) INFO started: every_5s", log, re.M)
        began = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f") if match else None
        # The year's skipped times follow the run into the ledger, in batches.
        counted = time.monotonic()
        before = len(project.rows("status = 'skipped'"))
        time.sleep(10)
        rate = (len(project.rows("status = 'skipped'")) - before) / (time.monotonic() - counted)
        project.stop()
        print(
            f"  process start -> the caught-up run claimed: {to_run:.2f} s (with Python's start-up)"
        )
        if first_line and began:
            print(
                f"  first log line -> 'started' in the log:    {(began - first_line).total_seconds():.3f} s"
            )
        print(
            f"  the year's skipped rows reach the ledger at {rate:,.0f} a second, behind the runs"
        )
    finally:
        project.cleanup()


# --------------------------------------------------------------------------- loop


def bench_loop(workers: int, fires: int) -> None:
    """The loop's lateness with every worker busy (bench_scheduler_growth, reused)."""
    import bench_scheduler_growth as growth

    print()
    growth.bench_lateness(growth.load_loop(None), workers, fires)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the sections asked for."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="tiny,burst,startup,loop")
    parser.add_argument("--tiny-pipelines", type=int, default=200)
    parser.add_argument("--tiny-seconds", type=float, default=180)
    parser.add_argument(
        "--tiny-daemons",
        type=int,
        default=1,
        help="also run the tiny section with this many daemons on one project (one CPU each)",
    )
    parser.add_argument(
        "--tiny-processes",
        type=int,
        default=1,
        help="also run the tiny section as one daemon with --processes N",
    )
    parser.add_argument("--burst-reports", type=int, default=50)
    parser.add_argument("--chart-processes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4, help="workers in the loop section")
    parser.add_argument("--fires", type=int, default=400, help="fires measured in the loop section")
    parser.add_argument("--keep", action="store_true", help="keep the temporary projects")
    args = parser.parse_args(argv)
    sections = set(args.only.split(","))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load}")
    print(f"eil-run: {' '.join(eil_command())}")
    if "tiny" in sections:
        bench_tiny(args.tiny_pipelines, args.tiny_seconds, args.keep)
        if args.tiny_daemons > 1:
            bench_tiny(args.tiny_pipelines, args.tiny_seconds, args.keep, args.tiny_daemons)
        if args.tiny_processes > 1:
            bench_tiny(
                args.tiny_pipelines, args.tiny_seconds, args.keep, processes=args.tiny_processes
            )
    if "burst" in sections:
        bench_burst(args.burst_reports, args.chart_processes, args.keep)
    if "startup" in sections:
        bench_startup(args.keep)
    if "loop" in sections:
        bench_loop(args.workers, args.fires)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nload average at the end: {load}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
