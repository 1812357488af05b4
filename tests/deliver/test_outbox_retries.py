"""The outbox against real servers that refuse, are down, or never answer, then
recover: each message is delivered exactly once in the end, retried with
backoff on the manual clock, without running the pipeline again.
"""

from __future__ import annotations

from datetime import timedelta

from delivery_helpers import (
    START,
    HttpServer,
    SilentServer,
    SmtpServer,
    at,
    eil_toml,
    free_port,
    outbox,
    pipeline_text,
    step,
)

from eil_pipelines.schedule.testing import ManualClock

TO_CFO = '[[deliver]]\nto = "cfo@example.com"\n'


def webhook_deliver(fmt: str = "slack") -> str:
    return f'[[deliver]]\nwebhook = "${{HOOK_URL}}"\nformat = "{fmt}"\n'


def first_run(project, make_service, env=None):
    clock = ManualClock(START)
    service = make_service(clock, env=env)
    clock.set(at(13))
    assert step(service) == 1
    return clock, service


def test_smtp_refusals_are_retried_with_doubling_delays_and_sent_once(project, smtp, make_service):
    project.write("eil.toml", eil_toml(smtp.port))
    project.pipeline("sales", pipeline_text(deliver=TO_CFO))
    smtp.replies = ["451 4.3.0 mailbox busy, try later", "451 4.3.0 mailbox busy, try later"]
    clock, service = first_run(project, make_service)

    [row] = service.ledger.deliveries()
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 1, at(13, 1))
    assert row.last_error == (
        f"SMTP server 127.0.0.1:{smtp.port} answered 451 4.3.0 mailbox busy, try later "
        "while sending"
    )
    service.deliveries.process_due()  # not due before 13:01
    assert outbox(service) == [("report", "cfo@example.com", "failed", 1)]

    clock.set(at(13, 1))
    service.deliveries.process_due()
    [row] = service.ledger.deliveries()
    assert (row.status, row.attempts, row.next_attempt_at) == ("failed", 2, at(13, 3))

    clock.set(at(13, 3))
    service.deliveries.process_due()
    assert outbox(service) == [("report", "cfo@example.com", "sent", 3)]
    assert [m.to for m in smtp.mails] == ["cfo@example.com"]

    clock.set(at(13, 30))
    service.deliveries.process_due()
    assert len(smtp.mails) == 1
    # Retries send the stored message: the pipeline ran once.
    assert [(r.status, r.attempt) for r in service.ledger.history()] == [("succeeded", 1)]


def test_smtp_connection_refused_until_the_server_starts(project, make_service):
    port = free_port()
    project.write("eil.toml", eil_toml(port))
    project.pipeline("sales", pipeline_text(deliver=TO_CFO))
    clock, service = first_run(project, make_service)
    [row] = service.ledger.deliveries()
    assert row.status == "failed"
    assert row.last_error == f"SMTP server 127.0.0.1:{port} refused the connection"

    server = SmtpServer(port).start()
    try:
        clock.advance(timedelta(minutes=1))
        service.deliveries.process_due()
        assert outbox(service) == [("report", "cfo@example.com", "sent", 2)]
        assert len(server.mails) == 1
    finally:
        server.stop()


def test_smtp_server_that_never_answers_times_out_then_recovers(project, make_service):
    silent = SilentServer()
    port = silent.port
    project.write("eil.toml", eil_toml(port))
    project.pipeline("sales", pipeline_text(deliver=TO_CFO))
    try:
        clock, service = first_run(project, make_service)
    finally:
        silent.stop()
    [row] = service.ledger.deliveries()
    assert row.last_error == (
        f"SMTP server 127.0.0.1:{port} did not answer within 0.5s while connecting"
    )

    server = SmtpServer(port).start()
    try:
        clock.advance(timedelta(minutes=1))
        service.deliveries.process_due()
        assert outbox(service) == [("report", "cfo@example.com", "sent", 2)]
        assert len(server.mails) == 1
    finally:
        server.stop()


def test_a_permanent_refusal_gives_up_at_once(project, smtp, make_service):
    project.write("eil.toml", eil_toml(smtp.port))
    project.pipeline("sales", pipeline_text(deliver=TO_CFO))
    smtp.replies = ["550 5.1.1 no such user"]
    clock, service = first_run(project, make_service)
    [row] = service.ledger.deliveries()
    assert (row.status, row.attempts) == ("gave_up", 1)
    assert row.last_error.endswith("answered 550 5.1.1 no such user while sending")
    clock.advance(timedelta(hours=2))
    service.deliveries.process_due()
    assert smtp.mails == []


def test_max_attempts_then_gives_up(project, smtp, make_service):
    project.write("eil.toml", eil_toml(smtp.port, delivery="max_attempts = 2"))
    project.pipeline("sales", pipeline_text(deliver=TO_CFO))
    smtp.replies = ["421 4.3.2 shutting down"] * 3
    clock, service = first_run(project, make_service)
    clock.advance(timedelta(minutes=1))
    service.deliveries.process_due()
    assert outbox(service) == [("report", "cfo@example.com", "gave_up", 2)]


