"""Helpers of the delivery tests. Real servers on 127.0.0.1: SMTP (aiosmtpd), HTTP, and
sockets that refuse or never answer.

Each server records what it received; the SMTP messages are parsed with the
standard library's email parser, so the tests check the structure a mail
client would see.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def free_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mail:
    """One message the SMTP server accepted."""

    def __init__(self, envelope):
        self.mail_from = envelope.mail_from
        self.rcpt_tos = list(envelope.rcpt_tos)
        self.raw: bytes = envelope.original_content or envelope.content
        self.message: EmailMessage = message_from_bytes(self.raw, policy=policy.default)

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def to(self) -> str:
        return self.rcpt_tos[0]

    def html(self) -> str:
        return self.message.get_body(("html",)).get_content().replace("\r\n", "\n")

    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content().replace("\r\n", "\n")


class SmtpServer:
    """aiosmtpd on a free port.  ``replies`` holds SMTP replies to give instead of
    accepting (``"451 4.3.0 try later"``), one per message, in order; ``auth``
    checks a login when set."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.mails: list[Mail] = []
        self.replies: list[str] = []
        self.logins: list[tuple[str, str]] = []
        self.auth_replies: list[str] = []
        self._controller: Controller | None = None

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's hook
        if self.replies:
            return self.replies.pop(0)
        self.mails.append(Mail(envelope))
        return "250 2.0.0 OK"

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode()
        password = auth_data.password.decode()
        self.logins.append((login, password))
        if self.auth_replies:
            return AuthResult(success=False, handled=False, message=self.auth_replies.pop(0))
        return AuthResult(success=True)

    def start(self) -> SmtpServer:
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=False,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.mails if m.to == address]


class HttpServer:
    """An HTTP server recording the JSON POSTs it accepts (status 200).  ``statuses``
    holds status codes to answer instead, in order; each of ``delays`` makes one
    request wait that many seconds and then fail with 503."""

    def __init__(self, port: int = 0):
        self.posts: list[dict] = []
        self.headers: list[dict] = []
        self.paths: list[str] = []
        self.statuses: list[int] = []
        self.delays: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if outer.delays:
                    # Too slow, then failing: the client gave up, and nothing was taken.
                    time.sleep(outer.delays.pop(0))
                    status = 503
                else:
                    status = outer.statuses.pop(0) if outer.statuses else 200
                if status == 200:
                    outer.posts.append(json.loads(body))
                    outer.headers.append(dict(self.headers))
                    outer.paths.append(self.path)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class SilentServer:
    """Accepts connections and never says a word: clients time out."""

    def __init__(self, port: int | None = None):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port or 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self._held.append(conn)
            except OSError:
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._held:
            conn.close()
        self.sock.close()


# --- a project with a scheduler service on a manual clock ----------------------------

START = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    """2026-03-02 at this UTC time."""
    return datetime(2026, 3, 2, hour, minute, second, tzinfo=UTC)


KPIS = "SELECT 120.0 AS revenue, 100.0 AS prev_revenue"


def pipeline_text(
    *,
    deliver: str = "",
    extra: str = "",
    sql: str = KPIS,
    every: str = "1h",
    schedule: str = "",
    formats: str = '["md", "html"]',
) -> str:
    """A pipeline with one metric and one chart, firing hourly in UTC."""
    return f"""
title = "Daily Sales"
{extra}
[schedule]
every = "{every}"
timezone = "UTC"
{schedule}
[queries.kpis]
sql = "{sql}"
[queries.daily]
sql = "SELECT * FROM (VALUES (1, 10.0), (2, 12.5), (3, 9.0)) t(day, revenue)"
[[metrics]]
label = "Revenue"
query = "kpis"
column = "revenue"
compare = "prev_revenue"
format = "currency"
[[charts]]
name = "revenue_by_day"
query = "daily"
type = "line"
x = "day"
y = "revenue"
[report]
formats = {formats}
{deliver}
"""


def eil_toml(port: int, *, smtp: str = "", delivery: str = "") -> str:
    """Project settings: SMTP on 127.0.0.1:port without TLS, short timeouts."""
    return f"""
[smtp]
host = "127.0.0.1"
port = {port}
sender = "Reports <reports@example.com>"
starttls = false
timeout = "500ms"
{smtp}
[delivery]
retry_delay = "1m"
webhook_timeout = "500ms"
{delivery}
"""


def step(service) -> int:
    """Run what is due at the clock's time, wait for the runs, then send what is due."""
    started = service.scheduler.run_due(service.clock.now())
    assert service.scheduler.wait_idle(120)
    service.deliveries.process_due()
    return started


def outbox(service, **filters) -> list[tuple[str, str, str, int]]:
    """(kind, recipient, status, attempts) of every outbox row, oldest first."""
    return [
        (d.kind, d.recipient, d.status, d.attempts) for d in service.ledger.deliveries(**filters)
    ]
