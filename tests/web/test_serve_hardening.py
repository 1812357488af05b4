"""``serve`` against the attacks of issue 14: a real server on 127.0.0.1, an ephemeral
port, real sockets; each test stops its server."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eil_pipelines.web.server import (
    CONTENT_SECURITY_POLICY,
    LISTEN_BACKLOG,
    ReportsServer,
    exposure_warning,
    make_server,
)


def wait_for(predicate, timeout: float = 60.0) -> bool:
    """Poll ``predicate`` until it holds; the deadline is only reached when a test fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    """A reports folder with a report, a folder with and one without an index, the ledger."""
    root = tmp_path / "reports"
    (root / "sales").mkdir(parents=True)
    (root / "sales" / "2026-11-28.md").write_text("# Sales\n")
    (root / "sales" / "index.html").write_text("<h1>Sales page</h1>")
    (root / "bare").mkdir()
    (root / "bare" / "data.csv").write_text("v\n1\n")
    (root / ".eil").mkdir()
    (root / ".eil" / "ledger.sqlite").write_text("secret ledger")
    (root / "index.html").write_text("<h1>Site</h1>")
    return root


class Running:
    """A server answering in a thread; ``stop()`` always runs (the fixture's finaliser)."""

    def __init__(self, server: ReportsServer):
        self.server = server
        self.port = server.server_address[1]
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(30)


