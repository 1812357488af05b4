"""Benchmark how late scheduled jobs start: our Scheduler against common peers.

Run from anywhere::

    python benchmarks/bench_scheduler.py [--fires 200] [--others 1000] [--workers 4]

Lateness is a run's actual start, ``time.time()`` at the top of the job
function in its worker, minus the fire time it stands for.  Each scheduler
gets the same load, one after another (about 50 s each with the defaults):

* one job every 0.25 s, on a grid of multiples of 0.25 s since the Unix epoch;
* four jobs every 1 s, phased 0.10, 0.35, 0.60 and 0.85 s past the second so
  that they never coincide with the 0.25 s job (200 one-second fires in 50 s);
* ``--others`` (1,000) other jobs registered but firing rarely: daily cron at a
  random hour and minute in one of several zones, drawn so that none of them
  falls inside the measured window (every scheduler holds the same list).

Rows:

1. ``ours``: :class:`eil_pipelines.schedule.loop.Scheduler` with the real
   :class:`SystemClock`; :class:`EveryTrigger` for 1 s (anchored 0.10 s past a
   second, and so on) and a small grid trigger defined here for 0.25 s
   (``EveryTrigger`` accepts whole seconds only).  The fire time is
   ``Firing.scheduled_at``.
2. ``apscheduler``: APScheduler 3's ``BackgroundScheduler`` with an
   ``IntervalTrigger`` anchored on the same grids, and the 1,000 other jobs as
   its ``CronTrigger``.  Its job functions are not told their fire time, so it
   is the grid point just before the start: right as long as no run is a
   whole interval late (the max column shows how far from that it is).
3. ``schedule``: the ``schedule`` library, whose smallest unit is one second
   (no 0.25 s schedule is possible), driven by a ``run_pending()`` loop in the
   main thread, in two variants: ``sleep(1)`` (the loop its documentation
   shows) and ``sleep(0.01)`` (a tight loop).  Two kinds of 1 s schedule:

   * ``every(1).seconds``: its next run is "now + 1 s" computed after each
     run, so there is no grid.  Row ``own``: lateness against the library's
     own ``next_run`` at the time of the run.  Row ``grid``: against the grid
     the user asked for (first run + k seconds), which shows the drift;
   * ``every().minute.at(":SS")``: 240 jobs (four at each second of the
     minute), each firing once a minute on a whole second; the fire time is
     the whole second.  This is how fixed clock times ("07:00") behave.
     The loop is started 0.5 s past a second, where a ``sleep(1)`` loop sits
     on average (each turn takes a little over 1 s, so it slides through
     every phase over time).

   The 1,000 other jobs are ``every().day.at("HH:MM")`` in the machine's zone
   (the library needs pytz for other zones).
4. ``floor (no scheduler)``, measured first: one bare thread in ``Condition.wait(timeout)``
   until the next multiple of 0.05 s, 200 times: what the OS (or VM) and the
   interpreter add before any scheduler does anything; the tail of every
   other row sits on it.
5. ``poll 30s (simulated)``: the previous design, a thread per job that
   wakes every 30 s and runs the job if its time has passed.  Its lateness is
   the time from the fire time to the thread's next wake: uniform over
   0-30 s.  Computed, not waited for: 200 jobs (daily cron at random minutes),
   each thread started at a random instant and waking every 30 s plus 1 ms
   of overshoot, first fire of each.

Figures: median, p90, p99 (nearest rank), max, and drift: the median
lateness of the last 20 fires minus that of the first 20, in fire-time
order.  ``x ours`` is the median against our median for the same interval
(the simulated row against ours at 1 s).  Targets for ours: median < 1 ms,
p99 < 5 ms, |drift| < 1 ms.

This is a benchmark, not a test: nothing imports it but
``bench_scheduler_scale.py`` (for :func:`machine_description`).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.metadata
import math
import os
import platform
import random
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from eil_pipelines.schedule.cron import CronTrigger
from eil_pipelines.schedule.loop import Firing, Scheduler, SystemClock
from eil_pipelines.schedule.triggers import EveryTrigger

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SUB_INTERVAL = 0.25
SECOND_PHASES = (0.10, 0.35, 0.60, 0.85)
OTHER_ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Asia/Kolkata",
)
POLL_PERIOD = 30.0
POLL_OVERSHOOT = 0.001
PEERS = ("apscheduler", "schedule")
SCHEDULE_PHASE = 0.5  # where in the second the schedule loops start
EDGE = 20  # fires at each end compared for drift

TARGET_MEDIAN_MS = 1.0
TARGET_P99_MS = 5.0
TARGET_DRIFT_MS = 1.0


# --------------------------------------------------------------------------- machine


def machine_description() -> str:
    """CPU model, cores, RAM, OS and Python, on one line each."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram = "unknown"
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return "\n".join(
        [
            f"CPU:    {model}",
            f"cores:  {os.cpu_count()} logical ({usable} usable by this process)",
            f"RAM:    {ram}",
            f"OS:     {platform.platform()}",
            f"Python: {platform.python_implementation()} {platform.python_version()}",
        ]
    )


