"""``eil-run serve [PATH]``: the reports folder over HTTP, for a quick look.

The standard library's threading HTTP server serves the folder as files; it
binds to the loopback address unless told otherwise, refuses the engine's own
files (``.eil/``: the run ledger, status records, locks) and anything else
whose name starts with a dot, and rebuilds the report site once at start so
``/`` shows the index even for reports written before the site existed.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .cli import EXIT_CONFIG, EXIT_OK, UsageError, _add_path, _Parser
from .errors import EilError

DEFAULT_PORT = 8000
DEFAULT_HOST = "127.0.0.1"


def build_serve_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run serve [PATH]``."""
    parser = _Parser(
        prog="eil-run serve",
        description="Serve the reports folder (the report site) over HTTP for a quick look. "
        "Binds to 127.0.0.1 unless --host says otherwise; Ctrl-C stops it.",
    )
    _add_path(parser)
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        metavar="N",
        help=f"TCP port (default: {DEFAULT_PORT}; 0 picks a free one and prints it)",
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        metavar="ADDRESS",
        help=f"address to listen on (default: {DEFAULT_HOST}, this machine only)",
    )
    parser.add_argument(
        "--reports", metavar="DIR", help="reports folder (default: reports/ beside PATH's folder)"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    return parser


class ReportsHandler(SimpleHTTPRequestHandler):
    """Static files from the reports folder, minus hidden ones, never cached."""

    extensions_map = {  # noqa: RUF012 - the base class's documented extension point
        **SimpleHTTPRequestHandler.extensions_map,
        ".md": "text/markdown; charset=utf-8",
        ".html": "text/html; charset=utf-8",
        ".json": "application/json",
        ".csv": "text/csv; charset=utf-8",
        ".parquet": "application/vnd.apache.parquet",
        ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }

    def send_head(self) -> Any:
        """Refuse hidden paths (``.eil/``, staging folders) before serving anything."""
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        from urllib.parse import unquote

        if any(part.startswith(".") for part in unquote(path).split("/") if part):
            self.send_error(404, "File not found")
            return None
        return super().send_head()

    def end_headers(self) -> None:
        # Reports change under the same URL (latest.html, the index): always revalidate.
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} - {format % args}\n")


def cmd_serve(options: argparse.Namespace) -> int:
    """``eil-run serve``: serve the reports folder until Ctrl-C (exit 0)."""
    import signal

    from .cli import reports_dir_for
    from .outputs.site import build_site

    if not 0 <= options.port <= 65535:
        raise UsageError("eil-run serve: --port must be between 0 and 65535")
    reports = reports_dir_for(options)
    if not reports.is_dir():
        raise EilError(
            f"serve: no reports folder at {reports}: run `eil-run --once` first, "
            "or name the folder with --reports"
        )
    build_site(reports)
    handler = partial(ReportsHandler, directory=str(reports))
    try:
        server = ThreadingHTTPServer((options.host, options.port), handler)
    except OSError as exc:
        print(
            f"eil-run serve: cannot listen on {options.host}:{options.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    server.daemon_threads = True
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else host

    # Ctrl-C and SIGTERM (a service manager, a test harness) both stop cleanly.  The
    # SIGINT handler is set explicitly: a shell starts background jobs with SIGINT
    # ignored, and `kill -INT` should stop the server there too.
    def on_stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGTERM, on_stop)
        print(f"Serving {reports} at http://{shown}:{port}/ (Ctrl-C stops)", flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print("Stopped.", flush=True)
    return EXIT_OK
