"""Chart processes: charts drawn in parallel, outside the scheduler's interpreter lock.

Drawing a chart is pure Python work inside matplotlib, so in one process the
runs' worker threads take turns at it: the charts of a report are drawn one
after another and two reports due at once wait for each other.
:class:`ChartProcesses` keeps a few long-lived child processes
(a Python interpreter running :func:`serve`), each with matplotlib loaded,
and hands each one a :class:`~eil_pipelines.charts.work.ChartJob` at a time:
a report's charts are drawn side by side, on every core.

A child speaks a minimal protocol on its standard input and output: frames
of an 8-byte big-endian length and a pickle.  It first says ``("ready",
pid)``, then answers each job with ``("ok", RenderedChart)``,
``("chart_error", detail)`` or ``("error", text)``, and exits when its input
closes: when the pool is closed, and when the parent dies however it dies
(even ``kill -9``), so a child never outlives its scheduler.  Only the parent
writes to a child, over a pipe no other process holds, so unpickling its
frames trusts nothing the parent does not already trust.  Children run in a
session of their own and ignore SIGINT, SIGTERM and SIGHUP: the parent
decides when they stop, after its runs have finished.

Nothing is lost when a child fails: a child that cannot start, or that dies
in the middle of a chart, is logged and that chart is drawn in the run's own
thread instead; a lost child is replaced at the next chart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import queue
import select
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import CancelledError, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import ChartError
from .work import ChartJob, RenderedChart, render_job

log = logging.getLogger(__name__)

#: Chart processes the scheduler starts by default: one per CPU, at most this many.
MAX_DEFAULT_PROCESSES = 4

#: Seconds a new chart process may take to load matplotlib and say it is ready.
STARTUP_TIMEOUT = 60.0

_LENGTH = struct.Struct(">Q")

# The child ignores terminal signals from its first line (matplotlib takes a
# second to import), then imports this very package, wherever the parent
# found it, ahead of any other copy; "-P" keeps the working folder off its path.
_BOOTSTRAP = (
    "# eil-pipelines chart process (ps shows this line)\n"
    "import signal\n"
    "for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP): signal.signal(s, signal.SIG_IGN)\n"
    "import sys\n"
    "if sys.argv[1] not in sys.path: sys.path.insert(0, sys.argv[1])\n"
    "from eil_pipelines.charts.processes import child_main\n"
    "sys.exit(child_main())\n"
)


def default_chart_processes(cpus: int | None = None) -> int:
    """How many chart processes suit this machine: one per CPU up to 4, none with one CPU.

    With a single CPU a child process only adds the cost of moving the data.
    """
    count = os.cpu_count() if cpus is None else cpus
    if not count or count < 2:
        return 0
    return min(MAX_DEFAULT_PROCESSES, count)


# --- frames -------------------------------------------------------------------------------


def write_frame(stream: BinaryIO, message: Any) -> None:
    """Send ``message`` as one length-prefixed pickle and flush."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(body)))
    stream.write(body)
    stream.flush()


