"""Benchmark our Scheduler holding 10,000 cron jobs: registration, threads, idle CPU, memory.

Run from anywhere::

    python benchmarks/bench_scheduler_scale.py [--jobs 10000] [--idle-seconds 60] [--profile]

What it does, in one run:

1. Draws ``--jobs`` cron expressions of a dozen shapes (``m h * * *``,
   ``m h * * 1-5``, ``m h1,h2 * * *``, ``*/15 h * * *``, ``m h L * *``,
   ``m h * * 5L``, ``m h * * 1#2``, month and day names ...) with random
   minutes and hours, in eight zones.  Hours near the current local hour of
   each zone are left out, so that no job is due while the benchmark runs
   (checked with ``Scheduler.next_wakeup()``).
2. Times registering them into a new :class:`Scheduler` before it starts, as
   ``eil-run`` does at start-up: building each ``CronTrigger`` (parse and
   check the expression) and ``Scheduler.add`` (first fire time, heap).
   Target: < 1 s for 10,000.  The RSS growth over it is noted.
3. Counts threads (Python's and the kernel's) before ``start()``, after it,
   and after a burst of 100 jobs all due at once.  Target: one loop thread
   plus at most ``--workers`` pool threads, whatever the number of jobs.
4. Measures the CPU time of the whole process (``time.process_time()`` and
   ``getrusage``) over ``--idle-seconds`` of idling with every job registered
   and none due, and how many times the loop woke up.  Target: < 5 ms of CPU
   per minute.
5. Times re-registering all jobs into the running scheduler (what a reload
   of every file would do): informative, no target.
6. Measures memory per job with ``tracemalloc`` (a separate registration,
   since tracing slows it down) and shows where it goes.

``--profile`` adds a cProfile of the registration and the cost of each
expression shape.  This is a benchmark, not a test: nothing imports it.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import random
import resource
import sys
import threading
import time
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scheduler import cpu_ticks, load_average, machine_description

from eil_pipelines.schedule.cron import CronTrigger
from eil_pipelines.schedule.loop import Firing, Scheduler, SystemClock

ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Pacific/Auckland",
)

#: Expression shapes: {m} a minute, {h} and {h2} hours that are not due soon.
SHAPES = (
    "{m} {h} * * *",
    "{m} {h} * * 1-5",
    "{m} {h},{h2} * * *",
    "{m} {h} 1 * *",
    "{m} {h} * * mon,wed,fri",
    "*/15 {h} * * *",
    "{m} {h} L * *",
    "{m} {h} * * 5L",
    "{m} {h} 1,15 jan,apr,jul,oct *",
    "{m} {h} * * 1#2",
    "{m} {h} 1-7 * 1",
    "0 {h} * * 0,6",
)

TARGET_REGISTER_S = 1.0
TARGET_IDLE_MS_PER_MIN = 5.0
BURST = 100
FAR = datetime(9999, 1, 1, tzinfo=UTC)


class CountingClock(SystemClock):
    """The system clock, counting the loop's waits (each wait is one wake-up after it)."""

    def __init__(self) -> None:
        self.waits = 0
        self.reads = 0

    def now(self) -> datetime:
        self.reads += 1
        return super().now()

    def wait(self, condition: threading.Condition, timeout: float | None) -> None:
        self.waits += 1
        super().wait(condition, timeout)


class OnceTrigger:
    """Fires once, at ``at``."""

    def __init__(self, at: datetime):
        self.at = at

    def next_fire(self, after: datetime) -> datetime:
        return self.at if after < self.at else FAR


def draw_jobs(count: int, rng: random.Random, quiet: timedelta) -> list[tuple[str, str]]:
    """``count`` (expression, zone) pairs, none with an hour inside ``now … now + quiet``."""
    now = datetime.now(UTC)
    busy: dict[str, set[int]] = {}
    for name in ZONES:
        zone = ZoneInfo(name)
        hours, moment = set(), now - timedelta(hours=1)
        while moment <= now + quiet + timedelta(hours=1):
            hours.add(moment.astimezone(zone).hour)
            moment += timedelta(minutes=10)
        busy[name] = hours
    out = []
    for _ in range(count):
        name = rng.choice(ZONES)
        free = [h for h in range(24) if h not in busy[name]]
        h, h2 = sorted(rng.sample(free, 2))
        shape = rng.choice(SHAPES)
        out.append((shape.format(m=rng.randrange(60), h=h, h2=h2), name))
    return out


def noop(_firing: Firing) -> None:
    """What the registered jobs would run (never, in this benchmark)."""


def os_threads() -> int:
    """Threads of this process as the kernel counts them."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return threading.active_count()


def thread_names() -> list[str]:
    """Python threads by name, numbered pool threads counted together."""
    counts: dict[str, int] = {}
    for thread in threading.enumerate():
        base = thread.name.rsplit("_", 1)[0] if "worker_" in thread.name else thread.name
        counts[base] = counts.get(base, 0) + 1
    return [name if n == 1 else f"{n} x {name}" for name, n in counts.items()]


def rss_bytes() -> int | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds() -> tuple[float, float]:
    """(process_time, utime + stime from getrusage), seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return time.process_time(), usage.ru_utime + usage.ru_stime