@pytest.fixture
def serve(monkeypatch) -> Iterator:
    """``serve(reports, **options)`` starts a server; every one is stopped after the test."""
    started: list[Running] = []
    # build_site must not rewrite the fixture's hand-made index pages.
    monkeypatch.setattr("eil_pipelines.web.server.build_site", lambda reports: [])

    def start(folder: Path, **options) -> Running:
        running = Running(make_server(folder, "127.0.0.1", 0, **options))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def raw(port: int, request: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as is; the status, headers (lower-case names) and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def get(port: int, target: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """One request for ``target``, sent byte for byte (no client-side normalising)."""
    return raw(port, f"{method} {target} HTTP/1.0\r\nHost: x\r\n\r\n".encode("latin-1"))


def test_symlinks_out_of_the_folder_and_dot_folders_are_never_served(reports, tmp_path, serve):
    outside = tmp_path / "outside.txt"
    outside.write_text("not for the web")
    (reports / "etclink").symlink_to("/etc")
    (reports / "filelink.txt").symlink_to(outside)
    (reports / "ledgerlink").symlink_to(reports / ".eil")
    (reports / "inside.md").symlink_to(reports / "sales" / "2026-11-28.md")
    port = serve(reports).port

    assert get(port, "/etclink/passwd")[0] == 404
    assert get(port, "/etclink/")[0] == 404
    assert get(port, "/filelink.txt")[0] == 404
    assert get(port, "/ledgerlink/ledger.sqlite")[0] == 404
    assert get(port, "/.eil/ledger.sqlite")[0] == 404
    assert get(port, "/%2Eeil/ledger.sqlite")[0] == 404
    assert get(port, "/.eil/")[0] == 404
    # A symlink that stays inside the folder is served like its target.
    assert get(port, "/inside.md") == get(port, "/sales/2026-11-28.md")
    assert get(port, "/inside.md")[2] == b"# Sales\n"


def test_no_folder_listings_and_a_folder_serves_its_index(reports, serve):
    port = serve(reports).port
    status, headers, body = get(port, "/bare/")
    assert status == 404 and b"data.csv" not in body
    status, headers, body = get(port, "/sales/")
    assert status == 200 and body == b"<h1>Sales page</h1>"
    assert headers["content-type"] == "text/html; charset=utf-8"
    status, headers, _ = get(port, "/sales")
    assert status == 301 and headers["location"] == "/sales/"
    assert get(port, "/")[2] == b"<h1>Site</h1>"
    assert get(port, "/bare/data.csv")[2] == b"v\n1\n"


def test_a_stalled_client_is_dropped_after_the_timeout(reports, serve):
    port = serve(reports, timeout=1.0).port
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(b"GET /index.html HTTP/1.1\r\nHost: ")
        started = time.monotonic()
        # The server closes the connection (an empty read); a server without a
        # timeout leaves this read waiting until the 60 s socket timeout fails it.
        assert sock.recv(1024) == b""
        assert time.monotonic() - started >= 0.9
    assert get(port, "/")[0] == 200


def test_three_hundred_stalled_clients_do_not_create_three_hundred_threads(reports, serve):
    before = threading.active_count()
    running = serve(reports, timeout=120.0, threads=4)
    socks = []
    try:
        for _ in range(300):
            sock = socket.create_connection(("127.0.0.1", running.port), timeout=60)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: ")
            socks.append(sock)
        assert wait_for(lambda: running.server.accepted == 300), running.server.accepted
        # The pool's threads and the accept loop, nothing per connection.
        assert threading.active_count() <= before + 4 + 1
        assert running.server.held <= running.server.max_connections
    finally:
        for sock in socks:
            sock.close()
    # The stalled clients gone, the server answers again.
    assert wait_for(lambda: running.server.held == 0)
    assert get(running.port, "/")[0] == 200


def test_the_listen_backlog_holds_a_hundred_waiting_connections(reports):
    # Listening but not accepting: each connection waits in the backlog.  With the
    # standard library's backlog of 5 the kernel drops further handshakes.
    assert LISTEN_BACKLOG >= 128
    server = make_server(reports, "127.0.0.1", 0)
    socks = []
    try:
        for _ in range(100):
            socks.append(socket.create_connection(server.server_address[:2], timeout=10))
    finally:
        for sock in socks:
            sock.close()
        server.server_close()
    assert len(socks) == 100


BAD = [
    ("/%00", (400,)),
    ("/index.html%00.md", (400,)),
    ("/../etc/passwd", (400,)),
    ("/sales/../../etc/passwd", (400,)),
    ("/%2e%2e/%2e%2e/etc/passwd", (400,)),
    ("/..%2f..%2fetc%2fpasswd", (400,)),
    ("/%zz", (400,)),
    ("/%ff%fe", (400,)),
    ("/a%5c..%5cb", (400,)),
    ("/" + "a" * 5000, (414,)),
    ("/" + "a/" * 2000, (414,)),
    ("/" + "a" * 300, (404,)),  # longer than a file name may be
    ("http://evil/x", (400,)),
    ("*", (400,)),
    ("//evil.example/index.html", (404,)),  # a path, never a host to redirect to
]


@pytest.mark.parametrize(("target", "expected"), BAD, ids=[t[:30] for t, _ in BAD])
def test_bad_paths_get_a_clean_4xx_and_no_traceback(reports, serve, capsys, target, expected):
    port = serve(reports).port
    status, headers, body = get(port, target)
    assert status in expected
    assert b"Traceback" not in body and headers["content-type"].startswith("text/html")
    assert get(port, "/")[0] == 200  # still serving
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Error" not in err.replace("code 40", "")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"])
def test_methods_other_than_get_and_head_get_405(reports, serve, capsys, method):
    port = serve(reports).port
    status, headers, _ = get(port, "/index.html", method)
    assert status == 405
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    status, headers, body = get(port, "/index.html", "HEAD")
    assert status == 200 and body == b"" and headers["content-length"] == "13"
    assert "Traceback" not in capsys.readouterr().err


def test_a_malformed_request_line_gets_400(reports, serve, capsys):
    port = serve(reports).port
    status, headers, _ = raw(port, b"GARBAGE\r\n\r\n")
    assert status == 400 and headers["x-content-type-options"] == "nosniff"
    assert raw(port, b"GET / HTTP/1.0 extra\r\n\r\n")[0] == 400
    assert raw(port, b"GET / HTTP/9.9\r\n\r\n")[0] in (400, 505)
    assert raw(port, b"GET /\x00 HTTP/1.0\r\n\r\n")[0] == 400
    assert "Traceback" not in capsys.readouterr().err


