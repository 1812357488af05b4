"""``eil-run PATH`` as a real process delivering to real servers on 127.0.0.1: every
run's email and webhook arrive exactly once, a webhook that is down is retried
by the next process after a restart, and no secret reaches the log."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from contextlib import closing
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from clirun import ledger_query
from clirun import wait_for as _wait_for

from eil_pipelines.app import ledger_path

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

PASSWORD = "e2e-Pa55-w0rd-SECRET"
TOKEN = "T9/B9/e2eSECRETtoken"

PIPELINE = """
title = "Ticker"
owner = "owner@example.com"
[schedule]
every = "1s"
timezone = "UTC"
[queries.q]
sql = "SELECT 42 AS answer"
[[metrics]]
label = "Answer"
query = "q"
column = "answer"
[report]
formats = ["md"]
[[deliver]]
to = "cfo@example.com"
[[deliver]]
webhook = "${HOOK_URL}"
"""

SETTINGS = """
[smtp]
host = "127.0.0.1"
port = {port}
sender = "reports@example.com"
starttls = false
username = "bot"
password = "${{SMTP_PASSWORD}}"
timeout = "2s"
[delivery]
retry_delay = "200ms"
max_retry_delay = "500ms"
max_attempts = 100
webhook_timeout = "2s"
"""


class Inbox:
    """aiosmtpd handler keeping every accepted message."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def inbox():
    handler = Inbox()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        auth_require_tls=False,
        authenticator=lambda *args: AuthResult(success=True),
    )
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture
def hook():
    """A webhook receiver; ``hook.down`` makes it answer 500."""
    state = {"down": True, "posts": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = 500 if state["down"] else 200
            if status == 200:
                state["posts"].append((self.headers["Idempotency-Key"], json.loads(body)))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_port}/services/{TOKEN}"
    yield state
    server.shutdown()
    server.server_close()


def wait_for(predicate, timeout: float = 15.0) -> bool:
    """As clirun.wait_for, with more time: each step here is a process start plus a send."""
    return _wait_for(predicate, timeout)


def outbox_rows(reports) -> list[tuple]:
    return ledger_query(
        reports, "SELECT channel, scheduled_at, status, attempts FROM outbox ORDER BY id"
    )


def start(project, env, tag: str):
    stderr = (project.root / f"{tag}.stderr").open("w", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "eil_pipelines", "pipelines", "--reports", str(project.reports)],
        cwd=project.root,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    return process, stderr


def stop(process, stderr) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(15)
    finally:
        stderr.close()


@pytest.mark.slow
def test_scheduled_deliveries_arrive_once_across_a_restart(project, inbox, hook):
    project.write("eil.toml", SETTINGS.format(port=inbox.port))
    project.pipeline("ticker", PIPELINE)
    env = {"HOOK_URL": hook["url"], "SMTP_PASSWORD": PASSWORD}

    first, err1 = start(project, env, "first")
    try:
        # Runs deliver their emails; the webhook is down, so its messages wait.
        assert wait_for(lambda: len(inbox.messages) >= 2), (
            project.root / "first.stderr"
        ).read_text()
        assert wait_for(
            lambda: any(c == "webhook" and a >= 2 for c, _, s, a in outbox_rows(project.reports))
        )
    finally:
        assert stop(first, err1) == 0
    waiting = {t for c, t, s, _ in outbox_rows(project.reports) if c == "webhook" and s != "sent"}
    assert waiting and hook["posts"] == []

    hook["down"] = False
    second, err2 = start(project, env, "second")
    try:
        # The next process sends what the first left, without re-running those runs.
        assert wait_for(
            lambda: (
                waiting
                <= {
                    t
                    for c, t, s, _ in outbox_rows(project.reports)
                    if c == "webhook" and s == "sent"
                }
            )
        ), (project.root / "second.stderr").read_text()
    finally:
        assert stop(second, err2) == 0

    rows = outbox_rows(project.reports)
    sent_email = [t for c, t, s, _ in rows if c == "email" and s == "sent"]
    sent_hook = [t for c, t, s, _ in rows if c == "webhook" and s == "sent"]
    # Exactly once: one email per run that sent one, none twice; the same for the webhook.
    ids = Counter(str(m["Message-ID"]) for m in inbox.messages)
    assert max(ids.values()) == 1
    assert len(inbox.messages) == len(sent_email)
    keys = Counter(key for key, _ in hook["posts"])
    assert max(keys.values()) == 1
    assert len(hook["posts"]) == len(sent_hook)
    assert all(m["Subject"].startswith("Ticker – ") for m in inbox.messages)

    # Secrets: never in the log, stderr, ledger or reports.
    texts = [
        (project.reports / ".eil" / "scheduler.log").read_text(encoding="utf-8"),
        (project.root / "first.stderr").read_text(encoding="utf-8"),
        (project.root / "second.stderr").read_text(encoding="utf-8"),
    ]
    assert "delivery failed" in texts[0]  # the webhook failures were logged, redacted
    with closing(sqlite3.connect(ledger_path(project.reports))) as conn:
        texts.append("\n".join(conn.iterdump()))
    texts.extend(
        p.read_text(encoding="utf-8", errors="replace")
        for p in project.reports.rglob("*")
        if p.is_file() and p.suffix in (".md", ".json", ".html", ".log")
    )
    for secret in (PASSWORD, TOKEN, "e2eSECRETtoken"):
        assert not any(secret in text for text in texts), secret