def test_webhook_5xx_then_ok_is_posted_once(project, http, make_service):
    env = {"HOOK_URL": http.url("/hooks/abc")}
    project.write("eil.toml", eil_toml(free_port()))
    project.pipeline("sales", pipeline_text(deliver=webhook_deliver()))
    http.statuses = [502, 500]
    clock, service = first_run(project, make_service, env)
    [row] = service.ledger.deliveries()
    assert row.recipient == f"http://127.0.0.1:{http.port}/…"
    assert row.last_error == f"webhook http://127.0.0.1:{http.port}/… answered HTTP 502 Bad Gateway"
    clock.advance(timedelta(minutes=1))
    service.deliveries.process_due()
    clock.advance(timedelta(minutes=2))
    service.deliveries.process_due()
    assert outbox(service) == [("report", f"http://127.0.0.1:{http.port}/…", "sent", 3)]
    [post] = http.posts
    assert post["blocks"][0]["text"]["text"] == "Daily Sales – 2026-03-02"
    assert "Revenue: $120.00 (▲ +20.0% vs $100.00)" in post["text"]
    assert http.paths == ["/hooks/abc"]
    assert http.headers[0]["Content-Type"] == "application/json; charset=utf-8"
    assert http.headers[0]["Idempotency-Key"]


def test_webhook_refused_until_the_server_starts(project, make_service):
    port = free_port()
    env = {"HOOK_URL": f"http://127.0.0.1:{port}/hook"}
    project.write("eil.toml", eil_toml(free_port()))
    project.pipeline("sales", pipeline_text(deliver=webhook_deliver("json")))
    clock, service = first_run(project, make_service, env)
    [row] = service.ledger.deliveries()
    assert row.last_error == f"webhook http://127.0.0.1:{port}/… refused the connection"
    server = HttpServer(port)
    try:
        clock.advance(timedelta(minutes=1))
        service.deliveries.process_due()
        assert [d[2:] for d in outbox(service)] == [("sent", 2)]
        [post] = server.posts
        assert post["event"] == "report"
        assert post["pipeline"] == "sales"
        assert post["scheduled_at"] == "2026-03-02T13:00:00+00:00"
        assert post["metrics"][0]["label"] == "Revenue"
        assert post["metrics"][0]["change_pct"] == 0.2
        assert post["rows"] == {"kpis": 1, "daily": 3}
        assert post["report_url"] is None
    finally:
        server.stop()


def test_webhook_timeout_then_recovers(project, http, make_service):
    env = {"HOOK_URL": http.url("/hook")}
    project.write("eil.toml", eil_toml(free_port()))
    project.pipeline("sales", pipeline_text(deliver=webhook_deliver()))
    http.delays = [0.8]
    clock, service = first_run(project, make_service, env)
    [row] = service.ledger.deliveries()
    assert row.last_error == f"webhook http://127.0.0.1:{http.port}/… did not answer within 0.5s"
    assert http.posts == []
    clock.advance(timedelta(minutes=1))
    service.deliveries.process_due()
    assert [d[2:] for d in outbox(service)] == [("sent", 2)]
    assert len(http.posts) == 1


def test_report_link_in_email_and_webhook(project, smtp, http, make_service):
    env = {"HOOK_URL": http.url("/hook")}
    project.write(
        "eil.toml",
        eil_toml(smtp.port, delivery='report_base_url = "https://bi.example.com/reports/"'),
    )
    project.pipeline("sales", pipeline_text(deliver=TO_CFO + webhook_deliver()))
    first_run(project, make_service, env)
    link = "https://bi.example.com/reports/sales/2026-03-02T1300.html"
    assert f'href="{link}"' in smtp.mails[0].html()
    assert f"View this report online: {link}" in smtp.mails[0].text()
    assert f"<{link}|Open the report>" in http.posts[0]["blocks"][-1]["elements"][0]["text"]


def test_a_subject_that_cannot_render_gives_up_with_the_reason(project, smtp, make_service):
    project.write("eil.toml", eil_toml(smtp.port))
    deliver = '[[deliver]]\nto = "cfo@example.com"\nsubject = "{{ nope }}"\n'
    project.pipeline("sales", pipeline_text(deliver=deliver))
    _, service = first_run(project, make_service)
    [row] = service.ledger.deliveries()
    assert (row.status, row.attempts, row.last_error) == (
        "gave_up",
        0,
        "not sent: deliver[0].subject: undefined template variable: 'nope' is undefined",
    )
    assert smtp.mails == []


def test_a_webhook_removed_while_its_message_waits_is_given_up(project, http, make_service):
    env = {"HOOK_URL": http.url("/hook")}
    project.write("eil.toml", eil_toml(free_port()))
    file = project.pipeline("sales", pipeline_text(deliver=webhook_deliver()))
    http.statuses = [500]
    clock, service = first_run(project, make_service, env)
    file.write_text(pipeline_text(), encoding="utf-8")
    service.reload()
    clock.advance(timedelta(minutes=1))
    service.deliveries.process_due()
    [row] = service.ledger.deliveries()
    assert (row.status, row.last_error) == (
        "gave_up",
        "not sent: pipeline sales no longer has this webhook",
    )
    assert http.posts == []


def test_email_without_smtp_settings_is_given_up_visibly(project, make_service):
    project.pipeline("sales", pipeline_text(deliver=TO_CFO))
    _, service = first_run(project, make_service)
    assert [(d.status, d.last_error) for d in service.ledger.deliveries()] == [
        ("gave_up", "not sent: no SMTP server is configured (add an [smtp] table to eil.toml)")
    ]


def test_an_invalid_eil_toml_stops_the_scheduler_before_it_writes(project, capsys):
    from eil_pipelines.cli import main

    project.write("eil.toml", '[smtp]\nhost = "h"\nsender = "a@example.com"\nport = 0\n')
    project.pipeline("sales", pipeline_text())
    assert main([str(project.pipelines)]) == 2
    assert capsys.readouterr().err.endswith(
        "eil.toml: smtp.port: must be at least 1, got integer 0\n"
    )
    assert not project.reports.exists()
