"""The reports folder over HTTP, for a quick look (``eil-run serve [PATH]``).

A small static-file server on the standard library's HTTP parsing, hardened
because a reports folder sits next to the run ledger and people do put it on
a network:

- only files whose real path (symlinks resolved) is inside the reports folder
  are served, and nothing under a name starting with a dot (``.eil/``: the
  ledger, status records, locks, the scheduler's log);
- no folder listings: a folder is served through its ``index.html`` or is 404;
- a bounded pool of worker threads and a per-connection timeout, so stalled
  clients cost neither a thread each nor a socket forever; connections beyond
  the pool's queue are closed at once;
- a normal listen backlog;
- bad request targets (NUL bytes, ``..``, invalid percent-encoding, overlong
  paths) and methods other than GET and HEAD get 400, 404, 414 or 405, never a
  traceback;
- a Content-Security-Policy, ``X-Content-Type-Options: nosniff`` and
  ``Cache-Control: no-cache`` on every response, errors included, and a
  ``Server`` header without versions.

It binds to the loopback address unless told otherwise, and rebuilds the
report site once at start so ``/`` shows the index even for reports written
before the site existed.

Given a :class:`~eil_pipelines.web.status.StatusSite`, it also answers the
live status pages (``/status/``, ``/status/<pipeline>/``, ``/api/status``)
and, for those only, ``POST /status/<pipeline>/run`` ("run now"); their
Content-Security-Policy lets the page run this server's one script file.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote

from ..errors import EilError
from ..outputs.site import build_site
from .status import STATUS_CSP, Answer, StatusSite

DEFAULT_PORT = 8000
DEFAULT_HOST = "127.0.0.1"
#: Seconds a connection may stay silent (mid-request or idle between requests).
DEFAULT_TIMEOUT = 10.0
#: Worker threads answering requests; connections beyond them wait in a queue.
DEFAULT_THREADS = 16
#: Connections held at once (answered or waiting); more are closed at once.
DEFAULT_MAX_CONNECTIONS = 256
#: The listen backlog (the standard library's default is 5).
LISTEN_BACKLOG = 128
#: Longest request path accepted, in characters (before decoding).
MAX_PATH = 2048
#: Longest request body accepted (only "run now" takes one).
STATUS_MAX_BODY = 4096

#: The site is static HTML with inline ``<style>`` and inline or file SVG charts;
#: it runs no script, loads nothing from elsewhere and posts no form.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SERVER_NAME = "eil-pipelines"

CONTENT_TYPES = {
    ".md": "text/markdown; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/vnd.microsoft.icon",
    ".pdf": "application/pdf",
    ".parquet": "application/vnd.apache.parquet",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# A "%" not followed by two hex digits: the target is not valid percent-encoding.
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


class BadTarget(Exception):
    """A request target that is refused before the file system is touched."""

    def __init__(self, status: HTTPStatus):
        super().__init__(status.phrase)
        self.status = status


def _path_of(target: str) -> str:
    """The path of a request target: before any query or fragment, never parsed as a URL
    (``//host/x`` is a path here, not a network location)."""
    return target.split("?", 1)[0].split("#", 1)[0]


def target_parts(target: str) -> list[str]:
    """The decoded path segments of a request target, or :class:`BadTarget`.

    Refuses (400) invalid percent-encoding or UTF-8, control characters (NUL
    among them), backslashes and ``.``/``..`` segments; (414) paths longer
    than :data:`MAX_PATH`; (404) any segment starting with a dot.
    """
    if len(target) > MAX_PATH:
        raise BadTarget(HTTPStatus.REQUEST_URI_TOO_LONG)
    # Origin-form only ("/path?query"): an absolute URL or "*" is not for this server.
    path = _path_of(target)
    if not path.startswith("/") or _BAD_PERCENT.search(path):
        raise BadTarget(HTTPStatus.BAD_REQUEST)
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        raise BadTarget(HTTPStatus.BAD_REQUEST) from None
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in decoded) or "\\" in decoded:
        raise BadTarget(HTTPStatus.BAD_REQUEST)
    parts = [part for part in decoded.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise BadTarget(HTTPStatus.BAD_REQUEST)
    if any(part.startswith(".") for part in parts):
        raise BadTarget(HTTPStatus.NOT_FOUND)
    return parts


def resolve_inside(root: Path, parts: list[str]) -> Path | None:
    """The real path of ``root/parts`` when it exists inside ``root`` and outside
    its dot-folders; ``None`` otherwise (a symlink out of the folder, into
    ``.eil/``, a missing file, a name the file system refuses)."""
    try:
        real = root.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):  # missing, a symlink loop, a bad name
        return None
    if real != root and root not in real.parents:
        return None
    if any(part.startswith(".") for part in real.relative_to(root).parts):
        return None
    return real


