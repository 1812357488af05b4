"""The scheduler service: a folder of pipelines run on their schedules, exactly once.

This wires the generic :class:`~eil_pipelines.schedule.loop.Scheduler` to
pipelines: each enabled, scheduled pipeline is a job whose function runs it
through the one ledgered run (:func:`~eil_pipelines.app.ledgered.ledgered_run`),
claiming its (pipeline, scheduled time) in the run ledger first, so the same scheduled time never runs twice, across
restarts and across two processes started on one folder by mistake.

Policies, documented in docs/scheduler.md:

* At start-up, rows a killed process left ``running`` become ``abandoned``;
  a pipeline's first fire time is the first after the newest time in its
  ledger (just before it, when that run was abandoned), so times missed
  while down are due at once and its ``catch_up`` policy decides.
* A bad file never stops the good ones: at start every valid pipeline is
  scheduled and each invalid file is logged with its problems (and kept in
  ``_broken`` for ``list`` and a status page).
* Hot reload: the folder is checked every ``reload_interval`` seconds (and
  on :meth:`reload`, SIGHUP).  A new file is scheduled, a changed one is
  rescheduled, a deleted one unscheduled.  A new version is applied only when
  the whole file validates and its trigger gives a next fire time; otherwise
  it is logged with every problem, and its last good version keeps running,
  its fire times unchanged.
* Stopping a run: past its ``timeout``, or still going when :meth:`stop`'s
  grace period ends, its :class:`~eil_pipelines.sources.guard.QueryGuard`
  is stopped: no further query starts and the one executing is interrupted; it is recorded ``timed_out`` (its row stays ``abandoned`` at
  shutdown, for the next start's catch-up to see).
* Charts are drawn in chart processes (:mod:`eil_pipelines.charts.processes`),
  started with the service when a pipeline has charts (else at the first run
  that draws one) and stopped after the runs at :meth:`stop`: a report's charts are drawn side by side, and runs
  due together do not take turns at the interpreter lock.
* Heartbeat and "run now": every ``beat_interval`` seconds the service beats
  into the ledger (:meth:`beat`: alive, runs held, last error; a goodbye at
  :meth:`stop`) and takes the status page's "run now" requests for its
  pipelines, each run at once as an ad-hoc run through the ledgered run, at
  the time it was asked for (see docs/status.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .. import __version__
from ..deliver import Dispatcher, load_project_settings
from ..errors import ConfigError, ConfigErrors, EilError
from ..ledger import Ledger, LedgerError, LedgerUnavailableError, NewSkip, RunRequest, open_ledger
from ..ledger.postgres import PostgresLedger
from ..ledger.process import host_name
from ..run.context import make_context, pipeline_trigger, pipeline_zone
from ..schedule.loop import Clock, Firing, JobOptions, Scheduler, SystemClock
from ..sources.guard import QueryGuard
from ..spec.loader import (
    Pipeline,
    load_pipeline,
    load_pipelines_lenient,
    pipeline_files,
    project_root_for,
)
from ..spec.overrides import with_params
from . import ledger_path
from .holidays import holiday_skips
from .ledgered import (
    claim_after_wait,
    claim_rerun,
    claim_scheduled,
    dispatch_hook,
    ledgered_failure,
    ledgered_run,
)
from .processes import ProcessRole, rotated
from .runner import Runner, default_node
from .storage import default_reports_dir
from .waiting import Waiter, needs_wait
from .watch import FileWatcher, declared_references, pipeline_references

log = logging.getLogger("eil_pipelines.scheduler")

#: Seconds between two heartbeats (and two looks for "run now" requests).
DEFAULT_BEAT_INTERVAL = 5.0
#: Ad-hoc ("run now") runs that execute at once; more wait for one to end.
ADHOC_WORKERS = 2


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
        chart_processes: int | None = None,
        node: str | None = None,
        beat_interval: float = DEFAULT_BEAT_INTERVAL,
        role: ProcessRole | None = None,
    ):
        self.path = Path(path)
        self.root = project_root_for(self.path)
        self.reports_dir = reports_dir or default_reports_dir(self.root)
        self.clock = clock or SystemClock()
        self.env = os.environ if env is None else env
        self.reload_interval = reload_interval
        self.scheduler = scheduler or Scheduler(clock=self.clock, workers=workers)
        self._loaded: dict[Path, _Loaded] = {}
        self._broken: dict[Path, str] = {}
        self._files = FileWatcher(self.path, references=self._references)
        self._flights: dict[tuple[str, datetime], QueryGuard] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.ledger: Any = None
        self.deliveries: Any = None
        """The :class:`~eil_pipelines.deliver.Dispatcher`: queues each run's messages
        in the ledger's outbox and (with the loop) sends them from a thread."""
        self.chart_process_count = chart_processes
        """Chart processes to draw charts in; ``None`` picks one per CPU (up to 4,
        none on a single CPU), ``0`` draws them in the runs' threads."""
        self.charts: Any = None
        """The :class:`~eil_pipelines.charts.processes.ChartProcesses`, once started."""
        self.waiter: Waiter | None = None
        """Runs waiting for their upstream pipelines or their freshness gate."""
        self._resumed: set[tuple[str, datetime]] = set()
        self.node = node or default_node()
        """This runner's name in the ledger's heartbeats (``--node``; default: ``host-pid``)."""
        self.beat_interval = beat_interval
        """Seconds between heartbeats; each also takes the waiting "run now" requests."""
        self.started_at = self.clock.now()
        self._last_error: str | None = None
        self._beater: threading.Thread | None = None
        self._adhoc: ThreadPoolExecutor | None = None
        self._adhoc_runs: set[Future[Any]] = set()
        self.role = role
        """This process's place among a supervisor's (``--processes N``): it registers the
        pipelines from its own share on, so that siblings claim different ones first."""
        self.runner: Any = None
        """The :class:`~eil_pipelines.app.runner.Runner` (lease renewal, takeover, outages)
        when the ledger is shared by several runners; ``None`` for the SQLite file."""

    # -- life cycle -------------------------------------------------------------------

    def start(self, *, watch: bool = True, loop: bool = True) -> None:
        """Load every pipeline, recover the ledger, schedule the valid pipelines and
        start the loop.  Invalid files are logged with their problems and kept
        in ``_broken``; they never stop the valid ones.  (A folder with no
        pipeline files, or an invalid ``eil.toml``, raises.)

        ``watch=False`` skips the folder watcher (call :meth:`reload`);
        ``loop=False`` skips the loop thread (drive ``self.scheduler.run_due``).
        """
        # The watcher looks before the files are read: an edit made while they
        # are read then differs from it, and the watcher reloads.
        look = self._files.look()
        pipelines, errors = load_pipelines_lenient(self.path, env=self.env)
        settings = load_project_settings(self.root, env=self.env)  # eil.toml, before any file
        self.ledger = self._open_ledger(settings)
        self.deliveries = Dispatcher(
            self.ledger, settings, pipelines=self.pipelines, clock=self.clock.now
        )
        self.deliveries.recover()  # sends a dead process left half-done are due again
        now = self.clock.now()
        for record in self.ledger.mark_abandoned(now=now):
            log.warning(
                "abandoned: %s at %s (the process running it stopped)",
                record.pipeline,
                record.scheduled_at.isoformat(),
            )
        if any(p.spec.charts for p in pipelines):
            self._chart_pool(warm=True)  # matplotlib loads in them now, not at the first run
        with self._lock:
            for error in errors:
                self._broken[error.file] = str(error)
                log.error("invalid pipeline file (not scheduled):\n%s", error)
            for pipeline in rotated(pipelines, self.role):
                problem = self._unschedulable(pipeline)
                if problem is not None:
                    self._broken[pipeline.file] = problem
                    log.error("invalid pipeline file (not scheduled):\n%s", problem)
                    continue
                self._loaded[pipeline.file] = _Loaded(pipeline, _fingerprint(pipeline))
                self._schedule(pipeline, at_start=True)
            self._files.settle(look)
        self.waiter = Waiter(
            ledger=self.ledger,
            now=self.clock.now,
            known=self._by_name,
            start=self._resume,
            fail=self._give_up,
        )
        self.scheduler.start(loop=loop)
        self._start_runner()
        if loop:  # without the loop, tests drive sending with self.deliveries.process_due()
            self.deliveries.start(self.clock)
            self.waiter.start(self.clock.wait)  # without it, tests call self.waiter.check()
        self.log_table()
        if watch:
            self._watcher = threading.Thread(target=self._watch, name="eil-reload", daemon=True)
            self._watcher.start()
        if loop:  # without the loop, tests call beat() themselves
            self.beat()
            self._beater = threading.Thread(target=self._beat_loop, name="eil-beat", daemon=True)
            self._beater.start()

    def stop(self, grace: float | None = 30.0) -> bool:
        """Stop starting runs, wait up to ``grace`` seconds for those in flight,
        and record the rest as abandoned.  True when all finished in time."""
        self._stop.set()
        if self.waiter is not None:
            # Waiting rows stay 'waiting'; the next start abandons them (this process
            # is gone by then) and the catch-up policy decides about them.
            self.waiter.stop()
        if self._beater is not None:
            self._beater.join(timeout=5)
        finished = self.scheduler.shutdown(grace)
        finished = self._stop_adhoc(grace) and finished
        if self.runner is not None:
            # After the runs: their leases were renewed while they finished.
            self.runner.stop()
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
            # Their rows say abandoned (a restart runs them again): stop their queries
            # rather than let them write a report behind the ledger's back.
            with self._lock:
                guards = list(self._flights.values())
            for guard in guards:
                guard.stop("shutdown")
        if self._watcher is not None:
            self._watcher.join(timeout=2)
        self._files.close()
        with self._lock:  # no pool starts after this: _chart_pool sees _stop
            charts = self.charts
        if charts is not None:
            # After the runs; a run abandoned at shutdown draws its charts in its thread.
            charts.close()
        if self.deliveries is not None:
            # After the runs: their messages are queued by then.  A send still going
            # when this times out stays 'sending' and is sent again at the next start.
            finished = self.deliveries.stop(grace) and finished
        if self.ledger is not None:
            self.beat(stopped=True)  # the goodbye: the status page says stopped, not dead
        if finished and self.ledger is not None:
            self.ledger.close()  # with runs left over, they may still record their end
        return finished

    # -- heartbeat and "run now" --------------------------------------------------------

    def beat(self, *, stopped: bool = False) -> list[RunRequest]:
        """Take the waiting "run now" requests for this service's pipelines and
        start each as an ad-hoc run, then beat into the ledger.  Returns the
        requests taken.  ``stopped=True`` is the goodbye: it takes no request.

        A ledger problem is logged and kept as the runner's last error; it
        never stops the service.
        """
        taken: list[RunRequest] = []
        try:
            if not stopped:
                taken = self.ledger.take_run_requests(self.node, [p.name for p in self.pipelines()])
            for request in taken:
                self._start_requested(request)
            if self.runner is not None:
                return taken  # a shared ledger's runner beats, with its leases
            self.ledger.beat(
                self.node,
                host=host_name(),
                pid=os.getpid(),
                version=__version__,
                started_at=self.started_at,
                running=self._running(),
                last_error=self._last_error,
                stopped=stopped,
            )
        except LedgerError as exc:
            self._last_error = self._redact(str(exc))
            log.error("heartbeat: %s", self._last_error)
        return taken

    def _running(self) -> int:
        """Runs in flight: scheduled ones and "run now" ones."""
        with self._lock:
            adhoc = sum(not f.done() for f in self._adhoc_runs)
        return self.scheduler.in_flight + adhoc

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.beat_interval):
            try:
                self.beat()
            except Exception as exc:  # the heartbeat must outlive any surprise
                self._last_error = self._redact(f"{type(exc).__name__}: {exc}")
                log.error("heartbeat failed: %s", self._last_error)

    def _redact(self, text: str) -> str:
        return self.deliveries.redactor()(text) if self.deliveries is not None else text

    def _start_requested(self, request: RunRequest) -> None:
        """Start a taken "run now" request on the ad-hoc workers (never in the loop's)."""
        pipeline = self._current(request.pipeline)
        if pipeline is None:  # unscheduled or renamed since it was asked for
            log.warning(
                "run now: %s is not loaded here; request %d dropped", request.pipeline, request.id
            )
            return
        if request.params:
            try:
                # Checked again: the file may have changed since the page asked.
                pipeline = with_params(pipeline, request.params)
            except ConfigError as exc:
                log.error("run now: %s: request %d dropped: %s", pipeline.name, request.id, exc)
                return
        log.info("run now: %s, asked by %s", pipeline.name, request.requested_by)
        with self._lock:
            if self._stop.is_set():
                return
            if self._adhoc is None:
                self._adhoc = ThreadPoolExecutor(ADHOC_WORKERS, thread_name_prefix="eil-adhoc")
            # Whole seconds: the report's stamp and the ledger's key read as people expect.
            at = request.requested_at.replace(microsecond=0)
            future = self._adhoc.submit(self._run_adhoc, pipeline, at)
            self._adhoc_runs = {f for f in self._adhoc_runs if not f.done()} | {future}

    def _run_adhoc(self, pipeline: Pipeline, at: datetime) -> bool:
        key = (pipeline.name, at.astimezone(UTC))
        guard = QueryGuard(pipeline.name)
        with self._lock:
            self._flights[key] = guard
        try:
            outcome = ledgered_run(
                pipeline,
                make_context(pipeline, at),
                ledger=self.ledger,
                reports_dir=self.reports_dir,
                # An explicit re-run, as `--once --deliver`: never over a live run.
                claim=claim_rerun(),
                clock=self.clock.now,
                guard=guard,
                chart_processes=self._chart_pool() if pipeline.spec.charts else None,
                deliver=dispatch_hook(self.deliveries, True),
                log=log,
            )
            return outcome.ok
        except Exception:  # as the loop's executor does: a run's surprise is logged, never raised
            log.exception("run now: %s failed to run", pipeline.name)
            return False
        finally:
            with self._lock:
                if self._flights.get(key) is guard:
                    del self._flights[key]
            guard.finish()

    def _stop_adhoc(self, grace: float | None) -> bool:
        """Let the ad-hoc runs finish within ``grace`` seconds; True when they all did."""
        with self._lock:
            pool, runs = self._adhoc, set(self._adhoc_runs)
        if pool is None:
            return True
        pool.shutdown(wait=False)
        _, left = wait_futures(runs, timeout=grace)
        return not left

    # -- several runners on one ledger ------------------------------------------------

    def _open_ledger(self, settings: Any) -> Any:
        """The ledger ``[ledger]`` names (default: the SQLite file under the reports folder)."""
        if settings.ledger.url is None:
            # Claims and skips wait out another process's lock: a fire time's row
            # comes late rather than never (docs/scheduler.md, "Exactly once").  The
            # service's clock is the ledger's too: heartbeats and requests are stamped
            # with it, so tests that move the clock see them move.
            return Ledger(ledger_path(self.reports_dir), lock_patience=None, clock=self.clock.now)
        self.node = self.node or default_node()
        return open_ledger(settings.ledger.url, lease=settings.ledger.lease, node=self.node)

    def _start_runner(self) -> None:
        """Start the heartbeat (lease renewal, takeover, outages) of a shared ledger."""
        if not isinstance(self.ledger, PostgresLedger):
            return

        def options(name: str) -> JobOptions | None:
            pipeline = self._current(name)
            return job_options(pipeline) if pipeline and pipeline.spec.schedule else None

        self.runner = Runner(
            self.ledger,
            node=self.node or self.ledger.node,
            run=self._run,
            options=options,
            in_flight=self._running,
            held=self._held_runs,
            clock=self.clock.now,
            version=__version__,
        )
        self.runner.start()

    def _held_runs(self) -> list[tuple[str, datetime]]:
        """The (pipeline, scheduled time) of the runs in flight: the leases to renew."""
        with self._lock:
            return list(self._flights)

    def _ledger_down(self, name: str, firing: Firing) -> bool:
        """True (and the time kept for catch-up) when the shared ledger is unreachable:
        a runner claims nothing new during an outage."""
        runner = self.runner
        if runner is None or not runner.outage.down:
            return False
        runner.missed(name, firing.scheduled_at)
        return True

    def _chart_pool(self, *, warm: bool = False) -> Any:
        """The chart processes, started when a pipeline with charts first needs them.

        ``None`` when they are turned off (or on a single CPU): charts are then
        drawn in the runs' threads.  A scheduler without charts never loads
        matplotlib for them.
        """
        if self.chart_process_count == 0:
            return None
        with self._lock:
            if self.charts is None and not self._stop.is_set():
                from ..charts.processes import ChartProcesses, default_chart_processes

                count = self.chart_process_count
                if count is None:
                    count = self.chart_process_count = default_chart_processes()
                if count > 0:
                    self.charts = ChartProcesses(count)
                    if warm:
                        self.charts.warm()
            return self.charts

    # -- scheduling -------------------------------------------------------------------

    def pipelines(self) -> list[Pipeline]:
        """The pipelines loaded now (the last good version of each file)."""
        with self._lock:
            return sorted((entry.pipeline for entry in self._loaded.values()), key=lambda p: p.name)

    def broken(self) -> dict[Path, str]:
        """The invalid pipeline files now, each with its problems (``file: key: message``
        lines); a file here may still run its last good version."""
        with self._lock:
            return dict(self._broken)

    def _unschedulable(self, pipeline: Pipeline) -> str | None:
        """Why ``pipeline``'s trigger cannot be scheduled now, or ``None``.

        Validation's bounds should make this unreachable; it is checked anyway so
        that a schedule no trigger can serve is refused like an invalid file,
        before anything of the last good version is replaced.
        """
        if not pipeline.spec.enabled or pipeline.spec.schedule is None:
            return None
        try:
            trigger = pipeline_trigger(pipeline)
            trigger.next_fire(self.clock.now())
        except (ValueError, OverflowError) as exc:
            return f"{pipeline.display_path}: schedule: cannot be scheduled: {exc}"
        return None

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
            on_skip_many=self._on_skip_many,
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
        # The flight is registered before anything else, so a timeout that comes
        # early (a tiny timeout, a slow ledger) still finds the run to stop.
        # UTC: two readings of 02:30 on a fall-back day are equal in local time.
        key = (name, firing.scheduled_at.astimezone(UTC))
        guard = QueryGuard(name)
        with self._lock:
            self._flights[key] = guard
        try:
            return self._run_flight(name, firing, guard)
        finally:
            with self._lock:
                if self._flights.get(key) is guard:
                    del self._flights[key]
            guard.finish()

    def _by_name(self) -> dict[str, Pipeline]:
        with self._lock:
            return {loaded.pipeline.name: loaded.pipeline for loaded in self._loaded.values()}

    def _resume(self, name: str, firing: Firing) -> None:
        """The waiter's word that a waiting run may start: back to the workers."""
        key = (name, firing.scheduled_at.astimezone(UTC))
        with self._lock:
            self._resumed.add(key)
        if not self.scheduler.submit(name, firing):
            with self._lock:  # stopping, or the job is gone: the row stays waiting
                self._resumed.discard(key)

    def _give_up(self, name: str, firing: Firing, message: str) -> None:
        """A run waited past its ``wait_for``: record it failed and tell its owner."""
        pipeline = self._current(name)
        if pipeline is None:
            return
        ledgered_failure(
            pipeline,
            make_context(pipeline, firing.scheduled_at),
            message,
            ledger=self.ledger,
            reports_dir=self.reports_dir,
            claim=claim_after_wait(),
            clock=self.clock.now,
            deliver=dispatch_hook(self.deliveries, True),
            log=log,
        )

    def _run_flight(self, name: str, firing: Firing, guard: QueryGuard) -> bool:
        pipeline = self._current(name)
        if pipeline is None:
            return True
        schedule = pipeline.spec.schedule
        key = (name, firing.scheduled_at.astimezone(UTC))
        with self._lock:
            resumed = key in self._resumed
            self._resumed.discard(key)
        if not resumed and needs_wait(pipeline) and self.waiter and self._may_wait(name, firing):
            ctx_id = make_context(pipeline, firing.scheduled_at).run_id
            if not self.waiter.hold(pipeline, firing, ctx_id):
                return True  # it waits (the waiter takes it from here), or isn't ours

        if firing.attempt == 1:
            self._record_holidays(pipeline, firing.scheduled_at, firing.scheduled_at)

        def final(status: str) -> bool:
            # The loop retries while firing.attempt <= retries: only after that is a failure final.
            return status == "succeeded" or schedule is None or firing.attempt > schedule.retries

        if self._ledger_down(name, firing):
            return True
        try:
            outcome = self._ledgered(pipeline, firing, guard, final, resumed=resumed)
        except LedgerUnavailableError as exc:
            # The claim could not be made: nothing ran; the time waits for the catch-up.
            if self.runner is None:
                raise
            self.runner.outage.failed(exc)
            self.runner.missed(name, firing.scheduled_at)
            return True
        if self.waiter is not None:
            self.waiter.poke()  # a run ended: runs waiting for it may start
        return outcome.ok

    def _may_wait(self, name: str, firing: Firing) -> bool:
        """Whether ``firing`` checks its upstream runs and gate first: a first attempt,
        or a run taken over from a process that died (its row abandoned), which may
        have died waiting.  A retry after a failure has had its upstream runs."""
        if firing.attempt == 1:
            return True
        row = self.ledger.get(name, firing.scheduled_at)
        return row is not None and row.status == "abandoned"

    def _ledgered(
        self,
        pipeline: Pipeline,
        firing: Firing,
        guard: QueryGuard,
        final: Callable[[str], bool],
        *,
        resumed: bool,
    ) -> Any:
        return ledgered_run(
            pipeline,
            make_context(pipeline, firing.scheduled_at, attempt=firing.attempt),
            ledger=self.ledger,
            reports_dir=self.reports_dir,
            claim=claim_after_wait() if resumed else claim_scheduled(firing.attempt),
            clock=self.clock.now,
            guard=guard,
            chart_processes=self._chart_pool() if pipeline.spec.charts else None,
            deliver=dispatch_hook(self.deliveries, final),
            log=log,
        )

    def _on_timeout(self, firing: Firing) -> None:
        key = (firing.key, firing.scheduled_at.astimezone(UTC))
        with self._lock:
            guard = self._flights.get(key)
        if guard is None:  # it finished meanwhile
            return
        log.warning(
            "timeout: %s at %s: interrupting its query", firing.key, firing.scheduled_at.isoformat()
        )
        guard.stop("timeout")

    def _on_skip(self, firing: Firing, reason: str) -> None:
        log.info("skipped: %s at %s: %s", firing.key, firing.scheduled_at.isoformat(), reason)
        with self._outage_tolerated([firing]):
            self.ledger.record_skipped(
                firing.key, firing.scheduled_at, reason=reason, now=self.clock.now()
            )
        pipeline = self._current(firing.key)
        if pipeline is not None and firing.attempt == 1:
            self._record_holidays(pipeline, firing.scheduled_at, firing.scheduled_at)

    def _record_holidays(self, pipeline: Pipeline, first: datetime, last: datetime) -> None:
        """Skipped rows for the holidays the calendar took out before ``first`` … ``last``.

        Each fire time the schedule alone would have had gets its row, whichever of
        the run, the skip or the batch that follows it comes first; rows already
        there are left alone.
        """
        skips = holiday_skips(pipeline, first, last)
        if skips:
            self.ledger.record_skipped_many(skips, now=self.clock.now())

    @contextlib.contextmanager
    def _outage_tolerated(self, firings: list[Firing]) -> Any:
        """Skips of ``firings`` that can't be recorded during a shared ledger's outage
        are told once (by the runner), and the times are missed work for the catch-up
        when the ledger is back: a run in flight through the outage (its finish
        waiting for the ledger) makes its next fire times skip, and the outage, not
        the run, is why they did not run."""
        try:
            yield
        except LedgerUnavailableError as exc:
            if self.runner is None:
                raise
            self.runner.outage.failed(exc)
            for firing in firings:
                self.runner.missed(firing.key, firing.scheduled_at)

    def _on_skip_many(self, firings: list[Firing], reason: str) -> None:
        # A long outage or a clock jump skips thousands of times: one log line and
        # one ledger transaction per batch, so a run's finish() is never starved.
        first, last = firings[0], firings[-1]
        log.info(
            "skipped: %s: %d fire times from %s to %s: %s",
            first.key,
            len(firings),
            first.scheduled_at.isoformat(),
            last.scheduled_at.isoformat(),
            reason,
        )
        with self._outage_tolerated(firings):
            self.ledger.record_skipped_many(
                [NewSkip(f.key, f.scheduled_at, reason) for f in firings], now=self.clock.now()
            )
        pipeline = self._current(first.key)
        if pipeline is not None:
            self._record_holidays(pipeline, first.scheduled_at, last.scheduled_at)

    # -- hot reload ---------------------------------------------------------------------

    def _references(self) -> list[Path]:
        """The SQL and template files the watcher watches: those of every loaded
        pipeline, and those an invalid file names (fixing them must reload it)."""
        with self._lock:
            found = [p for e in self._loaded.values() for p in pipeline_references(e.pipeline)]
            broken = list(self._broken)
        for file in broken:
            found.extend(declared_references(file, self.root))
        return found

    def check_files(self) -> list[str]:
        """Poll the file watcher now, and reload when a watched file changed.

        The watcher thread calls this every ``reload_interval`` seconds; an idle
        poll stats only the folder and the files pipelines name
        (:mod:`eil_pipelines.app.watch`).  Returns :meth:`reload`'s lines.
        """
        return self.reload() if self._files.changed() else []

    def _watch(self) -> None:
        while not self._stop.wait(self.reload_interval):
            try:
                self.check_files()
            except Exception:  # the watcher must outlive any surprise
                log.exception("reload failed")

    def reload(self) -> list[str]:
        """Re-read the folder: schedule new files, reschedule changed ones, unschedule
        deleted ones.  Returns a line per change, for logs and tests."""
        changes: list[str] = []
        with self._lock:
            # Before reading anything (see start()): a file saved or deleted while
            # this reload reads the folder is seen by the watcher's next look.
            look = self._files.look()
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
                message: str | None
                try:
                    pipeline = load_pipeline(file, root=self.root, env=self.env)
                except ConfigError as exc:
                    message = str(exc)
                else:
                    # A version that validates but has no next fire time is refused
                    # like an invalid one, before the running version is touched.
                    message = self._unschedulable(pipeline)
                if message is not None:
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
                    message = (
                        f'{pipeline.display_path}: duplicate pipeline name "{pipeline.name}": '
                        f"{clash.display_path} has the same name"
                    )
                    if self._broken.get(file) != message:
                        log.error("invalid pipeline file: %s", message)
                        changes.append(f"invalid {file.name}")
                    self._broken[file] = message
                    continue
                fingerprint = _fingerprint(pipeline)
                old = self._loaded.get(file)
                if old is not None and old.fingerprint == fingerprint:
                    continue
                # Scheduled before it is recorded: the scheduler replaces the old job
                # in one step, so its fire times run on without a gap.
                self._schedule(pipeline, at_start=False)
                if old is not None and old.pipeline.name != pipeline.name:
                    self.scheduler.remove(old.pipeline.name)
                self._loaded[file] = _Loaded(pipeline, fingerprint)
                verb = "rescheduled" if old is not None else "scheduled"
                job = self.scheduler.get(pipeline.name)
                when = (
                    f", next run {job.next_fire.astimezone(pipeline_zone(pipeline)).isoformat()}"
                    if job is not None and job.next_fire
                    else " (not scheduled: disabled or no schedule)"
                )
                changes.append(f"{verb} {pipeline.name}{when}")
            self._files.settle(look)
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


def validate_project(path: Path) -> None:
    """Check ``path`` and ``eil.toml`` before the scheduler writes anything.

    Raises the ConfigErrors when no pipeline file is valid (nothing would run:
    likely a wrong PATH or a broken checkout) or ``eil.toml`` is invalid; a
    folder with some valid pipelines starts, and :meth:`SchedulerService.start`
    logs the invalid ones.
    """
    pipelines, errors = load_pipelines_lenient(path)
    if errors and not pipelines:
        raise ConfigErrors(errors)
    load_project_settings(project_root_for(path))