def test_an_index_html_folder_or_unreadable_file_never_crashes_it(reports, serve, capsys):
    (reports / "weird").mkdir()
    (reports / "weird" / "index.html").mkdir()
    (reports / "weird" / "index.html" / "x.txt").write_text("x")
    port = serve(reports).port
    status, _headers, body = get(port, "/weird/")
    assert status == 404 and b"File not found" in body
    assert b"x.txt" not in body
    assert get(port, "/weird/index.html/")[0] == 404
    assert get(port, "/")[0] == 200
    assert "Traceback" not in capsys.readouterr().err


def test_a_read_only_reports_folder_is_served_as_it_is():
    """``eil-run serve`` by a user who may read the folder but not write it (as root,
    the server runs as ``nobody`` through ``setpriv``: root writes anywhere)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            reason = "running as root without setpriv (util-linux): cannot make a folder read-only"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    # Outside pytest's per-user temp folder, which only its owner may enter.
    top = Path(tempfile.mkdtemp(prefix="eil-serve-ro-"))
    try:
        top.chmod(0o755)
        reports = top / "reports"
        (reports / "sales").mkdir(parents=True)
        (reports / "sales" / "2026-11-28.md").write_text("# Sales\n")
        (reports / "sales" / "secret.md").write_text("# Not for you\n")
        (reports / "sales" / "secret.md").chmod(0)
        (reports / "closed").mkdir()
        (reports / "closed" / "x.md").write_text("x")
        (reports / "closed").chmod(0)
        for folder in (reports, reports / "sales"):
            folder.chmod(0o555)
        command = [sys.executable, "-m", "eil_pipelines", "serve", "--port", "0"]
        proc = subprocess.Popen(
            [*prefix, *command, "--reports", str(reports)],
            cwd=top,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            assert ready, "eil-run serve printed nothing within 60 s"
            first = proc.stdout.readline()
            match = re.search(r"at http://127\.0\.0\.1:(\d+)/ ", first)
            assert match, (first, proc.stderr.read() if proc.poll() is not None else "")
            port = int(match.group(1))
            assert get(port, "/sales/2026-11-28.md")[2] == b"# Sales\n"
            assert get(port, "/sales/secret.md")[0] == 404
            assert get(port, "/closed/x.md")[0] == 404
            assert get(port, "/")[0] == 404  # no index could be written
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0, err
        assert "eil-run serve: could not rebuild the site index: " in err
        assert "Traceback" not in err and "internal error" not in err
    finally:
        for folder in (top, *top.rglob("*")):
            if not folder.is_symlink():
                folder.chmod(0o755)
        shutil.rmtree(top)


def test_a_site_that_cannot_be_rebuilt_is_served_as_it_is(reports, capsys):
    (reports / "index.html").unlink()
    (reports / "index.html").mkdir()  # build_site cannot write the index
    running = Running(make_server(reports, "127.0.0.1", 0))
    try:
        assert "could not rebuild the site index" in capsys.readouterr().err
        assert get(running.port, "/")[0] == 404
        assert get(running.port, "/sales/2026-11-28.md")[0] == 200
    finally:
        running.stop()


@pytest.mark.parametrize(
    ("method", "target", "status"),
    [
        ("GET", "/", 200),
        ("GET", "/sales/2026-11-28.md", 200),
        ("HEAD", "/", 200),
        ("GET", "/nope.html", 404),
        ("GET", "/bare/", 404),
        ("GET", "/%00", 400),
        ("POST", "/", 405),
        ("GET", "/sales", 301),
    ],
)
def test_every_response_carries_the_security_headers(reports, serve, method, target, status):
    port = serve(reports).port
    got, headers, _ = get(port, target, method)
    assert got == status
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-cache"
    assert headers.get("server", "eil-pipelines") == "eil-pipelines"


def test_binding_beyond_loopback_warns_to_use_a_proxy():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert exposure_warning(host) is None, host
    for host in ("0.0.0.0", "::", "192.168.1.5", "reports.example.com"):
        warning = exposure_warning(host)
        assert warning is not None and "\n" not in warning
        assert warning.startswith(f"eil-run serve: warning: listening on {host} ")
        assert "reverse proxy" in warning
