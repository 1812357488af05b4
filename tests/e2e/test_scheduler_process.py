"""``eil-run PATH``, the long-running scheduler, as a real process with real signals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clirun import ledger_query, wait_for

from eil_pipelines.app import ledger_path
from eil_pipelines.ledger import Ledger

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

EVERY_SECOND = """
title = "Ticker"
[schedule]
every = "1s"
timezone = "UTC"
[queries.q]
sql = "SELECT 1 AS x"
"""

# The query's size comes from data/n.csv, so a test can make it slow, then fast.
SIZED = """
title = "Sized"
[schedule]
every = "{every}"
timezone = "UTC"
{extra}
[queries.q]
sql = "SELECT count(*) AS n FROM range((SELECT max(n) FROM 'data/n.csv'))"
"""
FOREVER = 100_000_000_000  # minutes of counting, unless interrupted


class Scheduler:
    """One ``eil-run pipelines`` process, its stderr in a file."""

    def __init__(self, project, reports: Path, *args: str, tag: str = "run"):
        self.stderr_path = project.root / f"{tag}.stderr"
        self._stderr = self.stderr_path.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "eil_pipelines", "pipelines", "--reports", str(reports), *args],
            cwd=project.root,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
            text=True,
        )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._stderr.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(60)
        self._stderr.close()


@pytest.fixture
def start(project):
    """Start ``eil-run`` processes; any still running at the end is killed."""
    started: list[Scheduler] = []

    def make(*args: str, reports: Path | None = None, tag: str = "run") -> Scheduler:
        scheduler = Scheduler(project, reports or project.reports, *args, tag=tag)
        started.append(scheduler)
        return scheduler

    yield make
    for scheduler in started:
        scheduler.kill()


def rows(reports: Path) -> list[tuple]:
    """(pipeline, scheduled_at, status, attempt, error) of every ledger row, oldest first."""
    return ledger_query(
        reports,
        "SELECT pipeline, scheduled_at, status, attempt, error FROM runs ORDER BY scheduled_at",
    )


def statuses(reports: Path) -> list[str]:
    return [row[2] for row in rows(reports)]


def soon(delay: float) -> datetime:
    """A whole second (UTC) about ``delay`` seconds from now."""
    return (datetime.now(UTC) + timedelta(seconds=delay)).replace(microsecond=0)


def test_sigterm_stops_cleanly_and_logs(project, start):
    project.pipeline("ticker", EVERY_SECOND)
    run = start()
    assert wait_for(lambda: "succeeded" in statuses(project.reports)), run.stderr
    run.signal(signal.SIGTERM)
    assert run.wait(60) == 0
    log = (project.reports / ".eil" / "scheduler.log").read_text(encoding="utf-8")
    assert re.search(r"INFO started: ticker at \S+ \(attempt 1\)", log), log
    assert re.search(r"INFO finished: ticker at \S+ in [0-9.]+s: \S+\.md, \S+\.html", log), log
    assert "stopping: waiting up to 30s for runs in flight" in log
    assert log.rstrip().endswith("INFO stopped")
    assert "Traceback" not in run.stderr
    assert "running" not in statuses(project.reports)


def test_kill_9_during_a_run_is_recovered_on_restart(project, start):
    project.write("data/n.csv", f"n\n{FOREVER}\n")
    fire = soon(1)  # an hourly grid with a fire time a second from now ...
    project.pipeline("sized", SIZED.format(every="1h", extra=f"start = {fire:%Y-%m-%dT%H:%M:%S}"))
    with Ledger(ledger_path(project.reports)) as ledger:  # ... due even if we start late
        earlier = fire - timedelta(hours=1)
        ledger.claim("sized", earlier, run_id="earlier", now=earlier)
        ledger.finish("sized", earlier, status="succeeded", now=earlier)
    scheduled_at = fire.isoformat()
    first = start(tag="first")
    assert wait_for(lambda: statuses(project.reports) == ["succeeded", "running"]), first.stderr
    assert rows(project.reports)[1][:3] == ("sized", scheduled_at, "running")
    time.sleep(0.2)  # well inside the query
    first.process.kill()  # SIGKILL: no clean-up at all
    first.wait(60)
    assert statuses(project.reports) == ["succeeded", "running"]

    project.write("data/n.csv", "n\n1234\n")  # fast this time
    second = start(tag="second")
    assert wait_for(lambda: statuses(project.reports) == ["succeeded"] * 2), second.stderr
    second.signal(signal.SIGTERM)
    assert second.wait(60) == 0

    assert rows(project.reports)[1:] == [("sized", scheduled_at, "succeeded", 2, None)]
    assert f"abandoned: sized at {scheduled_at} (the process running it stopped)" in second.stderr
    assert f"started: sized at {scheduled_at} (attempt 2)" in second.stderr
    folder = project.reports / "sized"
    stamp = datetime.fromisoformat(scheduled_at).strftime("%Y-%m-%dT%H%M")
    assert sorted(p.name for p in folder.iterdir()) == [
        f"{stamp}.html",
        f"{stamp}.json",
        f"{stamp}.md",
        "index.html",
        "latest.html",
        "latest.md",
    ]
    assert not list(project.reports.rglob(".staging-*"))
    for md in folder.glob("*.md"):
        text = md.read_text(encoding="utf-8")
        assert "1,234" in text or "1234" in text
        assert text.rstrip().endswith("</details>"), md
    for html in folder.glob("*.html"):
        assert html.read_text(encoding="utf-8").rstrip().endswith("</html>"), html


def test_two_processes_on_one_folder_run_each_time_once(project, start):
    project.pipeline("ticker", EVERY_SECOND)
    first, second = start(tag="first"), start(tag="second")
    running = "scheduler running (pid"
    assert wait_for(lambda: running in first.stderr and running in second.stderr)
    both_up = len(rows(project.reports))
    assert wait_for(
        lambda: (
            len(rows(project.reports)) >= both_up + 2
            and statuses(project.reports).count("succeeded") >= 2
            # Both did try a time the other had: the contention is real.
            and "is already in the ledger" in first.stderr + second.stderr
        )
    )
    for run in (first, second):
        run.signal(signal.SIGTERM)
    assert first.wait(60) == 0 and second.wait(60) == 0

    ledger = rows(project.reports)
    times = [row[1] for row in ledger]
    assert len(times) == len(set(times))
    succeeded = [row[1] for row in ledger if row[2] == "succeeded"]
    assert len(succeeded) >= 2
    stamps = {datetime.fromisoformat(t).strftime("%Y-%m-%dT%H%M%S") + ".md" for t in succeeded}
    written = {p.name for p in (project.reports / "ticker").glob("*.md")} - {"latest.md"}
    assert written == stamps
    logs = first.stderr + second.stderr
    started = Counter(re.findall(r"started: ticker at (\S+) \(attempt 1\)", logs))
    assert started and set(started.values()) == {1}, started
    assert set(started) == {row[1] for row in ledger if row[2] != "skipped"}


def test_sighup_reloads(project, start):
    file = project.pipeline("ticker", EVERY_SECOND.replace('"1s"', '"1h"'))
    run = start()
    assert wait_for(lambda: "scheduler running" in run.stderr), run.stderr
    before = file.stat()
    file.write_text(file.read_text().replace('"1h"', '"2h"'))
    # Same size and mtime: the folder watcher can't see this edit, only SIGHUP can.
    os.utime(file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert file.stat().st_size == before.st_size
    run.signal(signal.SIGHUP)
    assert wait_for(lambda: "reload: rescheduled ticker, next run" in run.stderr, 20), run.stderr
    log = (project.reports / ".eil" / "scheduler.log").read_text(encoding="utf-8")
    assert "reload: rescheduled ticker, next run" in log
    run.signal(signal.SIGTERM)
    assert run.wait(60) == 0


def test_second_sigint_exits_at_once(project, start):
    project.write("data/n.csv", f"n\n{FOREVER}\n")
    project.pipeline("sized", SIZED.format(every="1s", extra=""))
    run = start()
    assert wait_for(lambda: "running" in statuses(project.reports)), run.stderr
    run.signal(signal.SIGINT)
    time.sleep(0.3)
    assert run.process.poll() is None  # the first one waits for the run in flight
    run.signal(signal.SIGINT)
    assert run.wait(60) == 130
    assert "running" in statuses(project.reports)  # left for the next start to recover


def test_grace_period_over_exits_and_records_abandoned(project, start):
    project.write("data/n.csv", f"n\n{FOREVER}\n")
    project.pipeline("sized", SIZED.format(every="1s", extra=""))
    run = start("--grace", "0.3")
    assert wait_for(lambda: "running" in statuses(project.reports)), run.stderr
    run.signal(signal.SIGTERM)
    assert run.wait(60) == 0  # not after the query's minutes
    assert "running" not in statuses(project.reports)
    assert "abandoned" in statuses(project.reports)
    assert "stopping: waiting up to 0.3s for runs in flight" in run.stderr
    assert "stopped; unfinished runs recorded as abandoned" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (project.reports / "sized").exists()


def test_invalid_folder_at_start_exits_2(project):
    project.pipeline("bad", 'title = 3\n[queries.q]\nsql = "SELECT 1"\n')
    result = subprocess.run(
        [sys.executable, "-m", "eil_pipelines", "pipelines"],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "pipelines/bad.toml: title: expected a string, got integer 3",
        "",
        "1 problem in 1 file.",
    ]
    assert not project.reports.exists()  # nothing written, not even a log
    missing = subprocess.run(
        [sys.executable, "-m", "eil_pipelines", "nowhere"],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip() == "eil-run: nowhere: no such file or folder"
    assert not project.reports.exists()


CHARTED = EVERY_SECOND.replace(
    'sql = "SELECT 1 AS x"',
    """sql = "SELECT * FROM (VALUES ('EMEA', 3.0), ('APAC', 5.0)) t(region, revenue)"
