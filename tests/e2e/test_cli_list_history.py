"""``eil-run list`` and ``eil-run history`` as a user runs them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clirun import eil

from eil_pipelines.app import ledger_path
from eil_pipelines.ledger import Ledger

SALES = """
title = "Sales"
[schedule]
daily = "07:00"
timezone = "Europe/Berlin"
[queries.q]
sql = "SELECT 1 AS x"
"""

COSTS = """
title = "Costs"
enabled = false
[schedule]
cron = "30 6 * * MON-FRI"
timezone = "America/New_York"
[queries.q]
sql = "SELECT 1 AS x"
"""

ADHOC = """
title = "Ad hoc"
[queries.q]
sql = "SELECT 1 AS x"
"""


@pytest.fixture
def listed(project):
    project.pipeline("sales", SALES)
    project.pipeline("costs", COSTS)
    project.pipeline("adhoc", ADHOC)
    return project


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def record_history(reports: Path) -> None:
    """Four sales runs and two costs runs, as the scheduler would leave them."""
    with Ledger(ledger_path(reports)) as ledger:

        def run(pipeline, when, status, *, error=None, attempt=1, files=()):
            ledger.claim(pipeline, when, run_id=f"{pipeline}-{when:%d}", now=when)
            if attempt > 1:
                ledger.finish(pipeline, when, status="failed", now=when, error="first try")
                ledger.reclaim(
                    pipeline, when, run_id=f"{pipeline}-{when:%d}", attempt=attempt, now=when
                )
            ledger.finish(
                pipeline,
                when,
                status=status,
                now=when + timedelta(seconds=2.5),
                error=error,
                files=files,
            )

        run("sales", utc(24, 6), "succeeded", files=["reports/sales/2026-11-24.md"])
        run("sales", utc(25, 6), "failed", error='query "q": Binder Error: nope')
        run("sales", utc(26, 6), "succeeded", attempt=2, files=["reports/sales/2026-11-26.md"])
        ledger.claim("sales", utc(27, 6), run_id="sales-27", now=utc(27, 6))
        ledger.finish(
            "sales", utc(27, 6), status="timed_out", now=utc(27, 6, 1), error="stopped after 1m"
        )
        ledger.record_skipped(
            "costs", utc(25, 11), reason="missed (catch_up = latest)", now=utc(26, 11)
        )
        run("costs", utc(26, 11), "succeeded")


# -- list -------------------------------------------------------------------------------


def test_list_text(listed):
    result = eil("list", "pipelines", cwd=listed.root)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:6] == [
        "adhoc: Ad hoc",
        "  schedule: on demand only",
        "  last run: never run",
        "costs (disabled): Costs",
        "  schedule: weekdays at 06:30 America/New_York",
        "  last run: never run",
    ]
    assert lines[6:8] == ["sales: Sales", "  schedule: every day at 07:00 Europe/Berlin"]
    nexts = lines[8:11]
    assert lines[11:] == ["  last run: never run"]
    now = datetime.now(UTC)
    previous = now
    for line in nexts:  # the default is three fire times
        match = re.fullmatch(r"  next:     (\S+)  \((\S+) UTC\)", line)
        assert match, line
        local, in_utc = (datetime.fromisoformat(t) for t in match.groups())
        assert local.strftime("%H:%M") == "07:00"
        assert local.utcoffset() in (timedelta(hours=1), timedelta(hours=2))
        assert in_utc.utcoffset() == timedelta(0)
        assert local == in_utc
        assert previous < local <= previous + timedelta(days=1)
        previous = local


def test_list_json_next_count_and_last_status(listed):
    record_history(listed.reports)
    result = eil("list", "pipelines", "--format", "json", "--next", "5", cwd=listed.root)
    assert result.returncode == 0, result.stderr
    rows = {row["pipeline"]: row for row in json.loads(result.stdout)}
    assert list(rows) == ["adhoc", "costs", "sales"]
    sales = rows["sales"]
    assert set(sales) == {
        "pipeline",
        "file",
        "problems",
        "title",
        "enabled",
        "schedule",
        "timezone",
        "next",
        "last_status",
        "last_scheduled_at",
        "last_adhoc",
    }
    assert (sales["title"], sales["enabled"], sales["timezone"]) == ("Sales", True, "Europe/Berlin")
    assert sales["schedule"] == "every day at 07:00 Europe/Berlin"
    assert len(sales["next"]) == 5
    for fire in sales["next"]:
        local = datetime.fromisoformat(fire["local"])
        assert local.tzinfo is not None and local.strftime("%H:%M") == "07:00"
        assert fire["utc"].endswith("+00:00")
        assert datetime.fromisoformat(fire["utc"]) == local
    assert (sales["last_status"], sales["last_scheduled_at"]) == (
        "timed_out",
        "2026-11-27T06:00:00+00:00",
    )
    costs = rows["costs"]
    assert (costs["enabled"], costs["next"]) == (False, [])
    assert costs["schedule"] == "weekdays at 06:30 America/New_York"
    assert costs["last_status"] == "succeeded"
    adhoc = rows["adhoc"]
    assert (adhoc["schedule"], adhoc["next"], adhoc["last_status"]) == (
        "on demand only",
        [],
        None,
    )

    text = eil("list", "pipelines", "--next", "1", cwd=listed.root).stdout
    # In the pipeline's zone; --utc on request.
    assert "  last run: timed_out (scheduled 2026-11-27T07:00:00+01:00)" in text
    assert text.count("  next:") == 1
    text = eil("list", "pipelines", "--next", "1", "--utc", cwd=listed.root).stdout
    assert "  last run: timed_out (scheduled 2026-11-27T06:00:00+00:00)" in text


def test_list_rejects_bad_next(listed):
    result = eil("list", "pipelines", "--next", "0", cwd=listed.root)
    assert result.returncode == 2
    assert result.stderr.strip() == "eil-run list: --next must be at least 1"
    assert result.stdout == ""


# -- history --------------------------------------------------------------------------


def test_history_text_newest_first(listed):
    record_history(listed.reports)
    result = eil("history", "pipelines", cwd=listed.root)
    assert result.returncode == 0, result.stderr
    # A table with a header; times in each pipeline's zone (sales: Berlin, costs: New York).
    assert result.stdout.splitlines() == [
        "SCHEDULED                  PIPELINE  STATUS     ATTEMPT  DURATION",
        "2026-11-27T07:00:00+01:00  sales     timed_out  1        60.00s",
        "    stopped after 1m",
        "2026-11-26T06:00:00-05:00  costs     succeeded  1        2.50s",
        "2026-11-26T07:00:00+01:00  sales     succeeded  2        2.50s",
        "2026-11-25T06:00:00-05:00  costs     skipped    0        -",
        "    missed (catch_up = latest)",
        "2026-11-25T07:00:00+01:00  sales     failed     1        2.50s",
        '    query "q": Binder Error: nope',
        "2026-11-24T07:00:00+01:00  sales     succeeded  1        2.50s",
    ]
    in_utc = eil("history", "pipelines", "--utc", "--limit", "1", cwd=listed.root)
    assert in_utc.stdout.splitlines()[:2] == [
        "SCHEDULED (UTC)            PIPELINE  STATUS     ATTEMPT  DURATION",
        "2026-11-27T06:00:00+00:00  sales     timed_out  1        60.00s",
    ]


def test_history_failed_limit_and_single_file(listed):
    record_history(listed.reports)
    failed = eil("history", "pipelines", "--failed", cwd=listed.root)
    assert failed.returncode == 0
    assert [line.split()[2] for line in failed.stdout.splitlines()[1:] if line[0] != " "] == [
        "timed_out",
        "failed",
    ]
    limited = eil("history", "pipelines", "--limit", "2", "--utc", cwd=listed.root)
    assert [line.split()[:2] for line in limited.stdout.splitlines()[1:] if line[0] != " "] == [
        ["2026-11-27T06:00:00+00:00", "sales"],
        ["2026-11-26T11:00:00+00:00", "costs"],
    ]
    one = eil("history", "pipelines/costs.toml", cwd=listed.root)
    assert one.returncode == 0
    runs = [line for line in one.stdout.splitlines()[1:] if line[0] != " "]
    assert {line.split()[1] for line in runs} == {"costs"}
    assert len(runs) == 2
    none_failed = eil("history", "pipelines/costs.toml", "--failed", cwd=listed.root)
    assert none_failed.stdout == "No failed runs among the 2 recorded in the run ledger.\n"


def test_history_json(listed):
    record_history(listed.reports)
    result = eil(
        "history", "pipelines/sales.toml", "--format", "json", "--limit", "3", cwd=listed.root
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["scheduled_at"] for r in rows] == [
        "2026-11-27T06:00:00+00:00",
        "2026-11-26T06:00:00+00:00",
        "2026-11-25T06:00:00+00:00",
    ]
    assert set(rows[0]) == {
        "pipeline",
        "scheduled_at",
        "started_at",
        "finished_at",
        "duration_s",
        "status",
        "attempt",
        "error",
        "files",
        "deliveries",
        "timezone",
    }
    assert rows[1] == {
        "pipeline": "sales",
        "scheduled_at": "2026-11-26T06:00:00+00:00",
        "started_at": "2026-11-26T06:00:00+00:00",
        "finished_at": "2026-11-26T06:00:02.500000+00:00",
        "duration_s": 2.5,
        "status": "succeeded",
        "attempt": 2,
        "error": None,
        "files": ["reports/sales/2026-11-26.md"],
        "deliveries": [],
        "timezone": "Europe/Berlin",
    }
    assert (rows[2]["status"], rows[2]["error"]) == ("failed", 'query "q": Binder Error: nope')
    failed = eil("history", "pipelines", "--format", "json", "--failed", cwd=listed.root)
    assert [(r["pipeline"], r["status"]) for r in json.loads(failed.stdout)] == [
        ("sales", "timed_out"),
        ("sales", "failed"),
    ]


def test_history_reads_the_reports_option(listed, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    record_history(elsewhere)
    default = eil("history", "pipelines", cwd=listed.root)
    assert default.stdout == "No runs recorded yet.\n"
    moved = eil(
        "history", "pipelines", "--reports", str(elsewhere), "--limit", "1", cwd=listed.root
    )
    assert moved.stdout.splitlines()[1].startswith("2026-11-27T07:00:00+01:00  sales     timed_out")


def test_once_runs_are_shown_as_ad_hoc(listed):
    # --once without --deliver keeps no row in the run ledger; history and list say
    # so and show the run the site shows, marked ad hoc, rather than "never run".
    assert eil("--once", "pipelines", "--only", "adhoc", cwd=listed.root).returncode == 0
    assert (listed.reports / "adhoc" / "latest.md").exists()
    text = eil("history", "pipelines", cwd=listed.root)
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[0] == (
        "No runs in the run ledger. Ad-hoc runs (eil-run --once without --deliver) are not "
        "recorded in it; the report site shows these:"
    )
    assert re.fullmatch(r"  adhoc  succeeded  \(ad hoc, scheduled \S+\+00:00\)", lines[1])
    assert len(lines) == 2
    as_json = eil("history", "pipelines", "--format", "json", cwd=listed.root)
    assert json.loads(as_json.stdout) == []
    listing = eil("list", "pipelines", "--format", "json", cwd=listed.root)
    adhoc = {row["pipeline"]: row for row in json.loads(listing.stdout)}["adhoc"]
    assert (adhoc["last_status"], adhoc["last_adhoc"]) == ("succeeded", True)
    listing = eil("list", "pipelines", cwd=listed.root)
    assert "  last run: succeeded (ad hoc, not in the run ledger; scheduled " in listing.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limit", "0"], "eil-run history: --limit must be at least 1"),
        (["--limit", "-3"], "eil-run history: --limit must be at least 1"),
        (["--format", "yaml"], "eil-run history: argument --format: invalid choice: 'yaml'"),
    ],
)
def test_history_bad_arguments_exit_2(listed, args, message):
    result = eil("history", "pipelines", *args, cwd=listed.root)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr


def test_history_of_a_missing_path_exits_2(listed):
    result = eil("history", "nowhere", cwd=listed.root)
    assert result.returncode == 2
    assert result.stderr.strip() == "eil-run: nowhere: no such file or folder"


def _project_with(tmp_path: Path, eil_toml: str) -> Path:
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "sales.toml").write_text(SALES)
    (tmp_path / "eil.toml").write_text(eil_toml)
    return tmp_path


def test_a_variable_only_another_table_names_does_not_stop_the_ledger_readers(tmp_path):
    # list, history and status read only [ledger] of eil.toml: an SMTP password this
    # shell does not set is the scheduler's business, not theirs.
    project = _project_with(
        tmp_path,
        '[smtp]\nhost = "mail.example"\npassword = "${EIL_TEST_UNSET_SMTP}"\n',
    )
    for command in (["list", "pipelines"], ["history", "pipelines"]):
        result = eil(*command, cwd=project)
        assert result.returncode == 0, result.stderr
    status = eil("status", "pipelines", cwd=project)
    assert status.returncode == 1  # unhealthy: no scheduler has beaten, but it ran
    assert "no scheduler has ever beaten" in status.stdout


@pytest.mark.parametrize(
    ("ledger", "message"),
    [
        (
            'url = "postgresql://eil:${EIL_TEST_UNSET_LEDGER}@db.internal/eil"',
            'eil.toml: ledger.url: environment variable "EIL_TEST_UNSET_LEDGER" is not set',
        ),
        (
            'url = "postgresql://eil:hunter2-literal@db.internal/eil"',
            'eil.toml: ledger.url: write the password as "${ENV_VAR}"',
        ),
        ('url = "mysql://db.internal/eil"', "eil.toml: ledger.url: expected a postgresql://"),
        ('lease = "half a minute"', "eil.toml: ledger.lease:"),
    ],
)
def test_the_ledger_readers_name_a_bad_ledger_table(tmp_path, ledger, message):
    project = _project_with(tmp_path, f"[ledger]\n{ledger}\n")
    for command in ("list", "history", "status"):
        result = eil(command, "pipelines", cwd=project)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert message in result.stderr, (command, result.stderr)
        assert "hunter2" not in result.stdout + result.stderr
        assert "Traceback" not in result.stderr


def test_a_reports_folder_given_as_path_is_named_as_one(tmp_path):
    project = _project_with(tmp_path, "")
    (project / "reports" / ".eil").mkdir(parents=True)
    for command in ("status", "list", "validate"):
        result = eil(command, "reports", cwd=project)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert result.stderr.strip() == (
            "eil-run: reports: no pipeline files (*.toml) in this folder; it is a reports "
            "folder: give the pipelines folder, and this one with --reports"
        ), (command, result.stderr)
    (project / "empty").mkdir()
    plain = eil("list", "empty", cwd=project)
    assert plain.stderr.strip() == "eil-run: empty: no pipeline files (*.toml) in this folder"
