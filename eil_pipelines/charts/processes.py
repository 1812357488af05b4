"""Chart processes: charts drawn in parallel, outside the scheduler's interpreter lock.

Drawing a chart is pure Python work inside matplotlib, so in one process
the runs' worker threads take turns at it: the charts of a report are drawn
one after another and two reports due at once wait for each other.
:class:`ChartProcesses` keeps a few long-lived child processes, each with
matplotlib loaded, and hands each one a
:class:`~eil_pipelines.charts.work.ChartJob` at a time: a report's charts
are drawn side by side, on every core.

The pool is the standard library's
:class:`~concurrent.futures.ProcessPoolExecutor` in a *spawn* context (fresh
interpreters: the same on Linux, macOS and Windows, and no copy of the
scheduler's threads and locks).  On POSIX the context starts each child as
``python -P -c "# eil-pipelines chart process …"``: it ignores terminal
signals from its first line, keeps the working folder off its path, and does
not run the parent's main module or script again (multiprocessing's spawn
would).  Each child then runs :func:`_start_worker`, which ignores SIGINT,
SIGTERM and SIGHUP (the parent decides when children stop, after its runs
have finished), watches its parent and exits within a second of its death,
however it dies (even ``kill -9``), and says it is ready.

A job travels as a pickle made in the run's thread and is unpickled inside
:func:`_draw`, so a job the child cannot receive fails that chart with a
message and the child carries on.  Only the parent writes to the children,
over pipes no other process holds, so unpickling trusts nothing the parent
does not already trust.

Nothing is lost when a child fails: when children cannot start, that is
logged once and every chart is drawn in the runs' threads; a child that dies
in the middle of a chart breaks the pool (:class:`BrokenProcessPool`): its
charts are logged and drawn in the runs' threads, and the next chart gets a
new pool.  Charts still waiting when the pool closes are drawn in the
caller's thread.
"""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import connection
from multiprocessing.context import SpawnContext, SpawnProcess
from pathlib import Path
from typing import Any

from ..errors import ChartError
from .work import ChartJob, RenderedChart, render_job

log = logging.getLogger(__name__)

#: Chart processes the scheduler starts by default: one per CPU, at most this many.
MAX_DEFAULT_PROCESSES = 4

#: Seconds a new chart process may take to load matplotlib and say it is ready.
STARTUP_TIMEOUT = 60.0

#: Seconds between two looks at the parent, for when its sentinel cannot tell.
_PARENT_POLL = 0.5

_TITLE = "eil-pipelines chart process"
_TERMINAL_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")  # SIGHUP does not exist on Windows

# The folder holding this very package: the children import it ahead of any other copy.
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])

# Prepended to multiprocessing's own "-c" program: ps shows the first line, and
# terminal signals are ignored before the second (loading matplotlib takes a second).
_BOOTSTRAP_HEAD = (
    f"# {_TITLE} (ps shows this line)\n"
    "import signal\n"
    f"for s in {_TERMINAL_SIGNALS!r}:\n"
    "    if hasattr(signal, s): signal.signal(getattr(signal, s), signal.SIG_IGN)\n"
)


def default_chart_processes(cpus: int | None = None) -> int:
    """How many chart processes suit this machine: one per CPU up to 4, none with one CPU.

    With a single CPU a child process only adds the cost of moving the data.
    """
    count = os.cpu_count() if cpus is None else cpus
    if not count or count < 2:
        return 0
    return min(MAX_DEFAULT_PROCESSES, count)


# --- the children's side ------------------------------------------------------------------


def _ignore_terminal_signals() -> None:
    for name in _TERMINAL_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


def _watch_parent(sentinel: Any, parent_pid: int) -> None:
    """Exit this process as soon as the parent is gone (its sentinel, or a new parent pid)."""
    while True:
        try:
            gone = bool(connection.wait([sentinel], timeout=_PARENT_POLL))
        except (OSError, ValueError):  # no usable sentinel: polling the parent id still works
            gone = False
            time.sleep(_PARENT_POLL)
        if gone or (os.name == "posix" and os.getppid() != parent_pid):
            os._exit(0)


def _exit_code(process: Any, patience: float = 5.0) -> int | None:
    """The exit code of a process whose sentinel has fired, or None if none is known.

    The executor's own thread may reap the child at the same moment: the loser of that
    race gets ECHILD and sees no code until the winner stores it, so look again.
    """
    deadline = time.monotonic() + patience
    while True:
        process.join(0.05)
        code = process.exitcode
        if code is not None or time.monotonic() >= deadline:
            return code


