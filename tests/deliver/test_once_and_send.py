"""``eil-run --once`` sends nothing unless ``--deliver``; with it, a run delivers as a
scheduled one does.  ``eil-run send`` mails the latest report for testing."""

from __future__ import annotations

import os

from delivery_helpers import eil_toml, free_port, pipeline_text

from eil_pipelines.app import ledger_path
from eil_pipelines.cli import main
from eil_pipelines.ledger import Ledger

AT = "2026-03-02T13:00"
DELIVER = '[[deliver]]\nto = "cfo@example.com"\n'


def once(project, *extra: str) -> int:
    return main(["--once", str(project.pipelines), "--reports", str(project.reports), *extra])


def test_once_without_deliver_sends_nothing_and_keeps_no_ledger(project, smtp, capsys):
    project.write("eil.toml", eil_toml(smtp.port))
    project.pipeline("sales", pipeline_text(deliver=DELIVER, extra='owner = "o@example.com"'))
    assert once(project, "--at", AT) == 0
    assert smtp.mails == []
    assert not ledger_path(project.reports).exists()
    assert "deliveries" not in capsys.readouterr().out


def test_once_deliver_sends_records_and_never_sends_twice(project, smtp, capsys):
    project.write("eil.toml", eil_toml(smtp.port))
    project.pipeline("sales", pipeline_text(deliver=DELIVER))
    assert once(project, "--at", AT, "--deliver") == 0
    out = capsys.readouterr().out
    assert (
        "1 succeeded, 0 failed.\n\ndeliveries:\n  sales: report email to cfo@example.com: sent\n"
        in (out)
    )
    assert [m.subject for m in smtp.mails] == ["Daily Sales – 2026-03-02"]
    with Ledger(ledger_path(project.reports)) as ledger:
        [run] = ledger.history()
        assert (run.pipeline, run.status, run.scheduled_at.isoformat()) == (
            "sales",
            "succeeded",
            "2026-03-02T13:00:00+00:00",
        )
    # The same scheduled time again: the report is rendered again, but already delivered.
    assert once(project, "--at", AT, "--deliver") == 0
    assert len(smtp.mails) == 1
    assert "report email to cfo@example.com: sent" in capsys.readouterr().out


def test_once_deliver_leaves_a_failed_send_for_the_scheduler(project, capsys):
    port = free_port()
    project.write("eil.toml", eil_toml(port))
    project.pipeline("sales", pipeline_text(deliver=DELIVER))
    assert once(project, "--at", AT, "--deliver") == 1
    out = capsys.readouterr().out
    assert (
        "  sales: report email to cfo@example.com: failed (attempt 1 of 8, next "
        f"2026-03-02T13:01:00+00:00): SMTP server 127.0.0.1:{port} refused the connection"
    ) not in out  # the next attempt is a minute after now, not after --at
    assert "sales: report email to cfo@example.com: failed (attempt 1 of 8, next " in out
    assert "1 not delivered yet: the scheduler (eil-run PATH) or the next --once --deliver" in out
    assert main(["history", str(project.pipelines), "--reports", str(project.reports)]) == 0
    assert "report email to cfo@example.com: failed (attempt 1 of 8" in capsys.readouterr().out


def test_once_deliver_sends_a_failure_notice(project, smtp, capsys):
    project.write("eil.toml", eil_toml(smtp.port))
    text = pipeline_text(deliver=DELIVER, extra='owner = "owner@example.com"', sql="SELECT nope")
    project.pipeline("sales", text)
    assert once(project, "--at", AT, "--deliver") == 1
    assert [(m.to, m.subject) for m in smtp.mails] == [("owner@example.com", "Failed: Daily Sales")]
    assert "sales: failure email to owner@example.com: sent" in capsys.readouterr().out


def test_deliver_is_only_for_once(project, capsys):
    project.pipeline("sales", pipeline_text())
    assert main([str(project.pipelines), "--deliver"]) == 2
    assert "--deliver goes with --once (the scheduler always delivers)" in capsys.readouterr().err


def test_send_mails_the_latest_report_each_time_asked(project, smtp, capsys):
    project.write("eil.toml", eil_toml(smtp.port))
    deliver = DELIVER + 'subject = "Weekly: {{ pipeline.title }}"\nattach = ["md"]\n'
    file = project.pipeline("sales", pipeline_text(deliver=deliver))
    assert once(project, "--at", AT) == 0
    capsys.readouterr()
    args = ["send", str(file), "--to", "me@example.com", "--reports", str(project.reports)]
    assert main(args) == 0
    assert capsys.readouterr().out.startswith("sent ")
    assert main(args) == 0  # a test send is not deduplicated
    assert [(m.to, m.subject) for m in smtp.mails] == [
        ("me@example.com", "Weekly: Daily Sales"),
        ("me@example.com", "Weekly: Daily Sales"),
    ]
    assert [p.get_filename() for p in smtp.mails[0].message.iter_attachments()] == [
        "sales-2026-03-02T1300.md"
    ]
    assert '<img src="cid:' in smtp.mails[0].html()


def test_send_explains_what_is_missing(project, smtp, capsys):
    file = project.pipeline("sales", pipeline_text(deliver=DELIVER))
    args = ["send", str(file), "--to", "me@example.com", "--reports", str(project.reports)]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        "eil-run: no SMTP server is configured: add an [smtp] table to eil.toml\n"
    )
    project.write("eil.toml", eil_toml(smtp.port))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith('eil-run: no report of pipeline "sales" in ')
    assert "run it first (eil-run --once " in err
    assert main(["send", str(file), "--to", "nope", "--reports", str(project.reports)]) == 2
    assert capsys.readouterr().err == 'eil-run send: --to: "nope" is not an email address\n'


def test_send_reports_a_refusal_with_exit_1(project, capsys):
    project.write("eil.toml", eil_toml(free_port()))
    file = project.pipeline("sales", pipeline_text())
    assert once(project, "--at", AT) == 0
    capsys.readouterr()
    args = ["send", str(file), "--to", "me@example.com", "--reports", str(project.reports)]
    assert main(args) == 1
    assert "eil-run send: me@example.com: SMTP server 127.0.0.1:" in capsys.readouterr().err
    assert os.path.exists(project.reports / "sales" / "2026-03-02T1300.md")
