"""Several scheduler processes on one project: ``eil-run PATH --processes N``.

One Python process renders on one CPU at a time (the GIL), so a project whose
pipelines fire together waits for one CPU.  With ``--processes N`` the command
becomes a *supervisor*: it starts N scheduler processes on the same project and
ledger and does no run itself.  The ledger is the only coordination they need,
as for schedulers on several machines: a fire time is run by the process that
claims it, and the others find it claimed.

* **Order.**  Process ``i`` of ``N`` registers the pipelines starting at the
  ``i/N``-th one, so when many fire at the same moment each process first claims
  a different part of them, and few claims are lost to a sibling.
* **Logs.**  Each process logs to a file of its own (``scheduler.log`` becomes
  ``scheduler.1.log`` ... ``scheduler.N.log``), because a rotating log file cannot
  be shared between processes; the supervisor's own lines stay in
  ``scheduler.log``.  Every process also logs to the same stderr.
* **Stopping.**  Each process holds the read end of a pipe whose write end only
  the supervisor has; when the pipe ends the process stops as after SIGTERM,
  letting its runs finish for up to ``--grace``.  The supervisor ends the pipes
  to stop them (SIGTERM or Ctrl-C to it), and so does its death, even by
  ``kill -9``.  A pipe rather than a signal: under systemd every process of the
  unit also gets the unit's SIGTERM, and a second signal would make a process
  exit at once.  The processes are in a session of their own, so a terminal's
  Ctrl-C reaches the supervisor only.
* **Reload.**  SIGHUP to the supervisor is passed on to every process.
* **Restart.**  A process that dies is started again after 1 s, then 2, 4 ...
  up to 60 s while it keeps dying within a minute of its start.  A process
  that exits with one of the codes that say starting again cannot help (the
  project or the reports folder is unusable: 2 and 3) stops them all, and the
  supervisor exits with that code, for systemd or the container to see.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

log = logging.getLogger("eil_pipelines.scheduler")

#: The environment variable that tells a scheduler process its place: ``"i/N"``.
ROLE_ENV = "EIL_PROCESS"
#: The environment variable naming the pipe (a file descriptor) the supervisor holds open.
PIPE_ENV = "EIL_SUPERVISOR_FD"

#: The first pause before a process that died is started again, and the longest.
RESTART_FIRST_S = 1.0
RESTART_MAX_S = 60.0
#: A process that ran at least this long before dying starts again after the first pause.
RESTART_RESET_S = 60.0
#: Seconds a process may take, beyond the grace for its runs, to exit after SIGTERM.
EXIT_MARGIN_S = 30.0

T = TypeVar("T")


@dataclass(frozen=True)
class ProcessRole:
    """A scheduler process's place among its supervisor's: ``index`` (1-based) of ``count``."""

    index: int
    """This process's number, from 1."""
    count: int
    """How many scheduler processes the supervisor runs."""


def role_from_env(environ: Mapping[str, str]) -> ProcessRole | None:
    """This process's role when a supervisor started it (``EIL_PROCESS=i/N``), else None.

    A value that does not read as ``i/N`` with ``1 <= i <= N`` is ignored: only a
    supervisor sets it, and a stray one must not change how a scheduler runs.
    """
    index, sep, count = environ.get(ROLE_ENV, "").partition("/")
    if not sep or not index.isdigit() or not count.isdigit():
        return None
    role = ProcessRole(int(index), int(count))
    return role if 1 <= role.index <= role.count else None


def rotated(items: Sequence[T], role: ProcessRole | None) -> list[T]:
    """``items`` starting at the ``(index - 1) / count``-th one (all of them, in a circle).

    Process ``i`` of ``N`` registers its pipelines in this order, and jobs due at the
    same moment start in registration order: siblings then claim different
    pipelines first instead of all reaching for the same one.
    """
    if role is None or role.count < 2 or not items:
        return list(items)
    start = (role.index - 1) * len(items) // role.count
    return [*items[start:], *items[:start]]


def process_log_file(log_file: Path | None, index: int) -> Path | None:
    """Process ``index``'s log file beside the supervisor's: ``scheduler.log`` ->
    ``scheduler.2.log`` (``None``, no file, stays ``None``)."""
    if log_file is None:
        return None
    return log_file.with_name(f"{log_file.stem}.{index}{log_file.suffix}")


def follow_supervisor(stop: threading.Event, environ: Mapping[str, str]) -> None:
    """In a scheduler process a supervisor started: set ``stop`` when the supervisor
    is gone (its pipe ends), so no process outlives it.  Nothing otherwise."""
    text = environ.get(PIPE_ENV, "")
    if not text.isdigit():
        return
    fd = int(text)

    def watch() -> None:
        try:
            while os.read(fd, 1):  # the supervisor never writes: this waits for the end
                pass
        except OSError:
            pass  # a closed or foreign descriptor is the same news: no supervisor
        if not stop.is_set():
            log.info("the supervisor stopped, or is gone: stopping")
            stop.set()

    threading.Thread(target=watch, name="eil-supervisor", daemon=True).start()


class _Child:
    """One scheduler process of the supervisor, and when to start it again."""

    def __init__(self, index: int):
        self.index = index
        self.process: subprocess.Popen[bytes] | None = None
        self.pipe: int | None = None  # our (write) end of its pipe
        self.started = 0.0
        self.pause = RESTART_FIRST_S
        self.restart_at: float | None = 0.0  # monotonic; None: not to be started again