def _start_worker(ready: connection.Connection) -> None:
    """A chart process's initializer: ignore terminal signals, watch the parent, say ready."""
    _ignore_terminal_signals()
    if hasattr(os, "setsid"):
        # A session of its own: a terminal's signals never reach it, and on Linux
        # (autogroup) it gets its own share of a busy machine's CPUs, as the
        # scheduler's session does, instead of splitting the scheduler's.
        with contextlib.suppress(OSError):
            os.setsid()
    parent = multiprocessing.parent_process()
    sentinel = parent.sentinel if parent is not None else None
    watchdog = threading.Thread(
        target=_watch_parent,
        args=(sentinel, os.getppid()),
        name="eil-chart-watchdog",
        daemon=True,
    )
    watchdog.start()
    ready.send(os.getpid())  # one small message: a single atomic write to the pipe


def _ping() -> int:
    """A job that does nothing: :meth:`ChartProcesses.warm` sends one to each process."""
    return os.getpid()


def _draw(payload: bytes) -> tuple[str, Any]:
    """Draw one pickled :class:`ChartJob`; the reply says how it went.

    ``("ok", RenderedChart)``, ``("chart_error", detail)`` when the data does
    not fit the chart, or ``("error", text)`` for anything else, including a
    job that cannot be unpickled here: the process carries on either way.
    """
    try:
        job = pickle.loads(payload)
        return ("ok", render_job(job))
    except ChartError as exc:
        return ("chart_error", exc.detail)
    except Exception as exc:  # a bug: the parent reports it as the run's failure
        return ("error", f"{type(exc).__name__}: {exc}")


# --- how the children start ---------------------------------------------------------------


def _command_line(command: list[str]) -> list[str]:
    """multiprocessing's spawn command with our first lines and ``-P`` (not on frozen builds)."""
    if "-c" not in command:
        return command
    at = command.index("-c")
    command = [*command]
    command[at + 1] = _BOOTSTRAP_HEAD + command[at + 1]
    if "-P" not in command[:at] and "-I" not in command[:at]:
        command.insert(at, "-P")
    return command


def _preparation_data(name: str) -> dict[str, Any]:
    """What a spawned child sets up before it unpickles its work, minus the parent's main.

    multiprocessing would run the parent's main module (a user's script, the
    ``eil-run`` launcher) again in every child; a chart process needs only
    this package.  The working folder stays off its path, as ``-P`` keeps it.
    """
    from multiprocessing import process, spawn

    data = spawn.get_preparation_data(name)
    data.pop("init_main_from_path", None)
    data.pop("init_main_from_name", None)
    here = {"", os.getcwd(), getattr(process, "ORIGINAL_DIR", None)}
    data["sys_path"] = [_PACKAGE_PARENT] + [
        entry for entry in data["sys_path"] if entry not in here and entry != _PACKAGE_PARENT
    ]
    return data


if os.name == "posix":
    from multiprocessing import popen_spawn_posix

    class _ChartPopen(popen_spawn_posix.Popen):
        """multiprocessing's POSIX spawn, with our command line and preparation data."""

        _fds: list[int]

        def _launch(self, process_obj: Any) -> None:
            # The standard library's _launch (3.11-3.13), two calls changed.
            from multiprocessing import reduction, resource_tracker, spawn
            from multiprocessing import util as _util
            from multiprocessing.context import set_spawning_popen

            util: Any = _util  # its stubs lack close_fds and take bytes paths only
            tracker_fd: Any = resource_tracker.getfd()
            self._fds.append(tracker_fd)
            prep_data = _preparation_data(process_obj._name)
            fp = io.BytesIO()
            set_spawning_popen(self)
            try:
                reduction.dump(prep_data, fp)
                reduction.dump(process_obj, fp)
            finally:
                set_spawning_popen(None)
            parent_r = child_w = child_r = parent_w = None
            try:
                parent_r, child_w = os.pipe()
                child_r, parent_w = os.pipe()
                command = _command_line(
                    spawn.get_command_line(tracker_fd=tracker_fd, pipe_handle=child_r)
                )
                self._fds.extend([child_r, child_w])
                self.pid = util.spawnv_passfds(spawn.get_executable(), command, self._fds)
                self.sentinel = parent_r
                with open(parent_w, "wb", closefd=False) as f:
                    f.write(fp.getbuffer())
            finally:
                # parent_w stays open while the parent lives: the child's parent sentinel.
                fds = [fd for fd in (parent_r, parent_w) if fd is not None]
                self.finalizer = util.Finalize(self, util.close_fds, fds)
                for fd in (child_r, child_w):
                    if fd is not None:
                        os.close(fd)