class ReportsHandler(BaseHTTPRequestHandler):
    """GET and HEAD of files under the reports folder; everything else refused."""

    server: ReportsServer
    # HTTP/1.0 (the standard library's default): one request per connection, so an
    # idle keep-alive connection never holds one of the pool's threads.
    server_version = SERVER_NAME
    # Errors to a garbled request line get a status line and headers (the CSP among
    # them), not the bare body of an HTTP/0.9 answer.
    default_request_version = "HTTP/1.0"
    sys_version = ""
    error_content_type = "text/html; charset=utf-8"
    # This response's policy: the site's, or the status pages' (which run a script).
    _csp = CONTENT_SECURITY_POLICY

    def setup(self) -> None:
        """Apply the per-connection timeout before the first byte is read."""
        # StreamRequestHandler reads the class-level timeout; this server's own wins.
        self.timeout = self.server.connection_timeout  # type: ignore[misc]
        super().setup()

    def version_string(self) -> str:
        """The ``Server`` header: the product, no versions."""
        return SERVER_NAME

    def parse_request(self) -> bool:
        """The standard parsing, then 405 for methods other than GET and HEAD
        (and POST, when the status pages are on: "run now")."""
        self._csp = CONTENT_SECURITY_POLICY
        if not super().parse_request():
            return False
        allowed = ("GET", "HEAD", "POST") if self.server.status is not None else ("GET", "HEAD")
        if self.command not in allowed:
            self.close_connection = True
            self.send_error(HTTPStatus.METHOD_NOT_ALLOWED)
            return False
        return True

    def do_GET(self) -> None:
        """Send a status page, or a file (or a folder's ``index.html``)."""
        if self._status_get(head=False):
            return
        source = self._open()
        if source is None:
            return
        try:
            shutil.copyfileobj(source, self.wfile)
        except OSError:  # the client went away, or the file became unreadable
            self.close_connection = True
        finally:
            source.close()

    def do_HEAD(self) -> None:
        """The headers a GET would get."""
        if self._status_get(head=True):
            return
        source = self._open()
        if source is not None:
            source.close()

    def do_POST(self) -> None:
        """ "Run now" on the status pages; any other POST is 404."""
        status = self.server.status
        assert status is not None  # parse_request refuses POST without the status pages
        self.close_connection = True
        try:
            parts = target_parts(self.path)
        except BadTarget as bad:
            self.send_error(bad.status)
            return
        try:
            length = int(self.headers.get("Content-Length") or "0")
        except ValueError:
            self.send_error(HTTPStatus.BAD_REQUEST)
            return
        if not 0 <= length <= STATUS_MAX_BODY:
            self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            return
        body = self.rfile.read(length) if length else b""
        self._send_answer(status.answer_post(parts, self.headers, body, self.client_address[0]))

    def _status_get(self, *, head: bool) -> bool:
        """Answer a GET of the status pages; False when the target is not one."""
        status = self.server.status
        if status is None:
            return False
        try:
            parts = target_parts(self.path)
        except BadTarget:
            return False  # _open() says so
        if parts == ["status"] and not _path_of(self.path).endswith("/"):
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", "/status/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True
        answer = status.answer_get(parts)
        if answer is None:
            return False
        self._send_answer(answer, head=head)
        return True

    def _send_answer(self, answer: Answer, *, head: bool = False) -> None:
        self._csp = STATUS_CSP
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        if answer.location:
            self.send_header("Location", answer.location)
        self.end_headers()
        if not head:
            try:
                self.wfile.write(answer.body)
            except OSError:  # the client went away
                self.close_connection = True

    def _open(self) -> BinaryIO | None:
        """Send the headers of the file the target names and return it open, or send an error."""
        try:
            parts = target_parts(self.path)
        except BadTarget as bad:
            self.send_error(bad.status)
            return None
        root = self.server.root
        real = resolve_inside(root, parts)
        if real is not None and real.is_dir():
            path = _path_of(self.path)
            if not path.endswith("/"):
                # Relative links in the folder's index need the trailing slash.
                self.send_response(HTTPStatus.MOVED_PERMANENTLY)
                self.send_header("Location", path + "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            real = resolve_inside(root, [*real.relative_to(root).parts, "index.html"])
        if real is None or not real.is_file():
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        try:
            source = real.open("rb")
            size = os.fstat(source.fileno()).st_size
        except OSError:  # unreadable: say nothing more than for a missing file
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        self.send_response(HTTPStatus.OK)
        self.send_header(
            "Content-Type", CONTENT_TYPES.get(real.suffix.lower(), "application/octet-stream")
        )
        self.send_header("Content-Length", str(size))
        self.end_headers()
        return source

    def end_headers(self) -> None:
        """The security headers on every response, errors included."""
        self.send_header("Content-Security-Policy", self._csp)
        self.send_header("X-Content-Type-Options", "nosniff")
        # Reports change under the same URL (latest.html, the index): always revalidate.
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """One line per request on stderr (the standard library escapes control characters)."""
        sys.stderr.write(f"{self.address_string()} - {format % args}\n")


class ReportsServer(HTTPServer):
    """An HTTP server whose connections are answered by a bounded thread pool."""

    request_queue_size = LISTEN_BACKLOG
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        root: Path,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        threads: int = DEFAULT_THREADS,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        status: StatusSite | None = None,
    ):
        self.root = root.resolve()
        #: The live status pages, when this server shows them.
        self.status = status
        self.connection_timeout = timeout
        self.max_connections = max(max_connections, threads)
        #: Connections accepted since start (answered, queued or closed at once).
        self.accepted = 0
        #: Connections held now (answered or waiting for a worker).
        self.held = 0
        self._count_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="eil-serve")
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, ReportsHandler)

    def server_bind(self) -> None:
        """Bind without the reverse DNS lookup of :class:`HTTPServer` (slow offline)."""
        import socketserver

        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Hand the connection to the pool, or close it when too many are held."""
        with self._count_lock:
            self.accepted += 1
            refuse = self.held >= self.max_connections
            if not refuse:
                self.held += 1
        if refuse:
            self.shutdown_request(request)
            return
        try:
            self._pool.submit(self._answer, request, client_address)
        except RuntimeError:  # the pool is shut down: the server is closing
            self._release(request)

    def _answer(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self._release(request)

    def _release(self, request: Any) -> None:
        self.shutdown_request(request)
        with self._count_lock:
            self.held -= 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line on stderr, never a traceback: the connection is closed, serving goes on."""
        error = sys.exc_info()[1]
        sys.stderr.write(f"{client_address[0]} - connection dropped: {type(error).__name__}\n")

    def server_close(self) -> None:
        """Close the socket and let the workers finish; queued connections are dropped."""
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.status is not None:
            self.status.close()


