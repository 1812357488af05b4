"""``eil-run PATH --processes N``: a supervisor and N scheduler processes, real
processes and real signals.  Every fire time still gets exactly one row."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from clirun import eil, ledger_query, wait_for

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

TICKER = """
title = "Ticker {n}"
[schedule]
every = "1s"
timezone = "UTC"
[queries.q]
sql = "SELECT {n} AS n"
"""


class Supervised:
    """One ``eil-run pipelines --processes N`` process, its stderr in a file."""

    def __init__(self, project, *args: str):
        self.reports = project.reports
        self.stderr_path = project.root / "supervisor.stderr"
        self._stderr = self.stderr_path.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "eil_pipelines",
                "pipelines",
                "--reports",
                str(self.reports),
                *args,
            ],
            cwd=project.root,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )

    def log(self, name: str = "scheduler.log") -> str:
        path = self.reports / ".eil" / name
        return path.read_text(encoding="utf-8") if path.exists() else ""

    def children(self) -> dict[int, int]:
        """Process number -> pid, the latest start of each, from the supervisor's log."""
        found = re.findall(r"scheduler process (\d+) of \d+ started \(pid (\d+)\)", self.log())
        return {int(index): int(pid) for index, pid in found}

    def rows(self) -> list[tuple]:
        return ledger_query(self.reports, "SELECT pipeline, scheduled_at, status, pid FROM runs")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(60)
        for pid in self.children().values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self._stderr.close()


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.fixture
def supervise(project):
    started: list[Supervised] = []
    for n in range(4):
        project.pipeline(f"ticker_{n}", TICKER.format(n=n))

    def make(*args: str) -> Supervised:
        run = Supervised(project, *args)
        started.append(run)
        return run

    yield make
    for run in started:
        run.close()


def every_second_once(rows: list[tuple]) -> None:
    """Each pipeline's fire times, first to last, each exactly once (no gap, no double)."""
    times: dict[str, list[datetime]] = {}
    for pipeline, scheduled_at, _status, _pid in rows:
        times.setdefault(pipeline, []).append(datetime.fromisoformat(scheduled_at))
    assert len(times) == 4
    for pipeline, moments in times.items():
        counts = Counter(moments)
        assert max(counts.values()) == 1, (pipeline, counts.most_common(1))
        first, last = min(moments), max(moments)
        expected = {
            first + timedelta(seconds=s) for s in range(int((last - first).total_seconds()) + 1)
        }
        assert set(moments) == expected, (pipeline, sorted(expected - set(moments))[:3])


def test_processes_share_the_runs_and_stop_together(supervise):
    run = supervise("--processes", "2")
    # Both processes run some of the fire times: the ledger's rows carry their pids.
    assert wait_for(lambda: len({r[3] for r in run.rows() if r[2] == "succeeded"}) == 2, 120), (
        run.log()
    )
    pids = run.children()
    assert sorted(pids) == [1, 2]
    assert {r[3] for r in run.rows()} <= set(pids.values())
    # SIGTERM to every process at once, as systemd stops a unit: the supervisor's
    # own stop request must not count as a second signal (which exits at once).
    run.process.send_signal(signal.SIGTERM)
    for pid in pids.values():
        os.kill(pid, signal.SIGTERM)
    assert run.process.wait(120) == 0
    assert not any(alive(pid) for pid in pids.values())
    every_second_once(run.rows())
    assert "supervisor running" in run.log() and "INFO stopped" in run.log()
    for index in (1, 2):
        own = run.log(f"scheduler.{index}.log")
        assert (
            f"[process {index}] scheduler running (pid {pids[index]}, process {index} of 2)" in own
        )
        assert f"[process {index}] stopped" in own


def test_kill_9_of_the_supervisor_stops_its_processes(supervise):
    run = supervise("--processes", "2")
    assert wait_for(lambda: len(run.children()) == 2 and len(run.rows()) >= 8, 120), run.log()
    pids = run.children()
    run.process.kill()
    run.process.wait(60)
    # Each process sees its pipe end, lets its runs finish and exits.
    assert wait_for(lambda: not any(alive(pid) for pid in pids.values()), 120)
    for index in (1, 2):
        own = run.log(f"scheduler.{index}.log")
        assert "the supervisor stopped, or is gone: stopping" in own
        assert f"[process {index}] stopped" in own
    rows = run.rows()
    assert not [r for r in rows if r[2] == "running"]
    every_second_once(rows)


def test_a_killed_process_is_started_again(supervise):
    run = supervise("--processes", "2")
    assert wait_for(lambda: len(run.children()) == 2, 120), run.log()
    first = run.children()[1]
    os.kill(first, signal.SIGKILL)
    assert wait_for(lambda: run.children().get(1, first) != first, 120), run.log()
    assert re.search(r"scheduler process 1 exited with code -9; starting it again in 1s", run.log())
    second = run.children()[1]
    # The new process runs fire times too; the killed one's run (if any) is abandoned.
    assert wait_for(lambda: any(r[3] == second for r in run.rows()), 120), run.log()
    run.process.send_signal(signal.SIGTERM)
    assert run.process.wait(120) == 0
    every_second_once(run.rows())


def test_processes_is_for_the_scheduler(project):
    project.pipeline("ticker_0", TICKER.format(n=0))
    once = eil("--once", "pipelines", "--processes", "2", cwd=project.root)
    assert once.returncode == 2
    assert "eil-run: --processes goes with the scheduler" in once.stderr
    zero = eil("pipelines", "--processes", "0", cwd=project.root)
    assert zero.returncode == 2
    assert "eil-run: --processes must be at least 1" in zero.stderr
    long = eil("pipelines", "--processes", "2", "--node", "n" * 99, cwd=project.root)
    assert long.returncode == 2
    assert "--node must be at most 98 characters" in long.stderr
    assert not (project.root / "reports").exists() or not list(
        Path(project.root / "reports").iterdir()
    )


def test_a_process_that_cannot_start_stops_the_supervisor_with_its_code(supervise, project):
    """Starting again cannot fix an unusable ledger: the supervisor exits 2, as
    ``eil-run`` alone does, instead of starting its processes for ever."""
    ledger = project.reports / ".eil" / "ledger.sqlite3"
    ledger.parent.mkdir(parents=True)
    ledger.write_bytes(b"")
    run = supervise("--processes", "2")
    assert run.process.wait(120) == 2
    stderr = run.stderr_path.read_text(encoding="utf-8")
    assert "is empty (0 bytes), so it holds no run history" in stderr
    assert "exited with code 2: stopping the others" in run.log()
    assert "starting it again" not in run.log()
    assert not any(alive(pid) for pid in run.children().values())
    assert ledger.read_bytes() == b""
