"""When messages go out: ``when = "not_empty"`` and ``"changed"``, alerts that fire,
stay and clear, failure notices once per failing streak and a recovery message."""

from __future__ import annotations

import logging

from delivery_helpers import START, at, eil_toml, outbox, step

from eil_pipelines.schedule.testing import ManualClock

# Every query reads data/rows.csv: the test changes it between runs.
ROWS_PIPELINE = """
title = "Exceptions"
{top}
[schedule]
every = "1h"
timezone = "UTC"
{schedule}
[queries.found]
sql = "SELECT region, amount FROM 'data/rows.csv' WHERE flag = 1"
[report]
template = "templates/plain.md.j2"
formats = ["md"]
{rest}
"""
PLAIN_TEMPLATE = "# {{ pipeline.title }}\n\n{{ data.found | table }}\n"


def write_rows(project, *rows: tuple[str, int, int]) -> None:
    lines = ["region,amount,flag", *(f"{r},{a},{f}" for r, a, f in rows)]
    project.write("data/rows.csv", "\n".join(lines) + "\n")


def rows_project(
    project, port: int, *, top: str = "", schedule: str = "", rest: str = "", delivery: str = ""
):
    project.write("eil.toml", eil_toml(port, delivery=delivery))
    project.write("templates/plain.md.j2", PLAIN_TEMPLATE)
    project.pipeline("exceptions", ROWS_PIPELINE.format(top=top, schedule=schedule, rest=rest))


def run_at(service, clock, hour: int, minute: int = 0) -> None:
    clock.set(at(hour, minute))
    assert step(service) == 1


def test_not_empty_skips_a_report_whose_queries_returned_nothing(project, smtp, make_service):
    rows_project(
        project, smtp.port, rest='[[deliver]]\nto = "cfo@example.com"\nwhen = "not_empty"\n'
    )
    write_rows(project, ("EMEA", 5, 0))  # a row, but the query filters it out
    clock = ManualClock(START)
    service = make_service(clock)
    run_at(service, clock, 13)
    assert smtp.mails == []
    [row] = service.ledger.deliveries()
    assert (row.status, row.last_error) == (
        "skipped",
        'not sent: every query returned no rows (when = "not_empty")',
    )
    write_rows(project, ("EMEA", 5, 1))
    run_at(service, clock, 14)
    assert [m.subject for m in smtp.mails] == ["Exceptions – 2026-03-02"]
    assert [d[2] for d in outbox(service)] == ["skipped", "sent"]


def test_changed_skips_a_report_equal_to_the_last_one_sent(project, smtp, make_service):
    rows_project(project, smtp.port, rest='[[deliver]]\nto = "cfo@example.com"\nwhen = "changed"\n')
    write_rows(project, ("EMEA", 5, 1))
    clock = ManualClock(START)
    service = make_service(clock)
    run_at(service, clock, 13)
    run_at(service, clock, 14)  # the same report
    write_rows(project, ("EMEA", 7, 1))
    run_at(service, clock, 15)
    run_at(service, clock, 16)
    assert [(d[2]) for d in outbox(service)] == ["sent", "skipped", "sent", "skipped"]
    assert len(smtp.mails) == 2
    skipped = service.ledger.deliveries(statuses=["skipped"])
    assert skipped[0].last_error == (
        'not sent: the data equal the last report sent (when = "changed")'
    )


def test_changed_compares_the_data_not_the_dates_printed(project, smtp, make_service):
    # The report prints its time, so its text differs every run; the data does not.
    rows_project(
        project,
        smtp.port,
        rest='[[deliver]]\nto = "cfo@example.com"\nwhen = "changed"\n'
        '[[deliver]]\nto = "cto@example.com"\nwhen = "changed_text"\n',
    )
    project.write(
        "templates/plain.md.j2",
        "# {{ pipeline.title }} {{ run.time }}\n\n{{ data.found | table }}\n",
    )
    write_rows(project, ("EMEA", 5, 1))
    clock = ManualClock(START)
    service = make_service(clock)
    run_at(service, clock, 13)
    run_at(service, clock, 14)  # new text (the time), the same data
    write_rows(project, ("EMEA", 7, 1))
    run_at(service, clock, 15)  # new data
    rows = sorted(service.ledger.deliveries(), key=lambda d: (d.target, d.scheduled_at))
    by_target = {}
    for row in rows:
        by_target.setdefault(row.target, []).append(row.status)
    assert by_target == {
        "cfo@example.com": ["sent", "skipped", "sent"],
        "cto@example.com": ["sent", "sent", "sent"],
    }
    assert len(smtp.mails) == 5


ALERT = """
[alert]
query = "found"
notify = ["ops@example.com", "cto@example.com"]
mode = "{mode}"
"""


