"""``eil-run PATH`` with an invalid file beside a valid one: a real process starts
with the valid pipeline, logs the invalid one, and records the good one's runs."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from clirun import ledger_query, wait_for

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

TICKER = """
title = "Ticker"
[schedule]
every = "1s"
timezone = "UTC"
[queries.q]
sql = "SELECT 1 AS x"
"""


def test_the_daemon_starts_with_the_valid_pipeline_and_logs_the_invalid(project):
    project.pipeline("ticker", TICKER)
    project.pipeline("bad", TICKER.replace('every = "1s"', 'every = "3000000d"'))
    project.pipeline("zone", TICKER.replace('timezone = "UTC"', f'timezone = "{"Z" * 300}"'))
    stderr_path = project.root / "run.stderr"
    with stderr_path.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "eil_pipelines", "pipelines"],
            cwd=project.root,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
        try:
            ran = wait_for(
                lambda: (
                    ledger_query(
                        project.reports,
                        "SELECT count(*) >= 1 FROM runs "
                        "WHERE pipeline = 'ticker' AND status = 'succeeded'",
                    )
                    == [(1,)]
                )
            )
            assert ran, stderr_path.read_text(encoding="utf-8")
            process.send_signal(signal.SIGTERM)
            assert process.wait(300) == 0  # a deadline reached only when the test fails
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)
    output = stderr_path.read_text(encoding="utf-8")
    log = (project.reports / ".eil" / "scheduler.log").read_text(encoding="utf-8")
    for text in (output, log):
        assert "invalid pipeline file (not scheduled):" in text
        assert (
            'pipelines/bad.toml: schedule.every: invalid duration "3000000d": must be at most 366d'
        ) in text
        assert "pipelines/zone.toml: schedule.timezone: unknown time zone" in text
        assert "the name has 300 characters, at most 64" in text
    assert "Traceback" not in output and "internal error" not in output
    assert {row[0] for row in ledger_query(project.reports, "SELECT pipeline FROM runs")} == {
        "ticker"
    }
