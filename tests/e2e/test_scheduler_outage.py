"""The scheduler, a real process, after a year down (issue 12, case 5): the
caught-up run starts at once, the year's skipped times follow in batches, and
a SIGTERM in the middle of them is honoured."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from clirun import ledger_query, wait_for

from eil_pipelines.app import ledger_path
from eil_pipelines.ledger import Ledger

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

EVERY_5S = """
title = "Every five seconds"
[schedule]
every = "5s"
timezone = "UTC"
catch_up = "latest"
[queries.q]
sql = "SELECT 1 AS x"
"""


def test_a_year_down_runs_the_latest_at_once_and_sigterm_is_honoured_mid_skips(project):
    project.pipeline("every_5s", EVERY_5S)
    old = (datetime.now(UTC) - timedelta(days=365)).replace(microsecond=0)
    old -= timedelta(seconds=old.second % 5)
    with Ledger(ledger_path(project.reports)) as ledger:
        ledger.claim("every_5s", old, run_id="old", now=old)
        ledger.finish("every_5s", old, status="succeeded", now=old)
    recent = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    stderr = project.root / "daemon.stderr"
    with stderr.open("w") as sink:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "eil_pipelines", "pipelines", "--grace", "2"],
            cwd=project.root,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    try:

        def caught_up() -> list[tuple]:
            return ledger_query(
                project.reports,
                "SELECT status FROM runs WHERE status != 'skipped'"
                f" AND pipeline = 'every_5s' AND scheduled_at > '{recent}'",
            )

        # Before: the scheduler walked 6 million fire times under its lock first.
        assert wait_for(lambda: bool(caught_up()), timeout=120), stderr.read_text()

        def skipped() -> int:
            return ledger_query(
                project.reports, "SELECT count(*) FROM runs WHERE status = 'skipped'"
            )[0][0]

        assert wait_for(lambda: skipped() >= 1000, timeout=120), stderr.read_text()
        daemon.send_signal(signal.SIGTERM)
        began = time.monotonic()
        assert daemon.wait(120) == 0, stderr.read_text()
        took = time.monotonic() - began
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    log = stderr.read_text()
    # A year of 5 s is 6.3 million times; the rest is left, and said so, at the SIGTERM.
    assert skipped() < 6_000_000
    assert "fire times were due at once; running" in log
    assert "were not handed over: the scheduler shut down" in log, log
    assert "Traceback" not in log
    assert took < 60, f"the SIGTERM took {took:.1f} s"