def test_on_change_alert_fires_once_stays_quiet_and_clears_once(project, smtp, make_service):
    rows_project(project, smtp.port, rest=ALERT.format(mode="on_change"))
    clock = ManualClock(START)
    service = make_service(clock)
    write_rows(project)
    run_at(service, clock, 13)  # nothing found
    write_rows(project, ("EMEA", 5, 1), ("APAC", 9, 1))
    run_at(service, clock, 14)  # fires
    run_at(service, clock, 15)  # still firing: quiet
    write_rows(project, ("EMEA", 5, 0))
    run_at(service, clock, 16)  # clears
    run_at(service, clock, 17)  # still clear: quiet

    ops = smtp.to("ops@example.com")
    assert [m.subject for m in ops] == ["Alert: Exceptions", "Alert: Exceptions – cleared"]
    assert len(smtp.to("cto@example.com")) == 2
    fired = ops[0]
    assert "2 findings from the query found in the run scheduled 2026-03-02 14:00 UTC." in (
        fired.text()
    )
    assert "region | amount\nEMEA | 5\nAPAC | 9" in fired.text()
    assert fired.html().count("<td style=") == 4  # the findings, as a table
    assert "it started with the run scheduled 2026-03-02 14:00 UTC" in ops[1].text()
    assert [(d[0], d[1]) for d in outbox(service)] == [
        ("alert", "ops@example.com"),
        ("alert", "cto@example.com"),
        ("alert_cleared", "ops@example.com"),
        ("alert_cleared", "cto@example.com"),
    ]


def test_every_run_alert_speaks_after_each_run_with_findings(project, smtp, make_service):
    rows_project(
        project,
        smtp.port,
        rest=ALERT.format(mode="every_run") + 'subject = "{{ findings }} exceptions"\n',
    )
    clock = ManualClock(START)
    service = make_service(clock)
    write_rows(project, ("EMEA", 5, 1))
    run_at(service, clock, 13)
    write_rows(project, ("EMEA", 5, 1), ("APAC", 9, 1))
    run_at(service, clock, 14)
    write_rows(project)
    run_at(service, clock, 15)  # clear: no message in this mode
    assert [m.subject for m in smtp.to("ops@example.com")] == ["1 exceptions", "2 exceptions"]


def test_failure_notice_once_per_streak_after_the_retries_then_recovery(
    project, smtp, make_service, caplog
):
    caplog.set_level(logging.INFO, logger="eil_pipelines")
    rows_project(
        project,
        smtp.port,
        top='owner = "owner@example.com"',
        schedule='retries = 1\nretry_delay = "1m"',
    )
    clock = ManualClock(START)
    service = make_service(clock)
    project.write("data/rows.csv", "not,a\ncsv file with,the columns,we need\n")
    run_at(service, clock, 13)  # attempt 1 fails: a retry follows, no notice yet
    assert smtp.mails == []
    run_at(service, clock, 13, 1)  # attempt 2 fails: that is final
    run_at(service, clock, 14)  # still failing: quiet
    write_rows(project, ("EMEA", 5, 1))
    run_at(service, clock, 15)  # recovers
    run_at(service, clock, 16)  # fine: quiet

    mails = smtp.to("owner@example.com")
    assert [m.subject for m in mails] == ["Failed: Exceptions", "Recovered: Exceptions"]
    failed = mails[0].text()
    assert "scheduled 2026-03-02 13:00 UTC failed after 2 attempts:" in failed
    assert 'query "found"' in failed
    assert "No further message comes while it keeps failing" in failed
    assert "it had been failing since the run scheduled 2026-03-02 13:00 UTC" in mails[1].text()
    assert [(d[0], d[2]) for d in outbox(service)] == [("failure", "sent"), ("recovery", "sent")]


def test_failure_recipient_stands_in_for_a_missing_owner(project, smtp, make_service):
    rows_project(project, smtp.port, delivery='failure_recipient = "bi-team@example.com"')
    clock = ManualClock(START)
    service = make_service(clock)
    run_at(service, clock, 13)  # data/rows.csv is missing: the run fails
    assert [m.to for m in smtp.mails] == ["bi-team@example.com"]
    assert smtp.mails[0].subject == "Failed: Exceptions"


def test_without_any_recipient_a_failure_is_only_logged(project, smtp, make_service, caplog):
    rows_project(project, smtp.port)
    clock = ManualClock(START)
    service = make_service(clock)
    run_at(service, clock, 13)
    assert smtp.mails == [] and outbox(service) == []
    assert (
        "no failure notice for exceptions: it has no owner and eil.toml sets no "
        "delivery.failure_recipient" in caplog.text
    )