class _ChartProcess(SpawnProcess):
    """One worker of the pool."""

    culled = False
    """Set when the pool itself ended this process (not a failure of its own)."""

    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        if os.name == "posix":
            return _ChartPopen(process_obj)
        return SpawnProcess._Popen(process_obj)

    def terminate(self) -> None:
        """Kill: a chart process ignores SIGTERM, and a broken pool must end its workers.

        The pool ends every worker when one breaks it, that one included: only
        those still running are marked as ended by the pool.
        """
        if not connection.wait([self.sentinel], timeout=0):
            self.culled = True
        self.kill()


class _Context(SpawnContext):
    """A spawn context that starts :class:`_ChartProcess` workers and remembers them."""

    def __init__(self) -> None:
        self.started: list[_ChartProcess] = []

    def Process(self, *args: Any, **kwargs: Any) -> _ChartProcess:  # type: ignore[override]
        process = _ChartProcess(*args, **kwargs)
        self.started.append(process)
        return process


# --- the parent's side --------------------------------------------------------------------


class _Pool:
    """One ProcessPoolExecutor and what the parent knows of its processes."""

    def __init__(self, processes: int):
        self.context = _Context()
        self._ready_reader, ready_writer = self.context.Pipe(duplex=False)
        self.executor = ProcessPoolExecutor(
            processes,
            mp_context=self.context,
            initializer=_start_worker,
            initargs=(ready_writer,),
        )
        self._ready_writer = ready_writer  # every new process gets a copy
        self.started = time.monotonic()
        self.ready: set[int] = set()
        self.lock = threading.Lock()
        self.lost: tuple[str, bool] | None = None
        """Why it broke, and whether before any of its processes was ready; once known."""
        self.retired = False
        """Ended on purpose (closed, or given up on): its failures are not news."""

    def any_ready(self) -> bool:
        """Whether a process has said it is ready (reads what they said so far)."""
        with self.lock, contextlib.suppress(OSError, EOFError):
            while self._ready_reader.poll():
                self.ready.add(self._ready_reader.recv())
        return bool(self.ready)

    def alive(self) -> list[int]:
        return sorted(
            p.pid
            for p in list(self.context.started)
            if p.pid is not None and not p.culled and p.is_alive()
        )

    def why_broken(self) -> tuple[str, bool]:
        """Which process ended the pool, how, and whether it never said it was ready."""
        with self.lock:
            if self.lost is not None:
                return self.lost
        candidates = [p for p in list(self.context.started) if p.pid is not None and not p.culled]
        ended = connection.wait([p.sentinel for p in candidates], timeout=1.0)
        dead = [p for p in candidates if p.sentinel in ended and not p.culled]
        self.any_ready()
        if dead:
            first = dead[0]
            code = _exit_code(first)
            if code is None:
                how = "its pipe closed"
            elif code < 0:
                try:
                    how = f"killed by {signal.Signals(-code).name}"
                except ValueError:
                    how = f"killed by signal {-code}"
            else:
                how = f"exit status {code}"
            lost = (f"chart process {first.pid} stopped ({how})", first.pid not in self.ready)
        else:
            lost = ("the chart processes stopped", not self.ready)
        with self.lock:
            if self.lost is None:
                self.lost = lost
            return self.lost

    def stop(self, timeout: float) -> None:
        """Let each process finish its chart and exit; kill any still busy after ``timeout``."""
        self.retired = True
        stopper = threading.Thread(
            target=self.executor.shutdown,
            kwargs={"wait": True, "cancel_futures": True},
            name="eil-chart-stop",
            daemon=True,
        )
        stopper.start()
        stopper.join(timeout)
        for process in list(self.context.started):
            if process.pid is not None and process.is_alive():
                process.terminate()
        for process in list(self.context.started):
            if process.pid is not None:
                process.join()
        stopper.join(max(timeout, 5.0))  # now that the processes are gone, a moment
        for end in (self._ready_reader, self._ready_writer):
            end.close()


