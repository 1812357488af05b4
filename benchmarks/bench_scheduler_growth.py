"""Growth tables for the scheduler loop: costs that must not grow with the work.

Run from anywhere::

    python benchmarks/bench_scheduler_growth.py [--only reregister,catchup,lateness]

Sections (each prints a table; all together take well under a minute):

* ``reregister``: registering 1,000 and 10,000 hourly jobs, then registering
  each of them again (what a reload of every pipeline file does).  The second
  pass must cost about what the first does: a job's replacement finds the
  retries and delayed starts it owes from an index on the job, not by scanning
  the heap.
* ``catchup``: an ``every = "5s"`` job whose last run is 11 months old
  (about 5.7 million missed fire times), registered on a manual clock and
  dispatched once, for ``catch_up = "latest"``, ``"all"`` and ``"none"``:
  the time to decide what runs (target: well under a second) and the time to
  hand every skipped time to a batched skip hook (linear in the skipped
  times, outside the scheduler's lock, in bounded batches).
* ``lateness``: the loop thread's lateness (the moment it dispatches a fire
  time minus that fire time) for a job every 0.05 s, beside 200 idle jobs,
  first with the workers idle, then with every worker but the reserved one
  busy at 100% CPU in pure Python (the worst case for a thread that needs the
  interpreter lock).  Target: p99 < 10 ms with every worker busy.  A last
  ``floor`` row is no scheduler at all: a bare thread in ``Condition.wait``
  to the same grid beside as many busy Python threads, which is what the
  machine allows any thread; the loop's own cost is its gap to the floor.
  The ``apscheduler`` row is the peer the issue compared with: APScheduler 3's
  ``BackgroundScheduler`` with a job every 0.05 s beside the same busy
  threads, its lateness taken when its loop submits the job (its
  ``EVENT_JOB_SUBMITTED``); printed when ``apscheduler==3.*`` is installed.

``--loop PATH`` loads the scheduler from another ``loop.py`` (an older
version, say ``git show a653a16:eil_pipelines/schedule/loop.py > /tmp/loop.py``)
to print the same tables for it.

This is a benchmark, not a test: nothing imports it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eil_pipelines.schedule.testing import ManualClock
from eil_pipelines.schedule.triggers import EveryTrigger

UTC_ZONE = ZoneInfo("UTC")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def load_loop(path: str | None) -> ModuleType:
    """The scheduler module: ours, or the ``loop.py`` at ``path``."""
    if path is None:
        from eil_pipelines.schedule import loop

        return loop
    spec = importlib.util.spec_from_file_location("bench_loop_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def noop(*_args: object) -> None:
    """A job or hook that does nothing."""


def nearest_rank(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile by nearest rank."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, -(-len(ordered) * pct // 100) - 1))
    return ordered[int(index)]


# --------------------------------------------------------------------------- reregister


def bench_reregister(loop: ModuleType, sizes: Sequence[int]) -> None:
    """Register ``n`` jobs, then register each again; print both times."""
    print("re-registering jobs (hourly triggers, no loop thread)")
    print(f"{'jobs':>8} {'first':>10} {'again':>10} {'ratio':>7}")
    start = datetime(2026, 1, 5, 12, tzinfo=UTC)
    for size in sizes:
        clock = ManualClock(start)
        scheduler = loop.Scheduler(clock=clock, workers=2)
        triggers = [
            EveryTrigger(timedelta(hours=1), UTC_ZONE, start + timedelta(seconds=i % 3600))
            for i in range(size)
        ]
        began = time.perf_counter()
        for index, trigger in enumerate(triggers):
            scheduler.add(f"job-{index}", trigger, noop)
        first = time.perf_counter() - began
        began = time.perf_counter()
        for index, trigger in enumerate(triggers):
            scheduler.add(f"job-{index}", trigger, noop)
        again = time.perf_counter() - began
        print(f"{size:>8} {first:>9.3f}s {again:>9.3f}s {again / first:>6.1f}x")
        scheduler.shutdown(1)


# --------------------------------------------------------------------------- catch-up


class CountingSkips:
    """Counts skipped times handed to the hooks, and how many calls brought them."""

    def __init__(self) -> None:
        self.times = 0
        self.calls = 0

    def one(self, _firing: Any, _reason: str) -> None:
        self.times += 1
        self.calls += 1

    def many(self, firings: Sequence[Any], _reason: str) -> None:
        self.times += len(firings)
        self.calls += 1


def catchup_once(loop: ModuleType, policy: str, timeout: float) -> str:
    """One row: a year-old ``every 5s`` job under ``policy``."""
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    last = now - timedelta(days=334)
    clock = ManualClock(now)
    scheduler = loop.Scheduler(clock=clock, workers=2)
    scheduler.start(loop=False)
    skips = CountingSkips()
    first_run: list[float] = []
    hooks: dict[str, Any] = {"on_skip": skips.one}
    if "on_skip_many" in loop.Scheduler.add.__code__.co_varnames:
        hooks["on_skip_many"] = skips.many
    options = loop.JobOptions(catch_up=policy, max_catch_up=10)
    began = time.perf_counter()
    decided: list[float] = []
    total: list[float] = []

    def ran(_firing: Any) -> None:
        first_run.append(time.perf_counter() - began)

    def work() -> None:
        scheduler.add(
            "job",
            EveryTrigger(timedelta(seconds=5), UTC_ZONE),
            ran,
            options=options,
            first_after=last,
            **hooks,
        )
        scheduler.run_due(now)
        total.append(time.perf_counter() - began)

    original = loop.Scheduler._call_hooks

    def first_hooks(hook_list: Any) -> None:
        # The first hooks called mark the moment the decision was taken.
        if not decided:
            decided.append(time.perf_counter() - began)
        original(hook_list)

    scheduler._call_hooks = first_hooks  # type: ignore[method-assign]
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout)
    scheduler.shutdown(0)
    decide = first_run[0] if first_run else (decided[0] if decided else float("nan"))
    if thread.is_alive():
        return f"{policy:>10} {decide:>8.3f}s {skips.times:>10,} {skips.calls:>8,} gave up at {timeout:.0f}s"
    return f"{policy:>10} {decide:>8.3f}s {skips.times:>10,} {skips.calls:>8,} {total[0]:>10.2f}s"


def bench_catchup(loop: ModuleType, timeout: float) -> None:
    """A year-old ``every 5s`` job: time to the first run (or decision), then to the last skip."""
    print("catch-up after 11 months down, every = 5s (about 5.7 million missed times)")
    print("  decided: time to the first run (or, with none to run, to the first hook)")
    print(f"{'catch_up':>10} {'decided':>9} {'skips':>10} {'calls':>8} {'all booked':>11}")
    for policy in ("latest", "all", "none"):
        print(catchup_once(loop, policy, timeout))


# --------------------------------------------------------------------------- lateness


class GridTrigger:
    """Every ``interval`` seconds on the Unix-epoch grid (sub-second intervals)."""

    def __init__(self, interval: float):
        self.interval = interval

    def next_fire(self, after: datetime) -> datetime:
        """The first grid point strictly after ``after``."""
        step = round(self.interval * 1_000_000)
        micros = (after - EPOCH) // timedelta(microseconds=1)
        return EPOCH + timedelta(microseconds=(micros // step + 1) * step)


def burn(stop: threading.Event, native: bool = False) -> Callable[[Any], None]:
    """A job that keeps a CPU busy until ``stop`` is set: in pure Python (holding the
    interpreter lock), or hashing (``native``: outside it, like a database query)."""
    block = bytes(range(256)) * 4096

    def job(_firing: Any) -> None:
        total = 0
        while not stop.is_set():
            if native:
                hashlib.sha256(block).digest()
                continue
            for index in range(2000):
                total += index * index

    return job


def lateness_row(label: str, values: list[float]) -> str:
    """One row of the lateness table: n, p50, p90, p99 and max in milliseconds."""
    if not values:
        return f"{label:>28} no fires measured"
    return (
        f"{label:>28} {len(values):>5} {statistics.median(values):>7.2f}ms "
        f"{nearest_rank(values, 90):>7.2f}ms {nearest_rank(values, 99):>7.2f}ms "
        f"{max(values):>7.2f}ms"
    )


def lateness_once(
    loop: ModuleType, workers: int, fires: int, busy: bool, native: bool = False
) -> str:
    """One row: the probe's dispatch lateness, with the workers idle or burning CPU."""
    lateness: list[float] = []
    scheduler = loop.Scheduler(workers=workers)
    original = scheduler._fire

    def measuring(job: Any, planned: datetime, now: datetime, *rest: Any) -> Any:
        if job.key == "probe":
            lateness.append((time.time() - planned.timestamp()) * 1000)
        return original(job, planned, now, *rest)

    scheduler._fire = measuring  # type: ignore[method-assign]
    stop = threading.Event()
    far = datetime(2100, 1, 1, tzinfo=UTC)
    for index in range(200):
        scheduler.add(f"idle-{index}", EveryTrigger(timedelta(days=1), UTC_ZONE, far), noop)
    scheduler.start()
    long_jobs = 0
    if busy:
        # Every worker a long run may take (all but the reserved one, if any).
        long_jobs = workers - getattr(scheduler, "reserved_workers", 0)
        soon = datetime.now(UTC) + timedelta(seconds=0.2)
        options = loop.JobOptions()
        if hasattr(options, "expected_duration"):
            options.expected_duration = timedelta(hours=1)
        for index in range(long_jobs):
            scheduler.add(
                f"burn-{index}",
                EveryTrigger(timedelta(days=1), UTC_ZONE, soon),
                burn(stop, native),
                options=options,
            )
        deadline = time.monotonic() + 10
        while scheduler.in_flight < long_jobs and time.monotonic() < deadline:
            time.sleep(0.01)
    scheduler.add("probe", GridTrigger(0.05), noop)
    deadline = time.monotonic() + fires * 0.05 * 3 + 10
    while len(lateness) < fires and time.monotonic() < deadline:
        time.sleep(0.05)
    scheduler.remove("probe")
    stop.set()
    scheduler.shutdown(5)
    kind = "C" if native else "Python"
    label = f"{long_jobs} workers 100% CPU {kind}" if busy else "workers idle"
    values = lateness[:fires]
    return lateness_row(label, values)


