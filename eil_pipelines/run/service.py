"""The scheduler service: a folder of pipelines run on their schedules, exactly once.

This wires the generic :class:`~eil_pipelines.schedule.loop.Scheduler` to
pipelines: each enabled, scheduled pipeline is a job whose function runs it
through :func:`run_pipeline`, claiming its (pipeline, scheduled time) in the
run ledger first, so the same scheduled time never runs twice, across
restarts and across two processes started on one folder by mistake.

Policies, documented in docs/scheduler.md:

* At start-up, rows a killed process left ``running`` become ``abandoned``;
  a pipeline's first fire time is the first after the newest time in its
  ledger (just before it, when that run was abandoned), so times missed
  while down are due at once and its ``catch_up`` policy decides.
* Hot reload: the folder is checked every ``reload_interval`` seconds (and
  on :meth:`reload`, SIGHUP).  A new file is scheduled, a changed one is
  rescheduled, a deleted one unscheduled.  A file edited into an invalid
  state is logged with every problem, and its last good version keeps running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import ConfigError, EilError
from ..schedule.loop import Clock, Firing, JobOptions, Scheduler, SystemClock
from ..spec.loader import Pipeline, load_pipeline, pipeline_files, project_root_for
from .context import make_context, pipeline_trigger, pipeline_zone
from .pipeline import run_pipeline

log = logging.getLogger("eil_pipelines.scheduler")

LEDGER_NAME = Path(".eil") / "ledger.sqlite3"


def ledger_path(reports_dir: Path) -> Path:
    """Where the run ledger of a reports folder lives."""
    return reports_dir / LEDGER_NAME


@dataclass
class _Loaded:
    pipeline: Pipeline
    fingerprint: tuple[Any, ...]


def _fingerprint(pipeline: Pipeline) -> tuple[Any, ...]:
    template = pipeline.template_path
    template_text = template.read_text(encoding="utf-8") if template and template.exists() else None
    return (pipeline.spec, tuple(sorted(pipeline.sql.items())), template_text, pipeline.name)


def job_options(pipeline: Pipeline) -> JobOptions:
    """The loop's options from a pipeline's ``[schedule]``."""
    schedule = pipeline.spec.schedule
    assert schedule is not None
    return JobOptions(
        catch_up=schedule.catch_up,
        max_catch_up=schedule.max_catch_up,
        overlap=schedule.overlap,
        retries=schedule.retries,
        retry_delay=schedule.retry_delay,
        timeout=schedule.timeout,
        jitter=schedule.jitter,
    )


class SchedulerService:
    """Runs every enabled, scheduled pipeline of a folder on time."""

    def __init__(
        self,
        path: Path | str,
        *,
        reports_dir: Path | None = None,
        clock: Clock | None = None,
        workers: int = 4,
        env: Mapping[str, str] | None = None,
        reload_interval: float = 1.0,
        scheduler: Scheduler | None = None,
    ):
        self.path = Path(path)
        self.root = project_root_for(self.path)
        self.reports_dir = reports_dir or self.root / "reports"
        self.clock = clock or SystemClock()
        self.env = os.environ if env is None else env
        self.reload_interval = reload_interval
        self.scheduler = scheduler or Scheduler(clock=self.clock, workers=workers)
        self._loaded: dict[Path, _Loaded] = {}
        self._broken: dict[Path, str] = {}
        self._snapshot: dict[Path, tuple[int, int]] = {}
        self._timed_out: set[tuple[str, datetime]] = set()
        self._sources: dict[tuple[str, datetime], Any] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.ledger: Any = None

    # -- life cycle -------------------------------------------------------------------

    def start(self, *, watch: bool = True, loop: bool = True) -> None:
        """Load every pipeline (raising ConfigErrors if any is invalid), recover the
        ledger, schedule the jobs and start the loop.

        ``watch=False`` skips the folder watcher (call :meth:`reload`);
        ``loop=False`` skips the loop thread (drive ``self.scheduler.run_due``).
        """
        from ..ledger import Ledger
        from ..spec.loader import load_pipelines

        pipelines = load_pipelines(self.path, env=self.env)
        self.ledger = Ledger(ledger_path(self.reports_dir))
        now = self.clock.now()
        for record in self.ledger.mark_abandoned(now=now):
            log.warning(
                "abandoned: %s at %s (the process running it stopped)",
                record.pipeline,
                record.scheduled_at.isoformat(),
            )
        with self._lock:
            for pipeline in pipelines:
                self._loaded[pipeline.file] = _Loaded(pipeline, _fingerprint(pipeline))
                self._schedule(pipeline, at_start=True)
            self._snapshot = self._take_snapshot()
        self.scheduler.start(loop=loop)
        self.log_table()
        if watch:
            self._watcher = threading.Thread(target=self._watch, name="eil-reload", daemon=True)
            self._watcher.start()

    def stop(self, grace: float | None = 30.0) -> bool:
        """Stop starting runs, wait up to ``grace`` seconds for those in flight,
        and record the rest as abandoned.  True when all finished in time."""
        self._stop.set()
        finished = self.scheduler.shutdown(grace)
        if not finished and self.ledger is not None:
            me = os.getpid()
            left = self.ledger.mark_abandoned(
                now=self.clock.now(), pids_alive=lambda pid: pid != me
            )
            for record in left:
                log.warning(
                    "abandoned: %s at %s (still running at shutdown)",
                    record.pipeline,
                    record.scheduled_at.isoformat(),
                )
        if self._watcher is not None:
            self._watcher.join(timeout=2)
        return finished

    # -- scheduling -------------------------------------------------------------------

    def pipelines(self) -> list[Pipeline]:
        """The pipelines loaded now (the last good version of each file)."""
        with self._lock:
            return sorted((entry.pipeline for entry in self._loaded.values()), key=lambda p: p.name)

    def _schedule(self, pipeline: Pipeline, *, at_start: bool) -> None:
        if not pipeline.spec.enabled or pipeline.spec.schedule is None:
            self.scheduler.remove(pipeline.name)
            return
        trigger = pipeline_trigger(pipeline)
        now = self.clock.now()
        first_after = now
        if at_start:
            last = self.ledger.last_run(pipeline.name)
            if last is not None:
                first_after = last.scheduled_at
                if last.status == "abandoned":
                    # The abandoned time itself is missed work: let catch-up see it.
                    first_after = last.scheduled_at - timedelta(microseconds=1)
                first_after = min(first_after, now)
        name = pipeline.name
        self.scheduler.add(
            name,
            trigger,
            lambda firing: self._run(name, firing),
            options=job_options(pipeline),
            first_after=first_after,
            on_timeout=self._on_timeout,
            on_skip=self._on_skip,
            kind="pipeline",
        )

    def log_table(self) -> None:
        """Log each scheduled pipeline with its schedule and next fire time in its zone."""
        jobs = {j.key: j for j in self.scheduler.jobs()}
        rows = []
        for pipeline in self.pipelines():
            job = jobs.get(pipeline.name)
            trigger = pipeline_trigger(pipeline)
            if job is None or job.next_fire is None or trigger is None:
                state = "disabled" if not pipeline.spec.enabled else "on demand only"
                rows.append((pipeline.name, state, "-"))
                continue
            zone = pipeline_zone(pipeline)
            rows.append(
                (pipeline.name, trigger.describe(), job.next_fire.astimezone(zone).isoformat())
            )
        if not rows:
            log.info("no pipelines")
            return
        widths = [
            max(len(r[i]) for r in [*rows, ("pipeline", "schedule", "next run")]) for i in range(2)
        ]
        log.info("%s  %s  %s", "pipeline".ljust(widths[0]), "schedule".ljust(widths[1]), "next run")
        for name, schedule, next_run in rows:
            log.info("%s  %s  %s", name.ljust(widths[0]), schedule.ljust(widths[1]), next_run)

    # -- one run ------------------------------------------------------------------------

    def _current(self, name: str) -> Pipeline | None:
        with self._lock:
            for loaded in self._loaded.values():
                if loaded.pipeline.name == name:
                    return loaded.pipeline
        return None

    def _run(self, name: str, firing: Firing) -> bool:
        pipeline = self._current(name)
        if pipeline is None:
            return True
        ctx = make_context(pipeline, firing.scheduled_at, attempt=firing.attempt)
        key = (name, firing.scheduled_at)
        now = self.clock.now()
        if firing.attempt == 1:
            record = self.ledger.claim(name, firing.scheduled_at, run_id=ctx.run_id, now=now)
            if record is None:
                existing = self.ledger.get(name, firing.scheduled_at)
                if existing is not None and existing.status == "abandoned":
                    record = self.ledger.reclaim(
                        name,
                        firing.scheduled_at,
                        run_id=ctx.run_id,
                        attempt=existing.attempt + 1,
                        now=now,
                        allowed_from=("abandoned",),
                    )
            if record is None:
                log.info(
                    "not run: %s at %s is already in the ledger (another process, or an earlier run)",
                    name,
                    firing.scheduled_at.isoformat(),
                )
                return True
        else:
            record = self.ledger.reclaim(
                name, firing.scheduled_at, run_id=ctx.run_id, attempt=firing.attempt, now=now
            )
            if record is None:
                return True
        log.info(
            "started: %s at %s (attempt %d)", name, firing.scheduled_at.isoformat(), firing.attempt
        )

        def remember(source: Any) -> None:
            with self._lock:
                self._sources[key] = source

        try:
            result = run_pipeline(
                pipeline, ctx, self.reports_dir, clock=self.clock.now, on_source=remember
            )
        finally:
            with self._lock:
                self._sources.pop(key, None)
                timed_out = key in self._timed_out
                self._timed_out.discard(key)
        status, error = result.status, result.error
        if timed_out and not result.ok:
            status = "timed_out"
            assert pipeline.spec.schedule is not None and pipeline.spec.schedule.timeout is not None
            error = f"stopped after the timeout of {pipeline.spec.schedule.timeout}: {error}"
        summary = {
            "metrics": [
                {
                    "label": m.label,
                    "text": m.text,
                    "change_text": m.change_text,
                    "sentiment": m.sentiment,
                }
                for m in result.metrics
            ]
        }
        self.ledger.finish(
            name,
            firing.scheduled_at,
            status=status,
            now=self.clock.now(),
            error=error,
            files=[str(f) for f in result.files],
            run_id=ctx.run_id,
            summary=summary,
        )
        if status == "succeeded":
            shown = ", ".join(
                str(f)
                for f in result.files
                if f.suffix in (".md", ".html") and "latest" not in f.name
            )
            log.info(
                "finished: %s at %s in %.2fs: %s",
                name,
                firing.scheduled_at.isoformat(),
                result.duration,
                shown,
            )
        else:
            log.error(
                "%s: %s at %s (attempt %d): %s",
                status,
                name,
                firing.scheduled_at.isoformat(),
                firing.attempt,
                error,
            )
        return status == "succeeded"

    def _on_timeout(self, firing: Firing) -> None:
        key = (firing.key, firing.scheduled_at)
        with self._lock:
            self._timed_out.add(key)
            source = self._sources.get(key)
        log.warning(
            "timeout: %s at %s: interrupting its query", firing.key, firing.scheduled_at.isoformat()
        )
        if source is not None:
            source.interrupt()

    def _on_skip(self, firing: Firing, reason: str) -> None:
        log.info("skipped: %s at %s: %s", firing.key, firing.scheduled_at.isoformat(), reason)
        self.ledger.record_skipped(
            firing.key, firing.scheduled_at, reason=reason, now=self.clock.now()
        )

    # -- hot reload ---------------------------------------------------------------------

    def _take_snapshot(self) -> dict[Path, tuple[int, int]]:
        files: set[Path] = set()
        with contextlib.suppress(EilError):  # a folder emptied by the user: nothing to watch
            files.update(pipeline_files(self.path))
        with self._lock:
            for loaded in self._loaded.values():
                pipeline = loaded.pipeline
                files.update(
                    pipeline.resolve(q.file) for q in pipeline.spec.queries.values() if q.file
                )
                if pipeline.template_path is not None:
                    files.add(pipeline.template_path)
        snapshot = {}
        for file in files:
            try:
                stat = file.stat()
            except OSError:
                continue
            snapshot[file] = (stat.st_mtime_ns, stat.st_size)
        return snapshot

    def _watch(self) -> None:
        while not self._stop.wait(self.reload_interval):
            try:
                if self._take_snapshot() != self._snapshot:
                    self.reload()
            except Exception:  # the watcher must outlive any surprise
                log.exception("reload failed")

    def reload(self) -> list[str]:
        """Re-read the folder: schedule new files, reschedule changed ones, unschedule
        deleted ones.  Returns a line per change, for logs and tests."""
        changes: list[str] = []
        with self._lock:
            try:
                current = set(pipeline_files(self.path))
            except EilError:
                current = set()
            for file in sorted(set(self._loaded) - current):
                gone = self._loaded.pop(file).pipeline
                self.scheduler.remove(gone.name)
                changes.append(f"unscheduled {gone.name}: {file.name} was deleted")
            self._broken = {f: m for f, m in self._broken.items() if f in current}
            for file in sorted(current):
                try:
                    pipeline = load_pipeline(file, root=self.root, env=self.env)
                except ConfigError as exc:
                    message = str(exc)
                    if self._broken.get(file) != message:
                        keeping = " (keeping the last good version)" if file in self._loaded else ""
                        log.error("invalid pipeline file%s:\n%s", keeping, message)
                        changes.append(f"invalid {file.name}")
                    self._broken[file] = message
                    continue
                self._broken.pop(file, None)
                clash = next(
                    (
                        entry.pipeline
                        for other, entry in self._loaded.items()
                        if other != file and entry.pipeline.name == pipeline.name
                    ),
                    None,
                )
                if clash is not None:
                    log.error(
                        'invalid pipeline file: %s: duplicate pipeline name "%s": %s has the same name',
                        pipeline.display_path,
                        pipeline.name,
                        clash.display_path,
                    )
                    changes.append(f"invalid {file.name}")
                    continue
                fingerprint = _fingerprint(pipeline)
                old = self._loaded.get(file)
                if old is not None and old.fingerprint == fingerprint:
                    continue
                if old is not None and old.pipeline.name != pipeline.name:
                    self.scheduler.remove(old.pipeline.name)
                self._loaded[file] = _Loaded(pipeline, fingerprint)
                self._schedule(pipeline, at_start=False)
                verb = "rescheduled" if old is not None else "scheduled"
                job = self.scheduler.get(pipeline.name)
                when = (
                    f", next run {job.next_fire.astimezone(pipeline_zone(pipeline)).isoformat()}"
                    if job is not None and job.next_fire
                    else " (not scheduled: disabled or no schedule)"
                )
                changes.append(f"{verb} {pipeline.name}{when}")
            self._snapshot = self._take_snapshot()
        for change in changes:
            log.info("reload: %s", change)
        return changes


def run_forever(
    service: SchedulerService, stop: threading.Event, *, on_reload: Callable[[], bool]
) -> None:
    """Block until ``stop`` is set, reloading whenever ``on_reload`` says so (SIGHUP)."""
    while not stop.wait(0.2):
        if on_reload():
            service.reload()