# --------------------------------------------------------------------------- figures


@dataclass
class Row:
    """One scheduler on one schedule: fire times and starts, in seconds since the epoch."""

    scheduler: str
    schedule: str
    interval: float  # what "x ours" compares against: ours at this interval
    samples: list[tuple[float, float]] = field(default_factory=list)  # (fire time, start)
    note: str = ""

    def lateness_ms(self, limit: int) -> list[float]:
        """Lateness of the first ``limit`` fires, in fire-time order, in ms."""
        ordered = sorted(self.samples)[:limit]
        return [(start - fire) * 1000 for fire, start in ordered]


def nearest_rank(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile by nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Stats:
    n: int
    median: float
    p90: float
    p99: float
    max: float
    drift: float


def stats(lateness: Sequence[float]) -> Stats | None:
    if not lateness:
        return None
    edge = min(EDGE, len(lateness) // 2) or 1
    drift = statistics.median(lateness[-edge:]) - statistics.median(lateness[:edge])
    return Stats(
        len(lateness),
        statistics.median(lateness),
        nearest_rank(lateness, 90),
        nearest_rank(lateness, 99),
        max(lateness),
        drift,
    )


def fmt_ms(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


# --------------------------------------------------------------------------- shared load


class GridTrigger:
    """Fires every ``interval`` seconds (sub-second allowed) at ``offset`` + multiples
    of ``interval`` since the Unix epoch, in whole microseconds."""

    def __init__(self, interval: float, offset: float = 0.0):
        self.step = round(interval * 1_000_000)
        self.offset = round(offset * 1_000_000)

    def next_fire(self, after: datetime) -> datetime:
        micros = (after - EPOCH) // timedelta(microseconds=1)
        k = (micros - self.offset) // self.step + 1
        return EPOCH + timedelta(microseconds=k * self.step + self.offset)


@dataclass(frozen=True)
class OtherJob:
    hour: int
    minute: int
    zone: str


def other_jobs(count: int, rng: random.Random, quiet_for: timedelta) -> list[OtherJob]:
    """``count`` daily cron times in assorted zones, none due within ``quiet_for`` from now."""
    now = datetime.now(UTC)
    out: list[OtherJob] = []
    while len(out) < count:
        job = OtherJob(rng.randrange(24), rng.randrange(60), rng.choice(OTHER_ZONES))
        first = CronTrigger(f"{job.minute} {job.hour} * * *", ZoneInfo(job.zone)).next_fire(now)
        # schedule's copies run in the machine's zone at the same HH:MM: keep both quiet.
        local = now.astimezone().replace(hour=job.hour, minute=job.minute, second=0, microsecond=0)
        local_gap = (local - now.astimezone()) % timedelta(days=1)
        if first - now > quiet_for and local_gap > quiet_for:
            out.append(job)
    return out


def noop(*_args: object) -> None:
    """The other jobs' function (never called in the measured window)."""


def wait_for(done: Callable[[], bool], limit: float, step: float) -> bool:
    deadline = time.monotonic() + limit
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


# --------------------------------------------------------------------------- peers


def run_ours(fires: int, others: list[OtherJob], workers: int) -> list[Row]:
    sub = Row("ours", "0.25 s", SUB_INTERVAL)
    sec = Row("ours", "1 s (EveryTrigger)", 1.0)
    scheduler = Scheduler(clock=SystemClock(), workers=workers)
    for i, other in enumerate(others):
        trigger = CronTrigger(f"{other.minute} {other.hour} * * *", ZoneInfo(other.zone))
        scheduler.add(f"other-{i}", trigger, noop)

    def measure(row: Row) -> Callable[[Firing], None]:
        def job(firing: Firing) -> None:
            started = time.time()
            row.samples.append((firing.scheduled_at.timestamp(), started))

        return job

    scheduler.add("sub", GridTrigger(SUB_INTERVAL), measure(sub))
    for phase in SECOND_PHASES:
        anchor = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=phase)
        trigger = EveryTrigger(timedelta(seconds=1), ZoneInfo("UTC"), start=anchor)
        scheduler.add(f"second-{phase}", trigger, measure(sec))
    scheduler.start()
    limit = fires * SUB_INTERVAL * 1.5 + 10
    wait_for(lambda: len(sub.samples) >= fires and len(sec.samples) >= fires, limit, 0.2)
    scheduler.shutdown(grace=5)
    return [sub, sec]


def run_apscheduler(fires: int, others: list[OtherJob]) -> list[Row]:
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger as ApsCronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    sub = Row("apscheduler", "0.25 s", SUB_INTERVAL)
    sec = Row("apscheduler", "1 s (IntervalTrigger)", 1.0)
    scheduler = BackgroundScheduler(timezone=UTC)
    for i, other in enumerate(others):
        trigger = ApsCronTrigger(hour=other.hour, minute=other.minute, timezone=other.zone)
        scheduler.add_job(noop, trigger, id=f"other-{i}")
    anchor = math.floor(time.time()) - 60.0

    def measure(row: Row, interval: float, phase: float) -> Callable[[], None]:
        def job() -> None:
            started = time.time()
            grid = anchor + phase
            row.samples.append((grid + (started - grid) // interval * interval, started))

        return job

    def grid_start(phase: float) -> datetime:
        return datetime.fromtimestamp(anchor + phase, UTC)

    sub_trigger = IntervalTrigger(seconds=SUB_INTERVAL, start_date=grid_start(0.0), timezone=UTC)
    scheduler.add_job(measure(sub, SUB_INTERVAL, 0.0), sub_trigger, id="sub")
    for phase in SECOND_PHASES:
        trigger = IntervalTrigger(seconds=1, start_date=grid_start(phase), timezone=UTC)
        scheduler.add_job(measure(sec, 1.0, phase), trigger, id=f"second-{phase}")
    scheduler.start()
    limit = fires * SUB_INTERVAL * 1.5 + 10
    wait_for(lambda: len(sub.samples) >= fires and len(sec.samples) >= fires, limit, 0.2)
    scheduler.shutdown(wait=True)
    return [sub, sec]


def run_schedule(fires: int, others: list[OtherJob], pause: float) -> list[Row]:
    import schedule

    label = f"schedule sleep({pause:g})"
    own = Row(label, "1 s every(1).seconds, own", 1.0)
    grid = Row(label, "1 s every(1).seconds, grid", 1.0)
    at = Row(label, '1 s minute.at(":SS") x4', 1.0)
    sched = schedule.Scheduler()
    for other in others:
        sched.every().day.at(f"{other.hour:02d}:{other.minute:02d}").do(noop)

    # Start the loop half-way between two seconds: where a sleep(1) loop sits on
    # average over a long run (it slides through every phase).
    time.sleep((SCHEDULE_PHASE - time.time()) % 1.0)
    every_jobs: list[schedule.Job] = []
    runs: dict[int, list[tuple[float, float]]] = {}

    def every_job(index: int) -> None:
        started = time.time()
        # Inside the run, next_run is still the time this run was due.
        runs[index].append((every_jobs[index].next_run.timestamp(), started))

    for index in range(len(SECOND_PHASES)):
        runs[index] = []
        every_jobs.append(sched.every(1).seconds.do(every_job, index))

    def at_job(second: int) -> None:
        started = time.time()
        at.samples.append((math.floor(started) - (math.floor(started) - second) % 60, started))

    for second in range(60):
        for _ in range(4):
            sched.every().minute.at(f":{second:02d}").do(at_job, second)

    deadline = time.monotonic() + fires / len(SECOND_PHASES) * 1.5 + 70
    while time.monotonic() < deadline:
        sched.run_pending()
        if len(at.samples) >= fires and all(len(r) >= fires // len(runs) for r in runs.values()):
            break
        time.sleep(pause)
    for samples in runs.values():
        own.samples.extend(samples)
        first_due = samples[0][0] if samples else 0.0
        # The grid the user asked for: the first fire, then every whole second.
        grid.samples.extend((first_due + k, start) for k, (_, start) in enumerate(samples))
    sched.clear()
    return [own, grid, at]


def measure_floor(fires: int, interval: float = 0.05) -> Row:
    """The machine's own floor: one bare thread waiting on a Condition for the next grid point."""
    row = Row("floor (no scheduler)", f"cond.wait to {interval:g} s grid", SUB_INTERVAL)
    condition = threading.Condition()
    with condition:
        for _ in range(fires):
            due = (math.floor(time.time() / interval) + 1) * interval
            while (remaining := due - time.time()) > 0:
                condition.wait(remaining)
            row.samples.append((due, time.time()))
    return row


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, from /proc/loadavg."""
    try:
        with open("/proc/loadavg", encoding="utf-8") as handle:
            return " ".join(handle.read().split()[:3])
    except OSError:
        return "unknown"


def cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    try:
        with open("/proc/stat", encoding="utf-8") as handle:
            values = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


class Busy:
    """How busy the machine was (all processes) and this process's CPU, over a block."""

    def __enter__(self) -> Busy:
        self.ticks, self.cpu, self.wall = cpu_ticks(), time.process_time(), time.monotonic()
        return self

    def __exit__(self, *_exc: object) -> None:
        after, wall = cpu_ticks(), time.monotonic() - self.wall
        share = "?"
        if self.ticks and after and after[1] > self.ticks[1]:
            share = f"{(after[0] - self.ticks[0]) / (after[1] - self.ticks[1]):.0%}"
        own = (time.process_time() - self.cpu) / wall
        print(
            f"  {wall:.0f} s; machine CPU busy {share} of {os.cpu_count()} cores, all processes"
            f" (this one: {own:.1%} of a core)",
            flush=True,
        )


def simulate_poll(fires: int, rng: random.Random) -> Row:
    """The previous design: one thread per job, ``while True: check; sleep(30)``."""
    row = Row("poll 30s (simulated)", "daily cron, 1 thread/job", 1.0)
    day = 86_400.0
    for _ in range(fires):
        fire = rng.randrange(1440) * 60.0 + day  # its fire time on day 2
        started = rng.uniform(0, day)  # when its thread started, on day 1
        period = POLL_PERIOD + POLL_OVERSHOOT  # sleep(30) plus the check and overshoot
        wakes = math.ceil((fire - started) / period)
        row.samples.append((fire, started + wakes * period))
    return row


# --------------------------------------------------------------------------- report


NOTES = (
    "floor: no scheduler, one thread in Condition.wait(timeout) to the next 0.05 s; the OS/VM tail.",
    "schedule every(1).seconds: 'own' = against the library's next_run (now + 1 s after each run,",
    "  so it slides); 'grid' = against the first fire + k s, the schedule asked for.",
    'schedule minute.at(":SS"): whole-second fire times; the sleep(1) loop starts 0.5 s past a',
    "  second (its long-run average phase: over time it slides through 0-1 s, see drift).",
    "poll 30s: simulated, lateness uniform over 0-30 s; its drift figure is sampling noise.",
)


def print_table(rows: list[Row], fires: int) -> dict[str, Stats]:
    ours = {}
    computed = []
    for row in rows:
        figures = stats(row.lateness_ms(fires))
        computed.append((row, figures))
        if row.scheduler == "ours" and figures is not None:
            ours[row.interval] = figures
    header = (
        f"{'scheduler':<22} {'schedule':<28} {'n':>4} {'median ms':>10} {'p90 ms':>9} "
        f"{'p99 ms':>9} {'max ms':>9} {'drift ms':>9} {'x ours':>8}"
    )
    print(header)
    print("-" * len(header))
    for row, figures in computed:
        if figures is None:
            print(f"{row.scheduler:<22} {row.schedule:<28} {'-':>4}  {row.note or 'no data'}")
            continue
        base = ours.get(row.interval)
        ratio = "-"
        if base is not None and row.scheduler != "ours" and base.median > 0:
            factor = figures.median / base.median
            ratio = f"{factor:,.0f}" if factor >= 10 else f"{factor:.1f}"
        print(
            f"{row.scheduler:<22} {row.schedule:<28} {figures.n:>4} {fmt_ms(figures.median):>10} "
            f"{fmt_ms(figures.p90):>9} {fmt_ms(figures.p99):>9} {fmt_ms(figures.max):>9} "
            f"{fmt_ms(figures.drift):>9} {ratio:>8}"
        )
    return {row.schedule: figures for row, figures in computed if row.scheduler == "ours"}


def verdicts(ours: dict[str, Stats | None]) -> bool:
    ok = True
    print()
    print(
        f"Targets for ours: median < {TARGET_MEDIAN_MS:g} ms, p99 < {TARGET_P99_MS:g} ms, "
        f"|drift| < {TARGET_DRIFT_MS:g} ms"
    )
    for schedule_name, figures in ours.items():
        if figures is None:
            print(f"  {schedule_name}: MISS (no fires recorded)")
            ok = False
            continue
        checks = [
            ("median", figures.median, figures.median < TARGET_MEDIAN_MS),
            ("p99", figures.p99, figures.p99 < TARGET_P99_MS),
            ("drift", figures.drift, abs(figures.drift) < TARGET_DRIFT_MS),
        ]
        for name, value, passed in checks:
            ok &= passed
            verdict = "PASS" if passed else "MISS"
            print(f"  {schedule_name:<20} {name:<7} {fmt_ms(value):>8} ms  {verdict}")
    return ok


def installed(name: str) -> str | None:
    """The version of an importable, installed distribution, or None."""
    try:
        importlib.import_module(name)
        return importlib.metadata.version(name)
    except (ImportError, importlib.metadata.PackageNotFoundError):
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fires", type=int, default=200, help="fires measured per row")
    parser.add_argument("--others", type=int, default=1000, help="other jobs registered")
    parser.add_argument("--workers", type=int, default=4, help="our Scheduler's worker threads")
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument(
        "--skip", action="append", default=[], help="apscheduler, schedule (repeatable)"
    )
    args = parser.parse_args(argv)

    print(machine_description())
    print(f"load average before the run: {load_average()}")
    rng = random.Random(args.seed)
    window = timedelta(seconds=args.fires * SUB_INTERVAL * 4 + 600)
    others = other_jobs(args.others, rng, window)
    print(
        f"{args.fires} fires per row; {len(others)} other jobs (daily cron, none due in the run);"
        f" 0.25 s job + four 1 s jobs at +{', +'.join(f'{p:.2f}' for p in SECOND_PHASES)} s"
    )
    print()

    rows: list[Row] = []
    began = time.monotonic()
    print("measuring the floor: a bare thread waiting on a Condition ...", flush=True)
    with Busy():
        rows.append(measure_floor(args.fires))
    print(f"running ours (workers={args.workers}) ...", flush=True)
    with Busy():
        rows += run_ours(args.fires, others, args.workers)
    gc.collect()

    if "apscheduler" not in args.skip:
        print("running apscheduler ...", flush=True)
        found_version = installed("apscheduler")
        if found_version is None:
            print("  skipped: APScheduler is not installed (pip install 'apscheduler==3.*')")
        elif not found_version.startswith("3."):
            print(f"  skipped: APScheduler {found_version} is not 3.x")
        else:
            with Busy():
                rows += run_apscheduler(args.fires, others)
        gc.collect()
    if "schedule" not in args.skip:
        if installed("schedule") is None:
            print("running schedule ...")
            print("  skipped: schedule is not installed (pip install schedule)")
        else:
            for pause in (1.0, 0.01):
                print(f"running schedule, run_pending() + sleep({pause:g}) ...", flush=True)
                with Busy():
                    found = run_schedule(args.fires, others, pause)
                rows += found
                rows.append(
                    Row(
                        found[0].scheduler,
                        "0.25 s",
                        SUB_INTERVAL,
                        note="n/a: schedule's smallest unit is 1 s",
                    )
                )
                gc.collect()
    rows.append(simulate_poll(args.fires, rng))
    elapsed = time.monotonic() - began

    print()
    print("Lateness = start in the worker (time.time()) - fire time; drift = median of the last")
    print(
        f"{EDGE} fires - median of the first {EDGE}; x ours = median / ours at the same interval."
    )
    print()
    ours = print_table(rows, args.fires)
    print()
    for note in NOTES:
        print(note)
    versions = [f"{name} {installed(name) or 'not installed'}" for name in PEERS]
    print()
    print("peers: " + ", ".join(versions) + f"; measured in {elapsed:.0f} s")
    ok = verdicts(ours)
    print()
    print("ALL PASS" if ok else "SOME MISS")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