def floor_once(threads: int, fires: int) -> str:
    """One row: no scheduler, a bare thread in ``Condition.wait`` to the same 0.05 s
    grid, beside ``threads`` threads busy in Python, at the loop's switch interval.

    What any thread of this process that sleeps until a moment can do on this
    machine: the loop cannot beat it, and the gap to it is the loop's own cost.
    """
    stop = threading.Event()
    busy = [threading.Thread(target=burn(stop), args=(None,), daemon=True) for _ in range(threads)]
    saved = sys.getswitchinterval()
    sys.setswitchinterval(min(saved, 0.001))
    for thread in busy:
        thread.start()
    lateness: list[float] = []
    condition = threading.Condition()
    step = 0.05
    try:
        with condition:
            due = (time.time() // step + 2) * step
            while len(lateness) < fires:
                while (left := due - time.time()) > 0:
                    condition.wait(left)
                lateness.append((time.time() - due) * 1000)
                due += step
    finally:
        stop.set()
        for thread in busy:
            thread.join(5)
        sys.setswitchinterval(saved)
    return lateness_row(f"floor: {threads} threads 100% Python", lateness)


def apscheduler_once(threads: int, fires: int) -> str:
    """One row: APScheduler 3's ``BackgroundScheduler`` with a job every 0.05 s (its
    submit lateness, from its own event), beside ``threads`` threads busy in Python,
    at the same switch interval as the loop: the peer the issue compared with."""
    try:
        from apscheduler.events import EVENT_JOB_SUBMITTED
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger
    except ImportError:
        return f"{'apscheduler 3':>28} not installed (pip install 'apscheduler==3.*')"
    stop = threading.Event()
    busy = [threading.Thread(target=burn(stop), args=(None,), daemon=True) for _ in range(threads)]
    saved = sys.getswitchinterval()
    sys.setswitchinterval(min(saved, 0.001))
    lateness: list[float] = []

    def submitted(event: Any) -> None:
        # Called in APScheduler's own loop thread as it hands the job over.
        lateness.append((time.time() - event.scheduled_run_times[0].timestamp()) * 1000)

    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_listener(submitted, EVENT_JOB_SUBMITTED)
    start = datetime.fromtimestamp((time.time() // 0.05 + 20) * 0.05, UTC)
    scheduler.add_job(
        lambda: None,
        IntervalTrigger(seconds=0.05, start_date=start, timezone="UTC"),
        max_instances=10,
        misfire_grace_time=None,
        coalesce=False,
    )
    for thread in busy:
        thread.start()
    scheduler.start()
    try:
        deadline = time.monotonic() + fires * 0.05 * 3 + 10
        while len(lateness) < fires and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=False)
        stop.set()
        for thread in busy:
            thread.join(5)
        sys.setswitchinterval(saved)
    values = lateness[:fires]
    label = f"apscheduler: {threads} threads Python"
    return lateness_row(label, values)


def bench_lateness(loop: ModuleType, workers: int, fires: int) -> None:
    """The loop's dispatch lateness, quiet and with every worker busy, and the floor."""
    print(f"loop lateness (dispatch minus fire time), a job every 0.05 s, {workers} workers")
    print(f"{'load':>28} {'n':>5} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")
    print(lateness_once(loop, workers, fires, False))
    print(lateness_once(loop, workers, fires, True, native=True))
    print(lateness_once(loop, workers, fires, True))
    print(floor_once(max(1, workers - 1), fires))
    print(apscheduler_once(max(1, workers - 1), fires))


def main(argv: Sequence[str] | None = None) -> int:
    """Print the tables asked for."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="reregister,catchup,lateness")
    parser.add_argument("--loop", help="load the Scheduler from this loop.py instead")
    parser.add_argument("--sizes", default="1000,10000", help="job counts to re-register")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--fires", type=int, default=400, help="fires measured for lateness")
    parser.add_argument("--timeout", type=float, default=60, help="give up a catch-up after")
    args = parser.parse_args(argv)
    loop = load_loop(args.loop)
    sections = set(args.only.split(","))
    print(f"python {sys.version.split()[0]}, scheduler from {loop.__file__}")
    if "reregister" in sections:
        bench_reregister(loop, [int(n) for n in args.sizes.split(",")])
    if "catchup" in sections:
        bench_catchup(loop, args.timeout)
    if "lateness" in sections:
        bench_lateness(loop, args.workers, args.fires)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
