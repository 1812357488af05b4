"""Secrets (the SMTP login, a webhook URL's token) are used, and never appear in a
log line, a ledger row, a manifest or a report, even when a server echoes them."""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from datetime import timedelta

from delivery_helpers import START, at, eil_toml, outbox, pipeline_text, step

from eil_pipelines.app import ledger_path
from eil_pipelines.deliver.redact import REDACTED, Redactor, redact_url
from eil_pipelines.schedule.testing import ManualClock

USER = "report-bot-7731"
PASSWORD = "pa55-S3CRET-w0rd"
TOKEN = "T0001/B0002/XyZsecretTOKEN42"


def test_secrets_are_used_but_never_written_anywhere(project, smtp, http, make_service, caplog):
    caplog.set_level(logging.DEBUG, logger="eil_pipelines")
    env = {
        "SMTP_USER": USER,
        "SMTP_PASSWORD": PASSWORD,
        "HOOK_URL": http.url(f"/services/{TOKEN}"),
    }
    project.write(
        "eil.toml",
        eil_toml(smtp.port, smtp='username = "${SMTP_USER}"\npassword = "${SMTP_PASSWORD}"'),
    )
    deliver = (
        '[[deliver]]\nto = "cfo@example.com"\nattach = ["md"]\n'
        '[[deliver]]\nwebhook = "${HOOK_URL}"\n'
    )
    project.pipeline("sales", pipeline_text(deliver=deliver, extra='owner = "owner@example.com"'))
    # The server echoes the login in its refusal; the webhook fails once.
    smtp.auth_replies = [f"454 4.7.0 temporary failure for {USER} with password {PASSWORD}"] * 2
    http.statuses = [500]
    clock = ManualClock(START)
    service = make_service(clock, env=env)
    clock.set(at(13))
    step(service)
    errors = {d.channel: d.last_error for d in service.ledger.deliveries()}
    assert errors["email"] == (
        f"SMTP server 127.0.0.1:{smtp.port} refused the login: 454 4.7.0 temporary failure "
        f"for {REDACTED} with password {REDACTED}"
    )
    assert errors["webhook"] == (
        f"webhook http://127.0.0.1:{http.port}/… answered HTTP 500 Internal Server Error"
    )
    clock.advance(timedelta(minutes=1))
    service.deliveries.process_due()
    assert [d[2] for d in outbox(service)] == ["sent", "sent"]
    # The secrets did their job.
    assert (USER, PASSWORD) in smtp.logins
    assert http.paths == [f"/services/{TOKEN}"]
    assert len(smtp.mails) == 1

    secrets = [PASSWORD, USER, TOKEN, "XyZsecretTOKEN42"]
    log_text = caplog.text
    assert "refused the login" in log_text  # the failure was logged, redacted
    assert [s for s in secrets if s in log_text] == []
    service.stop(grace=5)
    with closing(sqlite3.connect(ledger_path(project.reports))) as conn:
        dump = "\n".join(conn.iterdump())
    assert 'INSERT INTO "outbox"' in dump
    assert [s for s in secrets if s in dump] == []
    files = [p for p in project.reports.rglob("*") if p.is_file()]
    assert any(p.suffix == ".json" for p in files)  # the manifest is among them
    leaked = [str(p) for p in files for s in secrets if s.encode() in p.read_bytes()]
    assert leaked == []
    # Nor in what was sent.
    assert [s for s in secrets if s.encode() in smtp.mails[0].raw] == []


def test_redactor_replaces_secrets_and_url_tokens():
    url = "https://hooks.slack.com/services/T000/B000/abcdefSECRET?x=1"
    redact = Redactor(["hunter22", "p@ss w/rd"], [url])
    text = (
        f"POST {url} failed; path /services/T000/B000/abcdefSECRET; login hunter22; p%40ss%20w%2Frd"
    )
    assert redact(text) == (
        "POST https://hooks.slack.com/… failed; path [redacted]; login [redacted]; [redacted]"
    )
    assert redact(None) is None
    assert not redact.contains_secret(redact(text))


def test_redact_url_keeps_scheme_and_host_only():
    assert redact_url("https://hooks.slack.com/services/T/B/X") == "https://hooks.slack.com/…"
    assert redact_url("http://user:pw@127.0.0.1:8080/a?b=c") == "http://127.0.0.1:8080/…"
    assert redact_url("https://example.com") == "https://example.com"
    assert redact_url("http://[::1") == "(invalid URL)"