class Supervisor:
    """Starts ``count`` scheduler processes and keeps them running until :meth:`stop`.

    ``command(index)`` is the command line of process ``index`` (from 1); each runs
    with ``EIL_PROCESS=index/count`` and the supervisor's pipe in its environment.
    """

    def __init__(
        self,
        count: int,
        command: Callable[[int], list[str]],
        *,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        fatal: frozenset[int] = frozenset(),
    ):
        self.count = count
        self.fatal = fatal
        """Exit codes of a process after which starting it again cannot help."""
        self.failed: int | None = None
        """The first such exit code seen: the supervisor then stops (``None`` until then)."""
        self.command = command
        self.env = dict(os.environ if env is None else env)
        self._clock = clock
        self._children = [_Child(index) for index in range(1, count + 1)]
        self._lock = threading.Lock()
        self._stopping = False

    def pids(self) -> list[int]:
        """The pids of the scheduler processes running now."""
        with self._lock:
            return [
                c.process.pid
                for c in self._children
                if c.process is not None and c.process.poll() is None
            ]

    def poll(self) -> None:
        """Start every process that is due to start: at first, and after one died."""
        with self._lock:
            now = self._clock()
            for child in self._children:
                process = child.process
                if process is not None and process.poll() is not None:
                    self._ended(child, process.returncode, now)
                due = child.restart_at is not None and now >= child.restart_at
                if child.process is None and due and not self._stopping:
                    self._spawn(child, now)

    def reload(self) -> None:
        """Ask every process to load the changed pipeline files again (SIGHUP)."""
        self._signal(signal.SIGHUP)

    def stop(self, grace: float) -> bool:
        """Stop every process (each lets its runs finish for up to ``grace`` seconds)
        and wait for them; False when one had to be killed."""
        with self._lock:
            self._stopping = True
            # Ending the pipe, not a SIGTERM, asks them to stop: under systemd each
            # process also gets the unit's own SIGTERM, and a second signal would
            # make it exit at once without its runs.
            for child in self._children:
                self._close(child)
        clean = True
        deadline = self._clock() + grace + EXIT_MARGIN_S
        for child in self._children:
            process = child.process
            if process is None:
                continue
            try:
                process.wait(max(0.0, deadline - self._clock()))
            except subprocess.TimeoutExpired:
                # Its runs stay "running" in the ledger; the next start marks them abandoned.
                log.error(
                    "scheduler process %d (pid %d) did not stop: killed", child.index, process.pid
                )
                process.kill()
                process.wait()
                clean = False
            self._close(child)
        return clean

    # -- inside -----------------------------------------------------------------------

    def _spawn(self, child: _Child, now: float) -> None:
        read, write = os.pipe()
        env = {**self.env, ROLE_ENV: f"{child.index}/{self.count}", PIPE_ENV: str(read)}
        try:
            child.process = subprocess.Popen(
                self.command(child.index),
                env=env,
                pass_fds=(read,),
                # A session of its own: a terminal's Ctrl-C reaches the supervisor
                # only, which stops them through the pipe (two signals end a run).
                start_new_session=True,
            )
        except OSError as exc:
            os.close(write)
            log.error(
                "scheduler process %d could not start (%s); trying again in %gs",
                child.index,
                exc,
                self._later(child, now),
            )
            return
        finally:
            os.close(read)
        child.pipe = write
        child.started = now
        log.info(
            "scheduler process %d of %d started (pid %d)",
            child.index,
            self.count,
            child.process.pid,
        )

    def _ended(self, child: _Child, code: int, now: float) -> None:
        self._close(child)
        child.process = None
        if self._stopping:
            return
        if code in self.fatal:
            log.error(
                "scheduler process %d exited with code %d: stopping the others", child.index, code
            )
            child.restart_at = None
            self.failed = code if self.failed is None else self.failed
            return
        if now - child.started >= RESTART_RESET_S:
            child.pause = RESTART_FIRST_S
        log.error(
            "scheduler process %d exited with code %d; starting it again in %gs",
            child.index,
            code,
            self._later(child, now),
        )

    def _later(self, child: _Child, now: float) -> float:
        """Start ``child`` again after its pause, and double the next one; the pause."""
        pause = child.pause
        child.restart_at = now + pause
        child.pause = min(RESTART_MAX_S, pause * 2)
        return pause

    def _close(self, child: _Child) -> None:
        if child.pipe is not None:
            os.close(child.pipe)
            child.pipe = None

    def _signal(self, signum: int) -> None:
        with self._lock:
            for child in self._children:
                if child.process is not None and child.process.poll() is None:
                    child.process.send_signal(signum)


def run_supervised(
    supervisor: Supervisor, stop: threading.Event, *, on_reload: Callable[[], bool]
) -> None:
    """Keep the processes running until ``stop`` is set (or one fails for good, see
    :attr:`Supervisor.failed`); SIGHUP (``on_reload``) reloads them."""
    supervisor.poll()
    while supervisor.failed is None and not stop.wait(0.2):
        if on_reload():
            supervisor.reload()
        supervisor.poll()


def this_command() -> list[str]:
    """The interpreter and module that run ``eil-run`` in this process."""
    return [sys.executable, "-m", "eil_pipelines"]
