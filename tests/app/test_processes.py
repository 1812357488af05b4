"""The supervisor of ``--processes N``: roles, order, logs, restarts and the pipe,
with real child processes (a small script) and an injected clock for the pauses."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from eil_pipelines.app.processes import (
    PIPE_ENV,
    RESTART_FIRST_S,
    ROLE_ENV,
    ProcessRole,
    Supervisor,
    follow_supervisor,
    process_log_file,
    role_from_env,
    rotated,
    run_supervised,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and pipes")

# A stand-in scheduler process: says it is up (with its role and whether it holds
# the pipe), writes "hup" on SIGHUP, exits 0 on SIGTERM or when the pipe ends, 2 on SIGUSR1.
CHILD = r"""
import os, signal, sys, threading
out = sys.argv[1]
def say(text):
    with open(out, "a") as f:
        f.write(text + "\n")
signal.signal(signal.SIGHUP, lambda *_: say("hup"))
signal.signal(signal.SIGUSR1, lambda *_: os._exit(2))
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: done.set())
def pipe():
    while os.read(int(os.environ["EIL_SUPERVISOR_FD"]), 1):
        pass
    say("pipe ended")
    done.set()
threading.Thread(target=pipe, daemon=True).start()
say("up " + os.environ["EIL_PROCESS"])
while not done.wait(1):
    pass
say("bye")
"""


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def wait_for(predicate, timeout: float = 60.0) -> bool:
    """Poll until ``predicate`` holds; the deadline is reached only when a test fails."""
    ended = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return True
        ended.wait(0.02)
    return bool(predicate())


@pytest.fixture
def supervised(tmp_path):
    """A Supervisor of ``count`` stand-in processes, each writing to ``out-<i>.txt``."""
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    made: list[Supervisor] = []

    def make(
        count: int, clock: Clock | None = None, fatal: frozenset[int] = frozenset()
    ) -> Supervisor:
        supervisor = Supervisor(
            count,
            lambda index: [sys.executable, str(script), str(tmp_path / f"out-{index}.txt")],
            fatal=fatal,
            **({"clock": clock} if clock else {}),
        )
        made.append(supervisor)
        return supervisor

    yield make
    for supervisor in made:
        supervisor.stop(5)


def test_role_from_env_reads_i_of_n_and_ignores_anything_else():
    assert role_from_env({ROLE_ENV: "2/3"}) == ProcessRole(2, 3)
    for bad in ("", "2", "0/2", "3/2", "a/2", "-1/2", "1/"):
        assert role_from_env({ROLE_ENV: bad}) is None, bad
    assert role_from_env({}) is None


def test_rotated_starts_each_process_at_its_share():
    items = list(range(10))
    assert rotated(items, None) == items
    assert rotated(items, ProcessRole(1, 2)) == items
    assert rotated(items, ProcessRole(2, 2)) == [5, 6, 7, 8, 9, 0, 1, 2, 3, 4]
    assert rotated(items, ProcessRole(3, 3))[0] == 6
    assert rotated([], ProcessRole(2, 2)) == []
    # Every process registers every pipeline, once.
    assert sorted(rotated(items, ProcessRole(2, 3))) == items


def test_each_process_logs_to_a_file_of_its_own(tmp_path):
    log = tmp_path / ".eil" / "scheduler.log"
    assert process_log_file(log, 2) == tmp_path / ".eil" / "scheduler.2.log"
    assert process_log_file(None, 2) is None


def test_processes_start_with_their_role_and_get_sighup(supervised, tmp_path):
    supervisor = supervised(2)
    supervisor.poll()
    outs = [tmp_path / "out-1.txt", tmp_path / "out-2.txt"]
    assert wait_for(lambda: all(lines(p)[:1] for p in outs))
    assert [lines(p)[0] for p in outs] == ["up 1/2", "up 2/2"]
    assert len(set(supervisor.pids())) == 2
    supervisor.reload()
    assert wait_for(lambda: all("hup" in lines(p) for p in outs))
    assert supervisor.stop(30) is True
    assert all(lines(p)[-1] == "bye" for p in outs)
    assert supervisor.pids() == []


def test_a_process_that_dies_starts_again_after_a_growing_pause(supervised, tmp_path):
    clock = Clock()
    supervisor = supervised(1, clock)
    supervisor.poll()
    out = tmp_path / "out-1.txt"
    assert wait_for(lambda: lines(out) == ["up 1/1"])
    first = supervisor.pids()[0]

    os.kill(first, signal.SIGKILL)
    assert wait_for(lambda: (supervisor.poll(), supervisor.pids())[1] == [])
    clock.now += RESTART_FIRST_S - 0.01
    supervisor.poll()
    assert supervisor.pids() == []  # the pause is not over
    clock.now += 0.01
    supervisor.poll()
    assert wait_for(lambda: lines(out).count("up 1/1") == 2)
    second = supervisor.pids()[0]
    assert second != first

    # It died again quickly: the next pause is twice as long.
    os.kill(second, signal.SIGKILL)
    assert wait_for(lambda: (supervisor.poll(), supervisor.pids())[1] == [])
    clock.now += 2 * RESTART_FIRST_S - 0.01
    supervisor.poll()
    assert supervisor.pids() == []
    clock.now += 0.01
    supervisor.poll()
    assert wait_for(lambda: lines(out).count("up 1/1") == 3)


def test_a_stopped_supervisor_starts_nothing_again(supervised, tmp_path):
    clock = Clock()
    supervisor = supervised(1, clock)
    supervisor.poll()
    assert wait_for(lambda: lines(tmp_path / "out-1.txt") == ["up 1/1"])
    assert supervisor.stop(30) is True
    clock.now += 3600
    supervisor.poll()
    assert supervisor.pids() == []


def test_a_fatal_exit_code_stops_the_supervisor_instead_of_a_restart(supervised, tmp_path):
    clock = Clock()
    supervisor = supervised(2, clock, fatal=frozenset({2, 3}))
    supervisor.poll()
    outs = [tmp_path / "out-1.txt", tmp_path / "out-2.txt"]
    assert wait_for(lambda: all(lines(p)[:1] for p in outs))  # handlers in place
    # A crash (a signal) is not fatal: that process starts again.
    os.kill(supervisor.pids()[0], signal.SIGKILL)
    assert wait_for(lambda: (supervisor.poll(), len(supervisor.pids()))[1] == 1)
    assert supervisor.failed is None
    clock.now += RESTART_FIRST_S
    supervisor.poll()
    assert wait_for(lambda: lines(outs[0]).count("up 1/2") == 2)
    # Exit code 2 is fatal: run_supervised returns with no stop asked, and
    # nothing starts again; the other process runs until stop().
    os.kill(supervisor.pids()[1], signal.SIGUSR1)
    run_supervised(supervisor, threading.Event(), on_reload=lambda: False)
    assert supervisor.failed == 2
    clock.now += 3600
    supervisor.poll()
    assert len(supervisor.pids()) == 1
    assert lines(outs[1]) == ["up 2/2"]


def test_the_pipe_ends_with_the_supervisor(tmp_path):
    """The process learns of its supervisor's death from its pipe (as after kill -9)."""
    read, write = os.pipe()
    stop = threading.Event()
    follow_supervisor(stop, {PIPE_ENV: str(read)})
    assert not stop.wait(0.05)
    os.close(write)
    assert stop.wait(60)
    os.close(read)


def test_no_pipe_no_watch():
    stop = threading.Event()
    follow_supervisor(stop, {})
    follow_supervisor(stop, {PIPE_ENV: "not a number"})
    assert not any(t.name == "eil-supervisor" for t in threading.enumerate())
