"""The HTTP side of ``eil-run dev``: a live preview of a pipeline's report.

Loopback only (``127.0.0.1``): it renders reports from the project's data
for the person at this machine.  Routes:

* ``/``: the pipelines, each a link, and the invalid files' problems;
* ``/p/NAME``: the preview page: the report in a frame, an error banner
  above it, and a small script (``/dev.js``) that listens to ``/events/NAME``;
* ``/report/NAME``: the last good render of the report (rendered at the first
  request), as the run writes it;
* ``/events/NAME``: server-sent events, one ``{"version", "good_version",
  "error", "seconds"}`` message at once and one after each re-render; the
  page reloads the frame when ``good_version`` moves and shows ``error``
  (file and line) in the banner, keeping the last good report visible.

The report keeps its own Content-Security-Policy (no script); the preview
page allows only its own script file.  Nothing is loaded from elsewhere.  A
request whose ``Host`` is not ``127.0.0.1:PORT`` or ``localhost:PORT`` gets
403, so a web page whose host name was re-pointed at this machine (DNS
rebinding) cannot read the reports.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ..app.dev import DevSession
from ..errors import UsageError
from ..text import printable

__all__ = ["DEV_HOST", "DevServer", "make_dev_server"]

#: The only address ``eil-run dev`` listens on.
DEV_HOST = "127.0.0.1"
#: Seconds between keep-alive comments on an idle event stream.
KEEPALIVE = 10.0

_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; frame-src 'self'; "
    "img-src 'self' data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
)

_SCRIPT = """\
const body = document.body;
const name = body.dataset.pipeline;
const frame = document.getElementById("report");
const banner = document.getElementById("error");
let good = Number(body.dataset.good);
const events = new EventSource("/events/" + encodeURIComponent(name));
events.onmessage = (event) => {
  const state = JSON.parse(event.data);
  banner.hidden = !state.error;
  banner.querySelector("pre").textContent = state.error || "";
  if (state.good_version !== good) {
    good = state.good_version;
    frame.src = "/report/" + encodeURIComponent(name) + "?v=" + good;
  }
  body.dataset.version = state.version;
  body.dataset.good = good;
};
"""

_STYLE = """
body{margin:0;font:15px/1.4 system-ui,sans-serif}header{padding:.4rem 1rem;background:#223;color:#fff}
header a{color:#cde}#error{background:#fde8e8;color:#611;padding:.5rem 1rem;border-bottom:2px solid #c33}
#error pre{white-space:pre-wrap;margin:.25rem 0}iframe{border:0;width:100%;height:calc(100vh - 2.2rem)}
"""


def _escape(text: object) -> str:
    import html

    return html.escape(printable(str(text)), quote=True)


class DevServer(ThreadingHTTPServer):
    """A threaded HTTP server bound to one :class:`DevSession`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, session: DevSession):
        self.session = session
        self.stopping = threading.Event()
        super().__init__((DEV_HOST, port), DevHandler)

    def server_close(self) -> None:
        """Stop the event streams, then close the socket."""
        self.stopping.set()
        super().server_close()


class DevHandler(BaseHTTPRequestHandler):
    """The routes of the module's docstring."""

    server: DevServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a preview logs nothing per request."""

    def do_GET(self) -> None:
        """Answer one of the routes, 404 for anything else."""
        port = self.server.server_address[1]
        if self.headers.get("Host", "") not in (f"{DEV_HOST}:{port}", f"localhost:{port}"):
            # A page elsewhere whose name was pointed at 127.0.0.1 (DNS rebinding)
            # must not read the reports: only this machine's own names are answered.
            self._send(HTTPStatus.FORBIDDEN, "text/plain; charset=utf-8", "forbidden host\n")
            return
        path = urlsplit(self.path).path
        head, _, rest = path.lstrip("/").partition("/")
        name = unquote(rest)
        try:
            if path == "/":
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", self._index())
            elif path == "/dev.js":
                self._send(HTTPStatus.OK, "text/javascript; charset=utf-8", _SCRIPT)
            elif head == "p" and name:
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", self._page(name))
            elif head == "report" and name:
                self._report(name)
            elif head == "events" and name:
                self._events(name)
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", "not found\n")
        except UsageError as exc:
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", f"{exc}\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away

    def _send(self, status: HTTPStatus, kind: str, text: str, csp: str = _CSP) -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", csp)
        self.end_headers()
        self.wfile.write(body)

    def _index(self) -> str:
        session = self.server.session
        links = "".join(
            f'<li><a href="/p/{quote(n)}">{_escape(n)}</a></li>' for n in session.names()
        )
        problems = "".join(f"<li><pre>{_escape(p)}</pre></li>" for p in session.problems())
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>eil-run dev</title><style>{_STYLE}</style></head><body>"
            f"<header>eil-run dev: {_escape(session.path)}</header><main>"
            f"<h1>Pipelines</h1><ul>{links}</ul>"
            + (f"<h2>Invalid files</h2><ul>{problems}</ul>" if problems else "")
            + "</main></body></html>"
        )

    def _page(self, name: str) -> str:
        state = self.server.session.state(name)
        hidden = "" if state.error else " hidden"
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{_escape(name)}: eil-run dev</title><style>{_STYLE}</style></head>"
            f'<body data-pipeline="{_escape(name)}" data-version="{state.version}" '
            f'data-good="{state.good_version}">'
            f'<header><a href="/">eil-run dev</a> · {_escape(name)} · live</header>'
            f'<div id="error" role="alert"{hidden}><strong>This render failed; the last good '
            f"report stays below.</strong><pre>{_escape(state.error or '')}</pre></div>"
            f'<iframe id="report" title="{_escape(name)}" '
            f'src="/report/{quote(name)}?v={state.good_version}"></iframe>'
            '<script src="/dev.js"></script></body></html>'
        )

    def _report(self, name: str) -> None:
        state = self.server.session.state(name)
        if state.html is None:
            text = (
                '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>no render'
                "</title></head><body><p>No good render yet: fix the error above.</p></body></html>"
            )
        else:
            text = state.html
        # The report's own policy (in its <meta>) forbids scripts; this says so again.
        policy = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
        self._send(HTTPStatus.OK, "text/html; charset=utf-8", text, csp=policy)

    def _events(self, name: str) -> None:
        session = self.server.session
        state = session.state(name)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        seen = -1
        while not self.server.stopping.is_set():
            if state.version != seen:
                seen = state.version
                message = {
                    "version": state.version,
                    "good_version": state.good_version,
                    "error": state.error,
                    "seconds": round(state.seconds, 3),
                }
                self.wfile.write(f"data: {json.dumps(message)}\n\n".encode())
            else:
                self.wfile.write(b": keep-alive\n\n")
            self.wfile.flush()
            state = session.wait_version(name, seen, KEEPALIVE)


def make_dev_server(session: DevSession, port: int) -> DevServer:
    """The preview server on ``127.0.0.1:port`` (0: a free port); ``OSError`` when taken."""
    return DevServer(port, session)