def register(
    scheduler: Scheduler, jobs: Sequence[tuple[str, str]], prefix: str = "job"
) -> tuple[float, float]:
    """Build every trigger, then add every job; (seconds building, seconds adding)."""
    zones = {name: ZoneInfo(name) for name in ZONES}
    began = time.perf_counter()
    triggers = [CronTrigger(expr, zones[name]) for expr, name in jobs]
    built = time.perf_counter()
    for index, trigger in enumerate(triggers):
        scheduler.add(f"{prefix}-{index}", trigger, noop)
    return built - began, time.perf_counter() - built


def machine_busy(before: tuple[int, int] | None) -> str:
    """The share of the machine's CPU time that was busy since ``before`` (all processes)."""
    after = cpu_ticks()
    if before is None or after is None or after[1] <= before[1]:
        return "?"
    return f"{(after[0] - before[0]) / (after[1] - before[1]):.0%}"


def verdict(passed: bool) -> str:
    return "PASS" if passed else "MISS"


def short_path(filename: str) -> str:
    for marker in ("site-packages/", "eil_pipelines/", "lib/python3"):
        if marker in filename:
            return filename[filename.index(marker) :]
    return filename


def memory_per_job(jobs: Sequence[tuple[str, str]]) -> None:
    gc.collect()
    scheduler = Scheduler(workers=1)
    tracemalloc.start(2)
    before = tracemalloc.take_snapshot()
    register(scheduler, jobs, prefix="mem")
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    stats = after.compare_to(before, "traceback")
    total = sum(stat.size_diff for stat in stats)
    print(f"memory per job (tracemalloc):   {total / len(jobs):,.0f} B  ({total / 2**20:.1f} MiB)")
    print("  where it goes (bytes per job, by allocating line):")
    for stat in stats[:8]:
        *callers, site = stat.traceback  # oldest first
        where = f"{short_path(site.filename)}:{site.lineno}"
        if site.filename.startswith("<") and callers:
            # Code made at run time (a dataclass __init__): name who called it.
            caller = callers[-1]
            where += f" (generated code, called from {short_path(caller.filename)}:{caller.lineno})"
        print(f"    {stat.size_diff / len(jobs):>8,.0f}  {where}")
    del scheduler


