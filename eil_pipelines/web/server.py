"""The reports folder over HTTP, for a quick look (``eil-run serve [PATH]``).

The standard library's threading HTTP server serves the folder as files; it
binds to the loopback address unless told otherwise, refuses the engine's own
files (``.eil/``: the run ledger, status records, locks) and anything else
whose name starts with a dot, and rebuilds the report site once at start so
``/`` shows the index even for reports written before the site existed.
"""

from __future__ import annotations

import sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ..errors import EilError
from ..outputs.site import build_site

DEFAULT_PORT = 8000
DEFAULT_HOST = "127.0.0.1"


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


def make_server(reports: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> Any:
    """A threading HTTP server for the reports folder, the report site rebuilt first.

    Raises :class:`EilError` when there is no reports folder; ``OSError`` when
    the address cannot be bound (the caller says so).
    """
    if not reports.is_dir():
        raise EilError(
            f"serve: no reports folder at {reports}: run `eil-run --once` first, "
            "or name the folder with --reports"
        )
    build_site(reports)
    handler = partial(ReportsHandler, directory=str(reports))
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
