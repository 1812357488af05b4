"""``eil-run status``: the same facts as the page, and exit codes a health check can use.

The ledger is written with an injected clock; the report is read at a chosen
"now" (``status_report(now=...)``) or, through the command, at the machine's
time against beats stamped relative to it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from eil_pipelines.app import ledger_path
from eil_pipelines.app.status import status_report
from eil_pipelines.cli import main
from eil_pipelines.ledger import Ledger

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)

DAILY = """
title = "Daily"
[schedule]
cron = "0 7 * * *"
timezone = "Europe/Berlin"
[queries.q]
sql = "SELECT 1 AS x"
"""


def _beat(ledger: Ledger, *, stopped: bool = False, node: str = "runner", pid: int = 1) -> None:
    ledger.beat(
        node,
        host="h",
        pid=pid,
        version="1.0",
        started_at=NOW - timedelta(hours=1),
        running=0,
        last_error=None,
        stopped=stopped,
    )


def _fail(ledger: Ledger, times: int, start: datetime) -> None:
    for i in range(times):
        at = start + timedelta(days=i)
        ledger.claim("daily", at, run_id=f"r{i}", now=at)
        ledger.finish("daily", at, status="failed", now=at, error="boom")


@pytest.fixture
def daily(project):
    project.pipeline("daily", DAILY)
    project.reports.mkdir()
    return project


def test_a_fresh_heartbeat_is_healthy_and_a_stale_one_is_not(daily) -> None:
    with Ledger(ledger_path(daily.reports), clock=lambda: NOW) as ledger:
        _beat(ledger)
    fresh = status_report(daily.pipelines, daily.reports, now=NOW + timedelta(seconds=59))
    assert fresh["health"] == {"ok": True, "problems": []}
    stale = status_report(daily.pipelines, daily.reports, now=NOW + timedelta(seconds=61))
    assert stale["health"]["ok"] is False
    assert stale["health"]["problems"] == [
        "the scheduler's last heartbeat (runner, 2026-12-07T06:00:00+00:00) is 61 s old, "
        "more than 60 s"
    ]
    longer = status_report(
        daily.pipelines, daily.reports, now=NOW + timedelta(seconds=61), max_age=timedelta(hours=1)
    )
    assert longer["health"]["ok"] is True


def test_a_goodbye_and_no_heartbeat_are_unhealthy(daily) -> None:
    never = status_report(daily.pipelines, daily.reports, now=NOW)
    assert never["scheduler"] is None
    assert never["health"]["problems"] == ["no scheduler has ever beaten into the run ledger"]
    with Ledger(ledger_path(daily.reports), clock=lambda: NOW) as ledger:
        _beat(ledger, stopped=True)
    stopped = status_report(daily.pipelines, daily.reports, now=NOW)
    assert stopped["health"]["problems"] == [
        "the scheduler runner stopped at 2026-12-07T06:00:00+00:00"
    ]


def test_a_goodbye_beside_a_live_runner_is_healthy(daily) -> None:
    """Several runners (``--processes``): one that stopped, newer than the live one's
    last beat, does not fail the check while the other still beats."""
    with Ledger(ledger_path(daily.reports), clock=lambda: NOW) as ledger:
        _beat(ledger, node="alive", pid=2)
    with Ledger(ledger_path(daily.reports), clock=lambda: NOW + timedelta(seconds=3)) as ledger:
        _beat(ledger, stopped=True)
    report = status_report(daily.pipelines, daily.reports, now=NOW + timedelta(seconds=4))
    assert report["nodes"][0]["node"] == "runner"  # the goodbye is the newest beat
    assert report["scheduler"]["node"] == "alive"
    assert report["health"] == {"ok": True, "problems": []}
    # Once the live one is too old as well, the newest beat (the goodbye) is reported.
    late = status_report(daily.pipelines, daily.reports, now=NOW + timedelta(seconds=120))
    assert late["health"]["problems"] == [
        "the scheduler runner stopped at 2026-12-07T06:00:03+00:00"
    ]


def test_failures_in_a_row_beyond_the_limit_are_unhealthy(daily) -> None:
    with Ledger(ledger_path(daily.reports), clock=lambda: NOW) as ledger:
        _beat(ledger)
        _fail(ledger, 3, NOW - timedelta(days=10))
    at_limit = status_report(daily.pipelines, daily.reports, now=NOW, max_failures=3)
    assert at_limit["health"]["ok"] is True
    over = status_report(daily.pipelines, daily.reports, now=NOW, max_failures=2)
    assert over["health"]["problems"] == ["daily failed 3 times in a row (more than 2)"]


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["status", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_exits_0_when_healthy_and_1_when_not(daily, capsys) -> None:
    real_now = datetime.now(UTC)
    with Ledger(ledger_path(daily.reports), clock=lambda: real_now) as ledger:
        _beat(ledger)
    code, out, _ = _run(capsys, str(daily.pipelines))
    assert code == 0, out
    assert out.startswith("scheduler: alive, last beat ")
    assert "PIPELINE" in out and "daily" in out and "never run" in out
    assert out.rstrip().endswith("health:    ok")

    old = real_now - timedelta(minutes=10)
    with Ledger(ledger_path(daily.reports), clock=lambda: old) as ledger:
        _beat(ledger)
    code, out, _ = _run(capsys, str(daily.pipelines), "--max-age", "60s")
    assert code == 1
    assert "health:    UNHEALTHY" in out
    assert "more than 60 s" in out
    code, out, _ = _run(capsys, str(daily.pipelines), "--max-age", "1h")
    assert code == 0


def test_the_json_format_is_the_documented_document(daily, capsys) -> None:
    with Ledger(ledger_path(daily.reports), clock=lambda: datetime.now(UTC)) as ledger:
        _beat(ledger)
        _fail(ledger, 2, NOW - timedelta(days=5))
    code, out, _ = _run(capsys, str(daily.pipelines), "--format", "json", "--max-failures", "1")
    report = json.loads(out)
    assert code == 1
    assert set(report) == {
        "format",
        "generated_at",
        "ledger_error",
        "scheduler",
        "nodes",
        "pipelines",
        "invalid",
        "health",
    }
    (row,) = report["pipelines"]
    assert set(row) == {
        "pipeline",
        "file",
        "title",
        "enabled",
        "schedule",
        "timezone",
        "next",
        "last",
        "running",
        "waiting",
        "after",
        "before",
        "failures_in_a_row",
        "requested",
    }
    assert row["failures_in_a_row"] == 2
    assert row["last"]["error"] == "boom"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-age", "soon"], 'eil-run status: --max-age: invalid duration "soon"'),
        (["--max-failures", "-1"], "eil-run status: --max-failures must be 0 or more"),
    ],
)
def test_bad_options_exit_2_with_a_message(daily, capsys, args, message) -> None:
    code, _, err = _run(capsys, str(daily.pipelines), *args)
    assert code == 2
    assert err.startswith(message)


def test_the_run_token_comes_only_from_the_environment(project) -> None:
    from eil_pipelines.errors import ConfigError
    from eil_pipelines.spec.project import load_project_settings

    project.write("eil.toml", '[serve]\nrun_token = "plain-secret"\n')
    with pytest.raises(ConfigError) as caught:
        load_project_settings(project.root, env={})
    text = str(caught.value)
    assert 'serve.run_token: write the token as "${ENV_VAR}" and set that variable' in text
    assert "plain-secret" not in text
    project.write("eil.toml", '[serve]\nrun_token = "${EIL_RUN_TOKEN}"\n')
    settings = load_project_settings(project.root, env={"EIL_RUN_TOKEN": "t0ken"})
    assert settings.serve.run_token == "t0ken"
    assert "t0ken" in settings.secrets()  # redacted wherever secrets are
