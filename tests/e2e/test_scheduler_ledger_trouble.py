"""The scheduler, a real process, when its ledger is held by another process or
its disk is full (issue 12, cases 1 and 8): every fire time still gets exactly
one row, and a full disk gets a clear line and exit code, never "disk I/O error"
alone or a traceback."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from clirun import ledger_query, wait_for

from eil_pipelines.app import ledger_path

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and rlimits")

TICKER = """
title = "Ticker"
[schedule]
every = "1s"
timezone = "UTC"
[queries.q]
sql = "SELECT 1 AS x"
"""

# Another process holds the ledger's write lock for HOLD seconds, longer than
# the 5 s busy timeout: it writes ``ready`` once it holds the lock.
HOLD = 8
LOCKER = """
import sqlite3, sys, time
from pathlib import Path
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
Path(sys.argv[2]).write_text("locked")
time.sleep(float(sys.argv[3]))
conn.execute("COMMIT")
"""


class Daemon:
    """``eil-run pipelines`` as a child process, its stderr in a file."""

    def __init__(self, root: Path, *, preexec=None):
        self.stderr_path = root / "daemon.stderr"
        self._stderr = self.stderr_path.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "eil_pipelines", "pipelines"],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            preexec_fn=preexec,
        )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self._stderr.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._stderr.close()


@pytest.fixture
def daemons():
    started: list[Daemon] = []
    yield lambda root, **kw: started.append(Daemon(root, **kw)) or started[-1]
    for daemon in started:
        daemon.kill()


def rows(reports: Path) -> list[tuple[str, str, str]]:
    """(scheduled_at, status, error) of every row, oldest first."""
    return ledger_query(
        reports, "SELECT scheduled_at, status, error FROM runs ORDER BY scheduled_at"
    )


def seconds(rows_: list[tuple[str, str, str]]) -> list[datetime]:
    return [datetime.fromisoformat(row[0]) for row in rows_]


def test_a_ledger_held_past_the_busy_timeout_delays_rows_but_loses_no_fire_time(project, daemons):
    project.pipeline("ticker", TICKER)
    daemon = daemons(project.root)
    assert wait_for(lambda: any(r[1] == "succeeded" for r in rows(project.reports)), timeout=240), (
        daemon.stderr
    )
    ready = project.root / "locked"
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(ledger_path(project.reports)), str(ready), str(HOLD)]
    )
    try:
        assert wait_for(lambda: ready.exists() or locker.poll() is not None)
        assert locker.poll() is None, "the locker ended before it held the lock"
        held_from = datetime.now().astimezone()
        assert locker.wait(HOLD + 120) == 0
    finally:
        if locker.poll() is None:
            locker.kill()
            locker.wait()
    # Fire times of the whole hold, and a few after it, are in the ledger.
    after = held_from + timedelta(seconds=HOLD + 3)
    assert wait_for(lambda: max(seconds(rows(project.reports))) > after, timeout=120), daemon.stderr
    assert daemon.stop() == 0, daemon.stderr
    found = rows(project.reports)
    times = seconds(found)
    expected = [times[0] + timedelta(seconds=n) for n in range(len(times))]
    missing = sorted(set(expected) - set(times))
    assert not missing, f"fire times without a row: {missing}\n{daemon.stderr}"
    assert times == expected  # and one row each (the key is unique)
    statuses = {status for _, status, _ in found}
    assert statuses <= {"succeeded", "skipped"}, found
    assert "is locked: another process held it for more than 5 s" in daemon.stderr
    assert "this write keeps waiting for it" in daemon.stderr
    assert "Traceback" not in daemon.stderr


def test_a_run_whose_finish_waits_for_the_lock_at_a_sigterm_is_recorded_not_abandoned(
    project, daemons
):
    project.pipeline("ticker", TICKER)
    daemon = daemons(project.root)
    assert wait_for(lambda: any(r[1] == "succeeded" for r in rows(project.reports)), timeout=240), (
        daemon.stderr
    )
    ready = project.root / "locked"
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(ledger_path(project.reports)), str(ready), str(HOLD)]
    )
    try:
        assert wait_for(lambda: ready.exists() or locker.poll() is not None)
        assert locker.poll() is None, "the locker ended before it held the lock"
        # A run due meanwhile waits for the lock (its claim, or its finish).
        assert wait_for(lambda: "this write keeps waiting for it" in daemon.stderr, timeout=60)
        code = daemon.stop(timeout=HOLD + 120)
        assert locker.wait(HOLD + 120) == 0
    finally:
        if locker.poll() is None:
            locker.kill()
            locker.wait()
    assert code == 0, daemon.stderr
    statuses = [status for _, status, _ in rows(project.reports)]
    assert "running" not in statuses and "abandoned" not in statuses, statuses
    assert "Traceback" not in daemon.stderr


def with_file_size_limit(limit: int):
    """The ``preexec`` of a process for which the disk is full past ``limit`` bytes a file."""

    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it fails with EFBIG

    return preexec


def full(limit: int) -> str:
    return (
        "cannot be written: the disk is full for this process: it may not write a file "
        f"past {limit:,} bytes (a file-size limit, `ulimit -f`) (SQLite: disk I/O error); "
        "nothing was written: make room and it carries on"
    )


def ignore_sigxfsz() -> None:  # a write past a file-size limit then fails with EFBIG
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_a_full_disk_under_the_scheduler_is_one_clear_line_per_fire_time(project, daemons):
    project.pipeline("ticker", TICKER)
    daemon = daemons(project.root, preexec=ignore_sigxfsz)
    assert wait_for(lambda: any(r[1] == "succeeded" for r in rows(project.reports)), timeout=240), (
        daemon.stderr
    )
    # The disk fills under the running scheduler: no file of it may grow any
    # more, except its log, which gets some room to say so.
    log = project.reports / ".eil" / "scheduler.log"
    wal = ledger_path(project.reports).with_name("ledger.sqlite3-wal")
    limit = log.stat().st_size + 16_384
    assert wal.stat().st_size > limit  # the ledger's next write goes past it
    resource.prlimit(daemon.process.pid, resource.RLIMIT_FSIZE, (limit, limit))
    assert wait_for(lambda: "not run: ticker at" in daemon.stderr, timeout=120), daemon.stderr
    assert daemon.stop() == 0, daemon.stderr
    line = next(line for line in daemon.stderr.splitlines() if "not run: ticker at" in line)
    assert line.endswith(f"run ledger {ledger_path(project.reports)} {full(limit)}"), line
    assert "Traceback" not in daemon.stderr
    assert "internal error" not in daemon.stderr


def test_a_full_disk_at_start_exits_3_with_a_clear_message(project):
    project.pipeline("ticker", TICKER)
    result = subprocess.run(
        [sys.executable, "-m", "eil_pipelines", "pipelines"],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=with_file_size_limit(8192),
    )
    assert result.returncode == 3, result.stderr
    assert f"eil-run: run ledger {ledger_path(project.reports)} {full(8192)}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not ledger_path(project.reports).exists()  # never a half-made ledger