class ChartProcesses:
    """A pool of chart processes that any number of threads can share.

    ``render(jobs)`` spreads a report's charts over the processes and returns
    when all are done.  Processes start at the first chart (or at
    :meth:`warm`) and stay until :meth:`close`.  After ``close`` (and for a
    chart whose process fails), charts are drawn in the calling thread.
    """

    def __init__(self, processes: int):
        if processes < 1:
            raise ValueError(f"chart processes must be at least 1, not {processes}")
        self.processes = processes
        """How many chart processes the pool keeps."""
        self._lock = threading.Lock()
        self._pool: _Pool | None = None
        self._closed = False
        self._unavailable: str | None = None

    def render(self, jobs: Sequence[ChartJob]) -> list[RenderedChart]:
        """Render ``jobs`` side by side; results come back in the order of ``jobs``.

        Raises the :class:`~eil_pipelines.errors.ChartError` of the first
        failing job (in job order), as drawing them one by one would.
        """
        sent = [self._send(job) for job in jobs]
        return [
            self._receive(job, pool, future) for job, (pool, future) in zip(jobs, sent, strict=True)
        ]

    def warm(self) -> None:
        """Start every process now, in the background, so the first charts need not wait."""
        pool = self._current()
        if pool is None:
            return
        try:
            for _ in range(self.processes):
                pool.executor.submit(_ping)
        except (BrokenProcessPool, RuntimeError):  # broken (seen at the next chart), or closed
            return
        except Exception as exc:  # the processes cannot be started at all
            self._give_up(pool, f"a chart process could not start: {exc}")

    @property
    def pids(self) -> list[int]:
        """Process ids of the running chart processes."""
        with self._lock:
            pool = None if self._closed else self._pool
        return [] if pool is None else pool.alive()

    def close(self, timeout: float = 5.0) -> None:
        """Let each process finish its chart and exit; kill any still busy after ``timeout``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop(timeout)

    def __enter__(self) -> ChartProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inside the runs' threads ----------------------------------------------------------

    def _current(self) -> _Pool | None:
        """The pool to use now (a new one after a broken one), or None: draw here."""
        with self._lock:
            if self._closed or self._unavailable is not None:
                return None
            if self._pool is not None:
                return self._pool
            try:
                self._pool = _Pool(self.processes)
                return self._pool
            except Exception as exc:  # no semaphores, no pipes: this platform cannot
                reason = f"chart processes cannot start here: {exc}"
                self._unavailable = reason
        log.warning("%s; charts are drawn in the runs' threads instead", reason)
        return None

    def _send(self, job: ChartJob) -> tuple[_Pool | None, Future | None]:
        pool = self._current()
        if pool is None:
            return None, None
        try:
            payload = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # whatever pickling raises, draw it here
            log.warning(
                'chart "%s" cannot be sent to a chart process (%s); drawing it in the run\'s thread',
                job.spec.name,
                exc,
            )
            return None, None
        try:
            return pool, pool.executor.submit(_draw, payload)
        except (BrokenProcessPool, RuntimeError) as exc:  # broken or closed meanwhile
            future: Future = Future()
            future.set_exception(exc)
            return pool, future
        except Exception as exc:  # starting a process failed
            self._give_up(pool, f"a chart process could not start: {exc}")
            return None, None

    def _receive(self, job: ChartJob, pool: _Pool | None, future: Future | None) -> RenderedChart:
        if pool is None or future is None:
            return render_job(job)
        try:
            kind, value = self._wait(pool, future)
        except CancelledError:  # closed before a process took it
            return render_job(job)
        except BrokenProcessPool:
            why = self._lost(pool)
            if why is not None:
                log.warning('%s; drawing chart "%s" in the run\'s thread', why, job.spec.name)
            return render_job(job)
        except RuntimeError:  # submitted as the pool closed
            return render_job(job)
        if kind == "ok":
            return value
        if kind == "chart_error":
            raise ChartError(job.spec.name, value)
        raise RuntimeError(f"in a chart process: {value}")

    def _wait(self, pool: _Pool, future: Future) -> Any:
        """The future's result; gives up on the pool when no process is ready in time."""
        while not pool.any_ready():
            left = pool.started + STARTUP_TIMEOUT - time.monotonic()
            if left <= 0:
                self._give_up(
                    pool, f"a chart process could not start: not ready after {STARTUP_TIMEOUT:g} s"
                )
                break
            try:
                return future.result(timeout=min(left, 1.0))
            except FutureTimeout:
                continue
        return future.result()

    def _lost(self, pool: _Pool) -> str | None:
        """Why ``pool`` broke, to log with each chart it lost; None when that is not news."""
        if pool.retired or self._closed:
            return None
        why, at_start = pool.why_broken()
        if at_start:
            self._give_up(pool, f"a chart process could not start: {why}")
            return None
        with self._lock:
            if self._pool is pool:  # the next chart gets a new pool
                self._pool = None
        pool.executor.shutdown(wait=False)
        return why

    def _give_up(self, pool: _Pool, reason: str) -> None:
        with self._lock:
            first = self._unavailable is None and not self._closed
            if first:
                self._unavailable = reason
            if self._pool is pool:
                self._pool = None
        if first:
            log.warning("%s; charts are drawn in the runs' threads instead", reason)
        if not pool.retired:
            pool.stop(0)
