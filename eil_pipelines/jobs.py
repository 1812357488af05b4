"""The previous version's Python scheduling API, on the same engine as pipelines.

Users of the previous version scheduled plain Python functions::

    handle = schedule_interval(15, refresh_cache)     # every 15 minutes
    schedule_daily(7, 30, send_digest)                 # every day at 07:30
    list_jobs(); cancel(handle)

These calls keep working, on one shared :class:`~eil_pipelines.schedule.loop.Scheduler`
(one loop thread and a small worker pool, started on first use) instead of
the old thread per job that woke every 30 seconds: runs start on time, to
the millisecond.  A job that raises is logged and keeps its schedule.
"""

from __future__ import annotations

import itertools
import os
import threading
from datetime import datetime, time, timedelta
from numbers import Real
from pathlib import Path
from typing import Any

from .app import ledger_path
from .ledger import Ledger
from .outputs import atomic_write_text
from .schedule.loop import Scheduler
from .schedule.triggers import DailyTrigger, EveryTrigger
from .schedule.zones import get_zone

__all__ = ["cancel", "daily_kpi_summary", "list_jobs", "schedule_daily", "schedule_interval"]

_lock = threading.Lock()
_scheduler: Scheduler | None = None
_handles: dict[str, str] = {}  # handle -> kind, for the jobs this API made
_counter = itertools.count(1)


def use_scheduler(scheduler: Scheduler | None) -> None:
    """Make the API use ``scheduler`` (tests pass one with a manual clock); None resets."""
    global _scheduler
    with _lock:
        _scheduler = scheduler
        _handles.clear()


def _default_scheduler() -> Scheduler:
    global _scheduler
    with _lock:
        if _scheduler is None:
            _scheduler = Scheduler(workers=4, name="eil-jobs")
            _scheduler.start()
        return _scheduler


def _check_callable(job_fn: Any) -> None:
    if not callable(job_fn):
        raise ValueError(f"job_fn must be callable, got {type(job_fn).__name__}")


def _register(kind: str, trigger: Any, job_fn: Any) -> str:
    scheduler = _default_scheduler()
    handle = f"{kind}-{next(_counter)}"

    def call(_firing: Any) -> None:
        job_fn()

    scheduler.add(handle, trigger, call, kind=kind)
    with _lock:
        _handles[handle] = kind
    return handle


def schedule_interval(minutes: float, job_fn: Any) -> str:
    """Run ``job_fn()`` every ``minutes`` minutes (fractions allowed, at least one second).

    The first run is one interval from now.  Returns a handle for :func:`cancel`.
    Raises ``ValueError`` for ``minutes <= 0`` or a ``job_fn`` that is not callable.
    """
    if isinstance(minutes, bool) or not isinstance(minutes, Real):
        raise ValueError(f"minutes must be a number, got {minutes!r}")
    if minutes <= 0:
        raise ValueError(f"minutes must be greater than 0, got {minutes}")
    _check_callable(job_fn)
    interval = timedelta(minutes=float(minutes))
    if interval < timedelta(seconds=1):
        raise ValueError(f"minutes must be at least 1/60 (one second), got {minutes}")
    scheduler = _default_scheduler()
    zone = get_zone(None)
    trigger = EveryTrigger(interval, zone, start=scheduler.clock.now())
    return _register("interval", trigger, job_fn)


def schedule_daily(hour: int, minute: int, job_fn: Any) -> str:
    """Run ``job_fn()`` every day at ``hour:minute`` local time.  Returns a handle.

    Raises ``ValueError`` for an hour outside 0-23, a minute outside 0-59, or a
    ``job_fn`` that is not callable.
    """
    for name, value, top in (("hour", hour, 23), ("minute", minute, 59)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise ValueError(f"{name} must be a whole number from 0 to {top}, got {value!r}")
    _check_callable(job_fn)
    trigger = DailyTrigger([time(hour, minute)], None, get_zone(None))
    return _register("daily", trigger, job_fn)


def cancel(handle: str) -> bool:
    """Unschedule a job: True the first time, False for an unknown or cancelled handle."""
    with _lock:
        if _handles.pop(handle, None) is None:
            return False
        scheduler = _scheduler
    return scheduler.remove(handle) if scheduler is not None else False


def list_jobs() -> list[dict[str, Any]]:
    """The active jobs: handle, kind, next run, last run, run count and error count."""
    with _lock:
        scheduler, handles = _scheduler, dict(_handles)
    if scheduler is None:
        return []
    return [
        {
            "handle": info.key,
            "kind": info.kind,
            "next_run": info.next_fire,
            "last_run": info.last_run,
            "run_count": info.run_count,
            "error_count": info.error_count,
        }
        for info in scheduler.jobs()
        if info.key in handles
    ]


def daily_kpi_summary(
    reports_dir: str | Path = "reports", *, day: Any = None, now: datetime | None = None
) -> Path:
    """Write ``<reports_dir>/daily/YYYYMMDD_summary.md``: today's runs of every pipeline.

    For each run scheduled on ``day`` (default: today, local time) it lists the
    status, the headline metrics and links to the reports; folders are
    created as needed.  Returns the path written.
    """

    reports = Path(reports_dir)
    zone = get_zone(None)
    moment = (now or datetime.now(zone)).astimezone(zone)
    target_day = day or moment.date()
    out_dir = reports / "daily"
    path = out_dir / f"{target_day.strftime('%Y%m%d')}_summary.md"
    records = []
    if ledger_path(reports).exists():
        ledger = Ledger(ledger_path(reports))
        try:
            records = [
                r
                for r in ledger.history(limit=None)
                if r.scheduled_at.astimezone(zone).date() == target_day
            ]
        finally:
            ledger.close()
    records.sort(key=lambda r: (r.pipeline, r.scheduled_at))
    lines = [f"# Daily summary, {target_day.isoformat()}", ""]
    if not records:
        lines.append("No pipeline runs are recorded for this day.")
    else:
        counts: dict[str, int] = {}
        for record in records:
            counts[record.status] = counts.get(record.status, 0) + 1
        lines.append(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) + ".")
        lines += [
            "",
            "| pipeline | scheduled | status | headline | reports |",
            "| --- | --- | --- | --- | --- |",
        ]
        for record in records:
            when = record.scheduled_at.astimezone(zone).strftime("%H:%M")
            metrics = (record.summary or {}).get("metrics", [])
            headline = "; ".join(
                f"{m['label']} {m['text']}"
                + (f" ({m['change_text']})" if m.get("change_text") not in (None, "–") else "")
                for m in metrics[:3]
            )
            if record.status != "succeeded" and record.error:
                headline = record.error.splitlines()[0][:120]
            links = ", ".join(
                f"[{Path(f).suffix.lstrip('.')}]({_relative(Path(f), out_dir)})"
                for f in record.files
                if Path(f).suffix in (".md", ".html") and not Path(f).name.startswith("latest.")
            )
            cells = [record.pipeline, when, record.status, headline or "–", links or "–"]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _relative(target: Path, start: Path) -> str:

    try:
        return os.path.relpath(target.resolve(), start.resolve()).replace(os.sep, "/")
    except ValueError:  # another drive on Windows
        return target.as_posix()