[[charts]]
name = "by_region"
query = "q"
type = "bar"
x = "region"
y = "revenue"
""",
)


def chart_children(pid: int) -> list[int]:
    """The scheduler's chart processes that have loaded matplotlib (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:  # the thread ended between the listing and the read
            continue
        for child in children:
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
                maps = Path(f"/proc/{child}/maps").read_text()
            except OSError:
                continue
            if b"eil-pipelines chart process" in cmdline and "ft2font" in maps:
                found.append(int(child))
    return found


def gone(pid: int) -> bool:
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_chart_processes_draw_the_charts_ignore_ctrl_c_and_stop_with_the_scheduler(project, start):
    project.pipeline("ticker", CHARTED)
    run = start("--chart-processes", "2")
    # Generous deadlines, reached only when the test fails: on a loaded machine
    # each chart process takes seconds to load matplotlib.
    assert wait_for(lambda: "succeeded" in statuses(project.reports), 300), run.stderr
    assert next((project.reports / "ticker").glob("*_charts/by_region.png")).stat().st_size
    assert wait_for(lambda: len(chart_children(run.process.pid)) == 2, 300), run.stderr
    children = chart_children(run.process.pid)
    for pid in children:  # a terminal's Ctrl-C reaches the process group, not them
        os.kill(pid, signal.SIGINT)
    # Two more runs draw their charts after the interrupts: the processes lived through them.
    done = statuses(project.reports).count("succeeded")
    assert wait_for(lambda: statuses(project.reports).count("succeeded") >= done + 2, 300)
    assert not any(gone(pid) for pid in children)
    assert sorted(chart_children(run.process.pid)) == sorted(children)
    run.signal(signal.SIGTERM)
    assert run.wait(300) == 0, run.stderr
    assert all(gone(pid) for pid in children)
    assert "Traceback" not in run.stderr
    assert "chart process" not in run.stderr  # none was lost
