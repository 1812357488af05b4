"""Issue 14, item 4: ``--log-format json`` (JSON lines on stderr, for journald and
containers), ``--log-file`` (or none), and no secret in any log line."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import time
from pathlib import Path

import pytest
from deploykit import BIN, tool_env

from eil_pipelines.cli import logs

EVERY_SECOND = """
title = "Ticker"
[schedule]
every = "1s"
timezone = "UTC"
[queries.q]
sql = "SELECT 1 AS x"
"""

#: A recognisable secret: it must never appear in a log line or file.
MARKER = "Zq8-LOG-SECRET-pw"

WAREHOUSE = """
[connections.warehouse]
url = "postgresql://reader:${EIL_TEST_LOG_PASSWORD}@127.0.0.1:1/analytics"
"""

FROM_WAREHOUSE = """
title = "Broken"
source = "warehouse"
[schedule]
every = "1s"
timezone = "UTC"
[queries.q]
sql = "SELECT 1 AS x"
"""


def json_lines(text: str) -> list[dict]:
    """Every line of ``text`` as JSON; a line that is not JSON fails the test."""
    rows = []
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}\nin:\n{text}")
    return rows


class Scheduler:
    """``eil-run PATH ARGS`` in its own process, stderr to a file."""

    def __init__(self, root: Path, *args: str, env: dict[str, str] | None = None):
        self.err_path = root / "stderr.txt"
        self._err = self.err_path.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [str(BIN / "eil-run"), "pipelines", *args],
            cwd=root,
            env=env or tool_env(),
            stdout=subprocess.DEVNULL,
            stderr=self._err,
            stdin=subprocess.DEVNULL,
        )

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(encoding="utf-8")

    def wait_for(self, predicate, timeout: float = 90.0) -> bool:
        """Poll the stderr text until ``predicate`` holds (the deadline means failure)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.stderr):
                return True
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        return bool(predicate(self.stderr))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._err.close()


def test_the_scheduler_logs_json_lines_to_stderr_and_no_file(project):
    project.pipeline("ticker", EVERY_SECOND)
    scheduler = Scheduler(project.root, "--log-format", "json", "--log-file", "none")
    try:
        assert scheduler.wait_for(lambda text: '"finished: ticker' in text), scheduler.stderr
    finally:
        assert scheduler.stop() == 0
    rows = json_lines(scheduler.stderr)
    assert all({"ts", "level", "logger", "message"} <= set(row) for row in rows)
    assert all(row["ts"].endswith("Z") and len(row["ts"]) == 24 for row in rows), rows[0]
    finished = next(row for row in rows if row["message"].startswith("finished: ticker"))
    assert finished["level"] == "INFO"
    assert finished["logger"] == "eil_pipelines.scheduler"
    assert finished["pipeline"] == "ticker"
    assert finished["status"] == "succeeded"
    assert finished["attempt"] == 1
    assert finished["run_id"]
    assert finished["scheduled_at"] in finished["message"]
    started = next(row for row in rows if row["message"].startswith("started: ticker"))
    assert started["run_id"] == finished["run_id"] and "status" not in started
    assert rows[-1]["message"] == "stopped"
    assert not (project.reports / ".eil" / "scheduler.log").exists()


def test_log_file_moves_the_log_and_takes_the_format(project):
    project.pipeline("ticker", EVERY_SECOND)
    log_file = project.root / "logs" / "eil.log"
    scheduler = Scheduler(project.root, "--log-format", "json", "--log-file", "logs/eil.log")
    try:
        assert scheduler.wait_for(lambda text: '"finished: ticker' in text), scheduler.stderr
    finally:
        assert scheduler.stop() == 0
    rows = json_lines(log_file.read_text(encoding="utf-8"))
    assert any(row.get("pipeline") == "ticker" for row in rows)
    assert rows[-1]["message"] == "stopped"
    assert not (project.reports / ".eil" / "scheduler.log").exists()


def test_the_default_log_stays_text_under_reports_eil(project):
    project.pipeline("ticker", EVERY_SECOND)
    scheduler = Scheduler(project.root)
    try:
        assert scheduler.wait_for(lambda text: "finished: ticker" in text), scheduler.stderr
    finally:
        assert scheduler.stop() == 0
    log = (project.reports / ".eil" / "scheduler.log").read_text(encoding="utf-8")
    assert " INFO started: ticker at " in log
    assert not log.lstrip().startswith("{")


def test_a_secret_in_a_failing_connection_never_reaches_the_log(project):
    pytest.importorskip("psycopg", reason="the postgres extra (in the test extra)")
    project.write("eil.toml", WAREHOUSE)
    project.pipeline("broken", FROM_WAREHOUSE)
    env = tool_env(EIL_TEST_LOG_PASSWORD=MARKER)
    scheduler = Scheduler(project.root, "--log-format", "json", "--log-file", "eil.log", env=env)
    try:
        assert scheduler.wait_for(lambda text: '"failed: broken' in text), scheduler.stderr
    finally:
        assert scheduler.stop() == 0
    failed = next(r for r in json_lines(scheduler.stderr) if r["message"].startswith("failed"))
    assert failed["pipeline"] == "broken" and failed["status"] == "failed"
    assert MARKER not in scheduler.stderr
    assert MARKER not in (project.root / "eil.log").read_text(encoding="utf-8")


def test_the_redact_filter_replaces_secrets_in_message_args_and_tracebacks():
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Keep()
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.RedactFilter([MARKER, ""]))
    logger = logging.getLogger("eil_pipelines.test_redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.error("cannot connect to %s", f"postgresql://u:{MARKER}@db/x")
        try:
            raise ValueError(f"password {MARKER} refused")
        except ValueError:
            logger.exception("query failed", extra={"pipeline": "sales"})
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in records)
    assert first["message"] == "cannot connect to postgresql://u:[redacted]@db/x"
    assert second["pipeline"] == "sales"
    assert "ValueError: password [redacted] refused" in second["exc"]
    assert all(MARKER not in line for line in records)


def test_once_logs_json_lines_too(project):
    project.pipeline("ticker", EVERY_SECOND)
    (project.reports / "index.html").mkdir(parents=True)  # the site cannot be written: a warning
    result = subprocess.run(
        [str(BIN / "eil-run"), "--once", "pipelines", "--log-format", "json"],
        cwd=project.root,
        env=tool_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (row,) = json_lines(result.stderr)
    assert row["level"] == "WARNING" and row["logger"] == "eil_pipelines.run"
    assert row["message"].startswith("could not update the report site in ")


def test_log_file_for():
    reports = Path("/srv/eil/reports")
    default = Path(".eil") / "scheduler.log"
    assert logs.log_file_for(None, reports, default) == reports / default
    assert logs.log_file_for("none", reports, default) is None
    assert logs.log_file_for("NONE", reports, default) is None
    assert logs.log_file_for("/var/log/eil.log", reports, default) == Path("/var/log/eil.log")
