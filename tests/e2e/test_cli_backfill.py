"""``eil-run backfill``: past fire times run as if scheduled then, recorded in the ledger.

Runs as a user runs it (a subprocess on a temporary project) except where a
test needs the ledger from inside: it is opened directly, as the scheduler
would leave it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from clirun import eil

from eil_pipelines.app import ledger_path
from eil_pipelines.app.backfill import Outcome, lease_name
from eil_pipelines.cli import main
from eil_pipelines.cli.progress import Progress
from eil_pipelines.ledger import Ledger

DAILY = """
title = "Sales"
[schedule]
daily = "07:00"
timezone = "Europe/Berlin"
period = "day"
[queries.kpis]
sql = "SELECT coalesce(sum(v), 0) AS v FROM 'data/s.csv' WHERE d >= $period_start AND d < $period_end"
[[metrics]]
label = "Sales"
query = "kpis"
column = "v"
[report]
formats = ["md"]
"""

CSV = "d,v\n2025-03-01,10\n2025-03-02,12\n2025-03-03,15\n2025-03-04,20\n"


def rows(project) -> list[tuple[str, str, int]]:
    """(scheduled at UTC, status, attempt) of every ledger row, oldest first."""
    with Ledger(ledger_path(project.reports)) as ledger:
        found = ledger.history(limit=None)
    return sorted((r.scheduled_at.isoformat(), r.status, r.attempt) for r in found)


@pytest.fixture
def sales(project):
    project.write("data/s.csv", CSV)
    project.pipeline("sales", DAILY)
    return project


def test_each_fire_time_runs_as_if_scheduled_then(sales):
    result = eil(
        "backfill",
        "pipelines/sales.toml",
        "--from",
        "2025-03-02",
        "--to",
        "2025-03-04",
        cwd=sales.root,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == (
        "Backfill of sales (every day at 07:00 Europe/Berlin): 3 fire times from "
        "2025-03-02 07:00 +01:00 to 2025-03-04 07:00 +01:00; 3 to run, 0 skipped.\n"
        "\n3 succeeded, 0 failed.\n"
    )
    # Not a terminal: one line per run, oldest first.
    assert [line.split(" succeeded")[0] for line in result.stderr.splitlines()] == [
        "[1/3] 2025-03-02 07:00 +01:00",
        "[2/3] 2025-03-03 07:00 +01:00",
        "[3/3] 2025-03-04 07:00 +01:00",
    ]
    folder = sales.reports / "sales"
    # period = "day": the run at 07:00 on the 3rd reports on the 2nd, and is dated the 3rd.
    assert "12" in (folder / "2025-03-03.md").read_text()
    assert "15" in (folder / "2025-03-04.md").read_text()
    assert rows(sales) == [
        ("2025-03-02T06:00:00+00:00", "succeeded", 1),
        ("2025-03-03T06:00:00+00:00", "succeeded", 1),
        ("2025-03-04T06:00:00+00:00", "succeeded", 1),
    ]


def test_succeeded_times_are_skipped_unless_reprocessed(sales, capsys, monkeypatch):
    monkeypatch.chdir(sales.root)
    args = ["backfill", "pipelines/sales.toml", "--from", "2025-03-02", "--to", "2025-03-03"]
    assert main(args) == 0
    capsys.readouterr()
    report = sales.reports / "sales" / "2025-03-03.md"
    before = report.stat().st_mtime_ns
    assert main(args) == 0
    assert capsys.readouterr().out.endswith(
        "; 0 to run, 2 skipped.\n\n0 succeeded, 0 failed, 2 skipped.\n"
    )
    assert report.stat().st_mtime_ns == before
    assert main([*args, "--reprocess", "all"]) == 0
    assert "; 2 to run, 0 skipped." in capsys.readouterr().out
    assert rows(sales) == [
        ("2025-03-02T06:00:00+00:00", "succeeded", 2),
        ("2025-03-03T06:00:00+00:00", "succeeded", 2),
    ]


def record(project, when: datetime, status: str) -> None:
    """Leave a finished (or skipped) row in the ledger, as the scheduler would."""
    with Ledger(ledger_path(project.reports)) as ledger:
        if status == "skipped":
            ledger.record_skipped("sales", when, reason="catch_up = latest", now=when)
            return
        ledger.claim("sales", when, run_id="earlier", now=when)
        ledger.finish("sales", when, status=status, now=when, error="earlier failure")


def test_dry_run_lists_what_would_run_and_records_nothing(sales, capsys, monkeypatch):
    monkeypatch.chdir(sales.root)
    record(sales, datetime(2025, 3, 2, 6, tzinfo=UTC), "succeeded")
    record(sales, datetime(2025, 3, 3, 6, tzinfo=UTC), "failed")
    record(sales, datetime(2025, 3, 4, 6, tzinfo=UTC), "skipped")
    args = ["backfill", "pipelines/sales.toml", "--from", "2025-03-01", "--to", "2025-03-04"]
    assert main([*args, "--dry-run"]) == 0
    assert capsys.readouterr().out == (
        "Backfill of sales (every day at 07:00 Europe/Berlin): 4 fire times:\n"
        "  2025-03-01 07:00 +01:00  run\n"
        "  2025-03-02 07:00 +01:00  skip: already succeeded (--reprocess all runs it again)\n"
        "  2025-03-03 07:00 +01:00  skip: failed before (--reprocess failed runs it again)\n"
        "  2025-03-04 07:00 +01:00  run again (was skipped)\n"
        "\nWould run 2, skip 2.  (Dry run: nothing was run.)\n"
    )
    assert main([*args, "--dry-run", "--reprocess", "failed"]) == 0
    assert "  2025-03-03 07:00 +01:00  run again (was failed)\n" in capsys.readouterr().out
    assert not (sales.reports / "sales").exists()
    assert [r[1] for r in rows(sales)] == ["succeeded", "failed", "skipped"]


def test_reprocess_failed_runs_failed_times_again(sales, capsys, monkeypatch):
    monkeypatch.chdir(sales.root)
    record(sales, datetime(2025, 3, 3, 6, tzinfo=UTC), "failed")
    args = ["backfill", "pipelines/sales.toml", "--from", "2025-03-03", "--to", "2025-03-03"]
    assert main(args) == 0
    assert rows(sales) == [("2025-03-03T06:00:00+00:00", "failed", 1)]
    assert main([*args, "--reprocess", "failed"]) == 0
    assert rows(sales) == [("2025-03-03T06:00:00+00:00", "succeeded", 2)]


def test_a_failing_run_is_recorded_and_exits_1(sales, capsys, monkeypatch):
    monkeypatch.chdir(sales.root)
    sales.pipeline("sales", DAILY.replace("sum(v)", "sum(nope)"))
    assert (
        main(["backfill", "pipelines/sales.toml", "--from", "2025-03-02", "--to", "2025-03-02"])
        == 1
    )
    out = capsys.readouterr().out
    assert "0 succeeded, 1 failed." in out
    assert '  failed: 2025-03-02 07:00 +01:00: pipeline "sales", query "kpis": Binder Error' in out
    assert rows(sales) == [("2025-03-02T06:00:00+00:00", "failed", 1)]


def test_runs_in_parallel_with_workers(sales, capsys, monkeypatch):
    monkeypatch.chdir(sales.root)
    args = ["backfill", "pipelines/sales.toml", "--from", "2025-03-01", "--to", "2025-03-06"]
    assert main([*args, "--workers", "3"]) == 0
    assert "6 succeeded, 0 failed." in capsys.readouterr().out
    assert len(rows(sales)) == 6


def test_latest_keeps_the_newest_report(sales, capsys, monkeypatch):
    monkeypatch.chdir(sales.root)
    assert main(["--once", "pipelines", "--at", "2025-06-01T07:00"]) == 0
    latest = sales.reports / "sales" / "latest.md"
    newest = latest.read_text()
    assert (
        main(["backfill", "pipelines/sales.toml", "--from", "2025-03-01", "--to", "2025-03-03"])
        == 0
    )
    assert latest.read_text() == newest == (sales.reports / "sales" / "2025-06-01.md").read_text()


def test_a_second_backfill_of_the_same_pipeline_is_refused(sales):
    # This test process holds the lease, as a backfill running elsewhere would.
    with Ledger(ledger_path(sales.reports)) as ledger:
        assert (
            ledger.acquire_lease(
                lease_name("sales"), holder="eil-run backfill (test)", now=datetime.now(UTC)
            )
            is None
        )
        result = eil(
            "backfill",
            "pipelines/sales.toml",
            "--from",
            "2025-03-01",
            "--to",
            "2025-03-02",
            cwd=sales.root,
        )
        assert result.returncode == 3  # could not run: another process holds the lease
        assert result.stderr.startswith(
            'eil-run backfill: another backfill of "sales" is running: eil-run backfill (test) '
            f"(pid {os.getpid()} on "
        )
        assert result.stderr.rstrip().endswith(
            "; wait for it to finish (one backfill per pipeline at a time)"
        )
        ledger.release_lease(lease_name("sales"))
    assert rows(sales) == []


def test_from_after_to_exits_2(sales, capsys, monkeypatch):
    monkeypatch.chdir(sales.root)
    assert (
        main(["backfill", "pipelines/sales.toml", "--from", "2025-03-05", "--to", "2025-03-01"])
        == 2
    )
    assert (
        capsys.readouterr().err == "eil-run backfill: --from 2025-03-05 is after --to 2025-03-01\n"
    )


def test_a_range_with_no_fire_times_says_so_and_exits_0(sales, capsys, monkeypatch):
    monkeypatch.chdir(sales.root)
    sales.pipeline("weekly", DAILY.replace('daily = "07:00"', 'daily = "07:00"\ndays = ["mon"]'))
    # Tuesday 4 March to Sunday 9 March 2025: no Monday.
    assert (
        main(["backfill", "pipelines/weekly.toml", "--from", "2025-03-04", "--to", "2025-03-09"])
        == 0
    )
    assert capsys.readouterr().out == (
        "No fire times of weekly (on Mon at 07:00 Europe/Berlin) from 2025-03-04 to 2025-03-09: "
        "nothing to backfill.\n"
    )
    assert not sales.reports.exists()


def test_to_a_time_is_inclusive_and_a_date_means_the_whole_day(sales, capsys, monkeypatch):
    monkeypatch.chdir(sales.root)
    args = ["backfill", "pipelines/sales.toml", "--from", "2025-03-02T07:00", "--dry-run"]
    assert main([*args, "--to", "2025-03-03T07:00"]) == 0
    assert "2 fire times" in capsys.readouterr().out
    assert main([*args, "--to", "2025-03-03T06:59"]) == 0
    assert "1 fire times" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("file", "message"),
    [
        ("pipelines/nope.toml", "eil-run backfill: pipelines/nope.toml: no such pipeline file"),
        (
            "pipelines/adhoc.toml",
            "eil-run backfill: pipelines/adhoc.toml has no [schedule], so it has no fire times to "
            "backfill; render one past report with: eil-run --once --only adhoc --at DATETIME pipelines",
        ),
    ],
)
def test_unknown_or_unscheduled_pipeline_exits_2(sales, capsys, monkeypatch, file, message):
    monkeypatch.chdir(sales.root)
    sales.pipeline("adhoc", 'title = "Ad hoc"\n[queries.q]\nsql = "SELECT 1 AS x"\n')
    assert main(["backfill", file, "--from", "2025-03-01", "--to", "2025-03-02"]) == 2
    assert capsys.readouterr().err == message + "\n"


def test_fire_times_after_now_are_left_to_the_scheduler(sales, capsys, monkeypatch):
    monkeypatch.chdir(sales.root)
    assert (
        main(["backfill", "pipelines/sales.toml", "--from", "2999-01-01", "--to", "2999-01-02"])
        == 0
    )
    assert capsys.readouterr().out == (
        "No fire times of sales (every day at 07:00 Europe/Berlin) from 2999-01-01 to 2999-01-02 "
        "(fire times after now are left to the scheduler): nothing to backfill.\n"
    )


HOURLY = DAILY.replace('daily = "07:00"', 'every = "1h"').replace(
    'period = "day"', 'period = "interval"'
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_stops_after_the_current_run_and_says_how_to_resume(sales):
    sales.pipeline("sales", HOURLY)
    # Six hourly fire times; each run takes far longer than sending a signal.
    args = ["backfill", "pipelines/sales.toml", "--from", "2025-03-01", "--to", "2025-03-01T05:00"]
    child = subprocess.Popen(
        [sys.executable, "-m", "eil_pipelines", *args],
        cwd=sales.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    assert child.stderr is not None
    first = child.stderr.readline()  # the first run has finished: interrupt the second
    assert first.startswith("[1/6] 2025-03-01 00:00 +01:00 succeeded"), first
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, out + err
    assert "Stopping after the runs in flight (Ctrl-C again to quit at once)..." in err
    done = rows(sales)
    assert 1 <= len(done) < 6
    assert {status for _, status, _ in done} == {"succeeded"}  # nothing left "running"
    assert f"Interrupted: {6 - len(done)} of 6 runs did not start.  Resume with:" in out
    # The command carries on from the first fire time that did not run.
    first_left = datetime.fromisoformat(done[-1][0]) + timedelta(hours=1)
    resume = out.splitlines()[-1].strip()
    assert resume == (
        "eil-run backfill pipelines/sales.toml --from "
        f"{first_left.astimezone(ZoneInfo('Europe/Berlin')).isoformat()} --to 2025-03-01T05:00"
    )
    again = eil(*resume.split()[1:], cwd=sales.root)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"; {6 - len(done)} to run, 0 skipped." in again.stdout
    assert [status for _, status, _ in rows(sales)] == ["succeeded"] * 6


def test_progress_bar_on_a_terminal():
    import io

    ticks = iter([0.0, 2.0, 4.0])
    out = io.StringIO()
    progress = Progress(4, out, str, tty=True, clock=lambda: next(ticks))
    moment = datetime(2025, 3, 1, tzinfo=UTC)
    progress.done(Outcome(moment, "succeeded", duration=1.0))  # at 2 s: 0.5 runs/s
    progress.done(Outcome(moment, "failed", "boom", duration=1.0))  # at 4 s
    progress.close()
    assert out.getvalue() == (
        "\r\x1b[K1/4 [######..................] 0.5 runs/s, 0:00:06 left"
        f"\r\x1b[K[2/4] {moment} failed in 1.00s: boom\n"
        "\r\x1b[K2/4 [############............] 0.5 runs/s, 0:00:04 left"
        "\n"
    )


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_a_terminal_gets_a_progress_bar(sales):
    import pty

    leader, follower = pty.openpty()
    try:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "eil_pipelines",
                "backfill",
                "pipelines/sales.toml",
                "--from",
                "2025-03-01",
                "--to",
                "2025-03-02",
            ],
            cwd=sales.root,
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            env=dict(os.environ),
        )
        os.close(follower)
        screen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            screen += chunk
        child.wait(timeout=60)
    finally:
        os.close(leader)
    assert child.returncode == 0
    text = screen.decode()
    assert "\r\x1b[K1/2 [############............] " in text
    assert "\r\x1b[K2/2 [########################] " in text and " left" in text
    assert "[1/2]" not in text  # no log lines on a terminal


def test_param_changes_a_value_for_every_run_and_a_wrong_one_exits_2(project):
    project.write("data/s.csv", CSV)
    project.pipeline(
        "sales",
        DAILY.replace("[queries.kpis]", "[params]\nfactor = 1\n[queries.kpis]").replace(
            "coalesce(sum(v), 0) AS v", "coalesce(sum(v), 0) * $factor AS v"
        ),
    )
    args = ["backfill", "pipelines/sales.toml", "--from", "2025-03-03", "--to", "2025-03-04"]
    bad = eil(*args, "--param", "factor=ten", cwd=project.root)
    assert bad.returncode == 2
    assert 'params.factor: --param factor="ten": expected a whole number' in bad.stderr
    assert not (project.reports / "sales").exists()
    result = eil(*args, "--param", "factor=100", cwd=project.root)
    assert result.returncode == 0, result.stdout + result.stderr
    folder = project.reports / "sales"
    assert "1,200" in (folder / "2025-03-03.md").read_text()  # 12 × 100
    assert "1,500" in (folder / "2025-03-04.md").read_text()
    for stamp in ("2025-03-03", "2025-03-04"):
        manifest = json.loads((folder / f"{stamp}.json").read_text())
        assert (manifest["params"], manifest["params_overridden"]) == ({"factor": 100}, ["factor"])
