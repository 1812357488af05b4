"""Restarts: the outbox is in the ledger, so a message rendered before a stop is sent
after the start, once; a send cut short by a killed process is sent again
(at-least-once), one claimed by a live process is left alone."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing

from delivery_helpers import START, at, eil_toml, outbox, pipeline_text, step

from eil_pipelines.app import ledger_path
from eil_pipelines.schedule.testing import ManualClock

TO_TWO = '[[deliver]]\nto = ["cfo@example.com", "ceo@example.com"]\n'


def render_only(project, make_service, clock):
    """Run the 13:00 report and queue its messages, but send nothing; then stop."""
    first = make_service(clock)
    clock.set(at(13))
    first.scheduler.run_due(clock.now())
    assert first.scheduler.wait_idle(120)
    assert first.stop(grace=5)
    return first


def test_a_restart_between_render_and_send_sends_each_message_once(project, smtp, make_service):
    project.write("eil.toml", eil_toml(smtp.port))
    project.pipeline("sales", pipeline_text(deliver=TO_TWO))
    clock = ManualClock(START)
    render_only(project, make_service, clock)
    assert smtp.mails == []
    with closing(sqlite3.connect(ledger_path(project.reports))) as conn:
        rows = conn.execute("SELECT recipient, status, attempts FROM outbox ORDER BY id").fetchall()
    assert rows == [("cfo@example.com", "pending", 0), ("ceo@example.com", "pending", 0)]

    second = make_service(clock)  # a new process, as far as the ledger can tell
    second.deliveries.process_due()
    assert sorted(m.to for m in smtp.mails) == ["ceo@example.com", "cfo@example.com"]
    second.deliveries.process_due()
    assert step(second) == 0  # 13:00 already ran: nothing runs, nothing is sent again
    assert len(smtp.mails) == 2
    assert outbox(second) == [
        ("report", "cfo@example.com", "sent", 1),
        ("report", "ceo@example.com", "sent", 1),
    ]
    assert [r.status for r in second.ledger.history()] == ["succeeded"]


def dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def test_a_send_cut_short_by_a_killed_process_is_sent_again(project, smtp, make_service, caplog):
    project.write("eil.toml", eil_toml(smtp.port))
    project.pipeline("sales", pipeline_text(deliver='[[deliver]]\nto = "cfo@example.com"\n'))
    clock = ManualClock(START)
    first = render_only(project, make_service, clock)
    # The killed process had claimed the row ('sending', attempt 1) and then died.
    with closing(sqlite3.connect(ledger_path(project.reports))) as conn, conn:
        conn.execute(
            "UPDATE outbox SET status = 'sending', attempts = 1, pid = ?, host = ?,"
            " owner_token = 'gone'",
            (dead_pid(), first.ledger._host),
        )
    second = make_service(clock)
    [row] = second.ledger.deliveries()
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error.startswith("interrupted while sending (the process stopped, pid ")
    assert "delivery interrupted by a stopped process, sending again" in caplog.text
    second.deliveries.process_due()
    assert outbox(second) == [("report", "cfo@example.com", "sent", 2)]
    assert len(smtp.mails) == 1


def test_a_row_being_sent_by_a_live_process_is_left_alone(project, smtp, make_service):
    project.write("eil.toml", eil_toml(smtp.port))
    project.pipeline("sales", pipeline_text(deliver='[[deliver]]\nto = "cfo@example.com"\n'))
    clock = ManualClock(START)
    render_only(project, make_service, clock)
    service = make_service(clock)
    claimed = service.ledger.claim_delivery(now=clock.now())  # this (live) process sends it
    assert claimed is not None
    assert service.deliveries.recover() == []
    service.deliveries.process_due()
    assert smtp.mails == []
    assert outbox(service) == [("report", "cfo@example.com", "sending", 1)]


def test_history_shows_deliveries_until_sent(project, smtp, make_service, capsys):
    from eil_pipelines.cli import main

    project.write("eil.toml", eil_toml(smtp.port))
    project.pipeline("sales", pipeline_text(deliver='[[deliver]]\nto = "cfo@example.com"\n'))
    smtp.replies = ["451 4.3.0 try later"]
    clock = ManualClock(START)
    service = make_service(clock)
    clock.set(at(13))
    step(service)

    args = ["history", str(project.pipelines), "--reports", str(project.reports)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[2:] == [  # after the table's header and the run's line
        "    report email to cfo@example.com: failed (attempt 1 of 8, next "
        "2026-03-02T13:01:00+00:00): SMTP server 127.0.0.1:"
        f"{smtp.port} answered 451 4.3.0 try later while sending"
    ]
    assert main([*args, "--format", "json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["deliveries"] == [
        {
            "kind": "report",
            "channel": "email",
            "recipient": "cfo@example.com",
            "subject": "Daily Sales – 2026-03-02",
            "status": "failed",
            "attempts": 1,
            "max_attempts": 8,
            "next_attempt_at": "2026-03-02T13:01:00+00:00",
            "sent_at": None,
            "error": f"SMTP server 127.0.0.1:{smtp.port} answered 451 4.3.0 try later "
            "while sending",
        }
    ]

    clock.set(at(13, 1))
    service.deliveries.process_due()
    assert main(args) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2  # sent: the header and the run only
    assert main([*args, "--format", "json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["deliveries"][0]["status"], row["deliveries"][0]["sent_at"]) == (
        "sent",
        "2026-03-02T13:01:00+00:00",
    )