def exposure_warning(host: str) -> str | None:
    """A one-line warning when ``host`` is not a loopback address, else ``None``."""
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host.strip("[]")).is_loopback:
            return None
    except ValueError:  # a host name: assume it reaches the network
        pass
    return (
        f"eil-run serve: warning: listening on {host} reaches other machines; this is a "
        "quick-look server: put it behind a reverse proxy with TLS and authentication"
    )


def make_server(
    reports: Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    threads: int = DEFAULT_THREADS,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    status: StatusSite | None = None,
) -> ReportsServer:
    """A server for the reports folder, the report site rebuilt first, with the
    live status pages when ``status`` is given.

    Raises :class:`EilError` when there is no reports folder; ``OSError`` when
    the address cannot be bound (the caller says so).  A site that cannot be
    rebuilt (a read-only folder, an ``index.html`` that is a folder) is
    reported on stderr and the folder served as it is.
    """
    if not reports.is_dir():
        raise EilError(
            f"serve: no reports folder at {reports}: run `eil-run --once` first, "
            "or name the folder with --reports"
        )
    try:
        build_site(reports)
    except (OSError, EilError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        filename = getattr(exc, "filename", None)
        where = f" ({filename})" if filename else ""
        sys.stderr.write(
            f"eil-run serve: could not rebuild the site index: {reason}{where}; "
            "serving the folder as it is\n"
        )
    return ReportsServer(
        (host, port),
        reports,
        timeout=timeout,
        threads=threads,
        max_connections=max_connections,
        status=status,
    )