def profile_registration(jobs: Sequence[tuple[str, str]]) -> None:
    print()
    print("== profile: registration (cProfile, top 15 by own time) ==")
    scheduler = Scheduler(workers=1)
    profiler = cProfile.Profile()
    profiler.enable()
    register(scheduler, jobs, prefix="prof")
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    for line in lines[start - 2 : start + 16]:
        print("  " + line.replace(sys.prefix, "<prefix>"))

    print()
    print("== cost per expression shape (mean of 300, microseconds) ==")
    print(f"  {'shape':<32} {'CronTrigger()':>13} {'next_fire()':>12}")
    now = datetime.now(UTC)
    zone = ZoneInfo("Europe/Berlin")
    rng = random.Random(7)
    for shape in SHAPES:
        exprs = [shape.format(m=rng.randrange(60), h=3, h2=17) for _ in range(300)]
        began = time.perf_counter()
        triggers = [CronTrigger(expr, zone) for expr in exprs]
        built = time.perf_counter()
        for trigger in triggers:
            trigger.next_fire(now)
        done = time.perf_counter()
        print(
            f"  {shape:<32} {(built - began) / 300 * 1e6:>13,.0f} "
            f"{(done - built) / 300 * 1e6:>12,.0f}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--profile", action="store_true", help="profile the registration")
    args = parser.parse_args(argv)

    print(machine_description())
    print(f"load average before the run: {load_average()}")
    rng = random.Random(args.seed)
    quiet = timedelta(seconds=args.idle_seconds + 600)
    jobs = draw_jobs(args.jobs, rng, quiet)
    distinct = len(set(jobs))
    print(
        f"{len(jobs):,} cron jobs, {len(SHAPES)} shapes, {len(ZONES)} zones, "
        f"{distinct:,} distinct (expression, zone) pairs; workers={args.workers}"
    )
    print()
    ok = True

    # -- registration -------------------------------------------------------------
    clock = CountingClock()
    scheduler = Scheduler(clock=clock, workers=args.workers)
    threads_before, os_before = threading.active_count(), os_threads()
    names_before = thread_names()
    gc.collect()
    rss_before = rss_bytes()
    ticks_before = cpu_ticks()
    building, adding = register(scheduler, jobs)
    load = machine_busy(ticks_before)
    rss_after = rss_bytes()
    total = building + adding
    passed = total < TARGET_REGISTER_S
    ok &= passed
    print(
        f"register {len(jobs):,} cron jobs:     {total:.3f} s  (CronTrigger() {building:.3f} s, "
        f"Scheduler.add() {adding:.3f} s; {total / len(jobs) * 1e6:.0f} us/job)"
        f"   target < {TARGET_REGISTER_S:g} s  {verdict(passed)}"
    )
    print(f"  machine CPU busy meanwhile:   {load} of {os.cpu_count()} cores (all processes)")
    if rss_before is not None and rss_after is not None:
        grown = rss_after - rss_before
        print(
            f"RSS growth over it:             {grown / 2**20:.1f} MiB  ({grown / len(jobs):,.0f} B/job)"
        )

    # -- threads ----------------------------------------------------------------------
    scheduler.start()
    time.sleep(0.2)
    threads_started, os_started = threading.active_count(), os_threads()
    print(
        f"threads before start():         {threads_before} Python, {os_before} kernel "
        f"({', '.join(names_before)})"
    )
    print(
        f"threads after start():          {threads_started} Python, {os_started} kernel "
        f"({', '.join(thread_names())})"
    )

    # -- idle -------------------------------------------------------------------------
    wake = scheduler.next_wakeup()
    now = datetime.now(UTC)
    if wake is None or wake - now < timedelta(seconds=args.idle_seconds + 5):
        print(f"WARNING: a job is due at {wake} during the idle period: figures include it")
    else:
        print(f"next fire of any job:           in {(wake - now).total_seconds() / 60:.0f} min")
    gc.collect()
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before, rusage_before = cpu_seconds()
    waits_before, reads_before = clock.waits, clock.reads
    idle_began = time.monotonic()
    time.sleep(args.idle_seconds)
    idle_wall = time.monotonic() - idle_began
    cpu_after, rusage_after = cpu_seconds()
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    per_minute = (cpu_after - cpu_before) / idle_wall * 60 * 1000
    per_minute_rusage = (rusage_after - rusage_before) / idle_wall * 60 * 1000
    passed = per_minute < TARGET_IDLE_MS_PER_MIN
    ok &= passed
    print(
        f"idle CPU, whole process:        {per_minute:.3f} ms/min over {idle_wall:.0f} s "
        f"(process_time; getrusage: {per_minute_rusage:.3f} ms/min)"
        f"   target < {TARGET_IDLE_MS_PER_MIN:g} ms/min  {verdict(passed)}"
    )
    print(
        f"  loop wake-ups while idle:     {clock.waits - waits_before}; clock reads: "
        f"{clock.reads - reads_before}; voluntary context switches: "
        f"{usage_after.ru_nvcsw - usage_before.ru_nvcsw}"
    )

    # -- re-registration into the running scheduler ----------------------------------------
    waits_before, ticks_before = clock.waits, cpu_ticks()
    building, adding = register(scheduler, jobs)
    load = machine_busy(ticks_before)
    print(
        f"re-register all into the running scheduler: {building + adding:.3f} s "
        f"(CronTrigger() {building:.3f} s, add() {adding:.3f} s; replaces every job; info)"
    )
    print(f"  loop wake-ups meanwhile:      {clock.waits - waits_before}; machine CPU busy {load}")
    heap = len(scheduler._heap)  # stale entries of replaced jobs stay until they surface
    print(f"  heap entries after it:        {heap:,} for {len(scheduler):,} jobs")

    # -- burst ------------------------------------------------------------------------
    peak = [0, 0]
    done = threading.Event()
    ran = [0]
    lock = threading.Lock()

    def burst_job(_firing: Firing) -> None:
        with lock:
            peak[0] = max(peak[0], threading.active_count())
            peak[1] = max(peak[1], os_threads())
            ran[0] += 1
            if ran[0] == BURST:
                done.set()
        time.sleep(0.01)

    due = datetime.now(UTC) + timedelta(seconds=0.3)
    for index in range(BURST):
        scheduler.add(f"burst-{index}", OnceTrigger(due), burst_job)
    finished = done.wait(15)
    scheduler.wait_idle(5)
    threads_burst, os_burst = threading.active_count(), os_threads()
    expected = threads_before + 1 + args.workers
    passed = finished and max(peak[0], threads_burst) <= expected
    ok &= passed
    print(
        f"threads during a burst of {BURST}:   peak {peak[0]} Python, {peak[1]} kernel; after it "
        f"{threads_burst} Python, {os_burst} kernel ({'all ran' if finished else 'NOT ALL RAN'})"
        f"   target <= {expected} (main + 1 loop + {args.workers} workers)  {verdict(passed)}"
    )
    for index in range(BURST):
        scheduler.remove(f"burst-{index}")
    scheduler.shutdown(grace=5)
    del scheduler
    gc.collect()

    # -- memory -----------------------------------------------------------------------
    print()
    memory_per_job(jobs)

    if args.profile:
        profile_registration(jobs)

    print()
    print("ALL PASS" if ok else "SOME MISS")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