def read_frame(stream: BinaryIO) -> Any:
    """The next message, or ``None`` when the stream ends between frames.

    Raises :class:`EOFError` when it ends inside one (the writer died).
    """
    head = _read_exactly(stream, _LENGTH.size)
    if not head:
        return None
    if len(head) < _LENGTH.size:
        raise EOFError("the stream ended inside a frame header")
    (length,) = _LENGTH.unpack(head)
    body = _read_exactly(stream, length)
    if len(body) < length:
        raise EOFError(f"the stream ended {length - len(body)} bytes into a frame")
    return pickle.loads(body)


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes: fewer only when the stream ends."""
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# --- the parent's side --------------------------------------------------------------------


class ChildLost(Exception):
    """A chart process stopped without answering."""


class ChildCannotStart(ChildLost):
    """A chart process could not be started, or died before it was ready."""


class _Child:
    """One chart process and its two pipes."""

    def __init__(self) -> None:
        package_parent = str(Path(__file__).resolve().parents[2])
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-P", "-c", _BOOTSTRAP, package_parent],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                close_fds=True,
                start_new_session=True,
            )
        except OSError as exc:
            raise ChildCannotStart(f"cannot start a chart process: {exc}") from None
        self.pid = self.proc.pid
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], STARTUP_TIMEOUT)
        if not ready:
            self.stop(0)
            raise ChildCannotStart(
                f"a chart process could not start: not ready after {STARTUP_TIMEOUT:g} s"
            )
        try:
            hello = self._receive()
        except ChildLost as exc:
            self.stop(0)
            raise ChildCannotStart(f"a chart process could not start: {exc}") from None
        if not (isinstance(hello, tuple) and hello[:1] == ("ready",)):
            self.stop(0)
            raise ChildCannotStart(f"a chart process could not start: it said {hello!r}")

    def render(self, job: ChartJob) -> RenderedChart:
        """Have the child render ``job``; raises ChartError as the run's thread would."""
        try:
            assert self.proc.stdin is not None
            write_frame(self.proc.stdin, job)
        except (OSError, ValueError) as exc:  # ValueError: the pipe was closed by close()
            raise ChildLost(f"chart process {self.proc.pid} stopped: {exc}") from None
        reply = self._receive()
        kind = reply[0]
        if kind == "ok":
            return reply[1]
        if kind == "chart_error":
            raise ChartError(job.spec.name, reply[1])
        raise RuntimeError(f"in a chart process: {reply[1]}")

    def _receive(self) -> tuple:
        try:
            assert self.proc.stdout is not None
            reply = read_frame(self.proc.stdout)
        except (OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:
            raise ChildLost(f"chart process {self.proc.pid} stopped: {exc}") from None
        if reply is None:
            try:  # its output closed: it is exiting, so its status is a moment away
                code: int | None = self.proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                code = None
            how = f"exit status {code}" if code is not None else "its output closed"
            raise ChildLost(f"chart process {self.proc.pid} stopped ({how})")
        return reply

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float) -> None:
        """Close the child's input (it exits when idle), and kill it after ``timeout``."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):  # a flush into a pipe the child closed
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


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
        # One token per process: a running child, or None for one not (yet) started.
        self._idle: queue.SimpleQueue[_Child | None] = queue.SimpleQueue()
        for _ in range(processes):
            self._idle.put(None)
        self._dispatch = ThreadPoolExecutor(max_workers=processes, thread_name_prefix="eil-chart")
        self._lock = threading.Lock()
        self._children: set[_Child] = set()
        self._closed = False
        self._unavailable: str | None = None

    def render(self, jobs: Sequence[ChartJob]) -> list[RenderedChart]:
        """Render ``jobs`` side by side; results come back in the order of ``jobs``.

        Raises the :class:`~eil_pipelines.errors.ChartError` of the first
        failing job (in job order), as drawing them one by one would.
        """
        with self._lock:
            usable = not self._closed and self._unavailable is None
        if not usable:
            return [render_job(job) for job in jobs]
        try:
            futures = [self._dispatch.submit(self._render_one, job) for job in jobs]
        except RuntimeError:  # closed while submitting
            return [render_job(job) for job in jobs]
        results = []
        for job, future in zip(jobs, futures, strict=True):
            try:
                results.append(future.result())
            except CancelledError:  # closed before a process took it: draw it here
                results.append(render_job(job))
        return results

    def warm(self) -> None:
        """Start every process now, in the background, so the first charts need not wait."""
        with self._lock:
            if self._closed or self._unavailable is not None:
                return
        with contextlib.suppress(RuntimeError):  # closed meanwhile
            for _ in range(self.processes):
                self._dispatch.submit(self._hold_started)

    @property
    def pids(self) -> list[int]:
        """Process ids of the running chart processes."""
        with self._lock:
            return sorted(c.pid for c in self._children if c.alive)

    def close(self, timeout: float = 5.0) -> None:
        """Let each process finish its chart and exit; kill any still busy after ``timeout``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            children = list(self._children)
        self._dispatch.shutdown(wait=False, cancel_futures=True)
        for child in children:
            child.stop(timeout)

    def __enter__(self) -> ChartProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inside the dispatch threads -------------------------------------------------------

    def _started(self, child: _Child | None) -> _Child:
        """``child`` if it runs, else a new process (raises ChildCannotStart)."""
        if child is not None and child.alive:
            return child
        if child is not None:
            self._forget(child)
        child = _Child()
        with self._lock:
            self._children.add(child)
            closed = self._closed
        if closed:  # close() ran while it started, and did not see it
            self._forget(child)
            raise ChildLost("the chart processes were closed")
        log.debug("chart process %d started", child.pid)
        return child

    def _hold_started(self) -> None:
        token = self._idle.get()
        try:
            token = self._started(token)
        except ChildCannotStart as exc:
            token = None
            self._give_up(str(exc))
        except ChildLost:
            token = None
        finally:
            self._idle.put(token)

    def _render_one(self, job: ChartJob) -> RenderedChart:
        token = self._idle.get()
        try:
            token = self._started(token)
            return token.render(job)
        except ChildCannotStart as exc:
            token = None
            self._give_up(str(exc))
        except ChildLost as exc:
            if token is not None:
                self._forget(token)
                token = None
            with self._lock:
                closing = self._closed
            if not closing:
                log.warning('%s; drawing chart "%s" in the run\'s thread', exc, job.spec.name)
        finally:
            self._idle.put(token)
        return render_job(job)

    def _forget(self, child: _Child) -> None:
        with self._lock:
            self._children.discard(child)
        child.stop(0)

    def _give_up(self, reason: str) -> None:
        with self._lock:
            first = self._unavailable is None
            self._unavailable = reason
        if first:
            log.warning("%s; charts are drawn in the runs' threads instead", reason)


# --- the child's side ---------------------------------------------------------------------


def serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    """The child's loop: answer each job frame on ``stdin`` until it closes."""
    write_frame(stdout, ("ready", os.getpid()))
    while True:
        try:
            job = read_frame(stdin)
        except EOFError:
            return 0
        except Exception as exc:  # a frame it cannot unpickle: say so, take the next
            job = exc
        if job is None:
            return 0
        try:
            if isinstance(job, Exception):
                raise job
            reply: tuple = ("ok", render_job(job))
        except ChartError as exc:
            reply = ("chart_error", exc.detail)
        except Exception as exc:  # a bug: the parent reports it as the run's failure
            reply = ("error", f"{type(exc).__name__}: {exc}")
        try:
            write_frame(stdout, reply)
        except OSError:  # the parent is gone
            return 0


def child_main() -> int:
    """A chart process's entry point: serve on stdin/stdout (terminal signals ignored)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # already, by the bootstrap; here for other callers
    # The protocol owns the real standard output; anything else printed goes nowhere.
    protocol_out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    return serve(sys.stdin.buffer, protocol_out)
