"""``eil-run serve [PATH]``: serve the reports folder and the live status pages
until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from ..app.storage import mirror_for_serve
from ..errors import UsageError
from ..web.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_THREADS,
    DEFAULT_TIMEOUT,
    exposure_warning,
    make_server,
)
from ..web.status import StatusSite
from .common import DEFAULT_PATH, Parser, add_debug, add_path, reports_dir_for
from .exitcodes import EXIT_CONFIG, EXIT_OK
from .signals import stop_on_signals


def build_serve_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run serve [PATH]``."""
    parser = Parser(
        prog="eil-run serve",
        description="Serve the reports folder (the report site) and the live status pages "
        "(/status/, /api/status) over HTTP.  Binds to 127.0.0.1 unless --host says otherwise; "
        "Ctrl-C stops it.",
    )
    add_path(parser)
    parser.add_argument(
        "--pipelines",
        metavar="PATH",
        help="the pipelines folder the status pages show (default: PATH, else pipelines/ "
        "beside the reports folder)",
    )
    parser.add_argument(
        "--allow-run",
        action="store_true",
        help='turn on the status page\'s "run now" (from this machine, or with [serve] '
        "run_token of eil.toml); the running scheduler runs it",
    )
    parser.add_argument("--no-status", action="store_true", help="serve the report site only")
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
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="drop a connection silent this long, mid-request or idle "
        f"(default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        metavar="N",
        help=f"worker threads answering requests; more connections wait (default: {DEFAULT_THREADS})",
    )
    parser.add_argument(
        "--reports", metavar="DIR", help="reports folder (default: [storage] or reports/)"
    )
    add_debug(parser)
    return parser


def cmd_serve(options: argparse.Namespace) -> int:
    """Serve the reports folder until Ctrl-C (exit 0)."""
    if not 0 <= options.port <= 65535:
        raise UsageError("eil-run serve: --port must be between 0 and 65535")
    if not options.timeout > 0:
        raise UsageError("eil-run serve: --timeout must be more than 0 seconds")
    if options.threads < 1:
        raise UsageError("eil-run serve: --threads must be 1 or more")
    reports = reports_dir_for(options)
    mirror = mirror_for_serve(Path(options.path), reports)
    status = None if options.no_status else _status_site(options, reports)
    try:
        server = make_server(
            reports,
            options.host,
            options.port,
            timeout=options.timeout,
            threads=options.threads,
            status=status,
        )
    except OSError as exc:
        print(
            f"eil-run serve: cannot listen on {options.host}:{options.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    host, port = str(server.server_address[0]), server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    warning = exposure_warning(host)
    if warning:
        print(warning, file=sys.stderr, flush=True)

    # Ctrl-C and SIGTERM (a service manager, a test harness) both stop cleanly; the
    # handlers are set explicitly, since a shell starts background jobs with SIGINT
    # ignored and `kill -INT` should stop the server there too.
    with stop_on_signals(threading.Event()) as stop, mirror:
        threading.Thread(target=server.serve_forever, name="eil-serve", daemon=True).start()
        source = mirror.source or reports
        print(f"Serving {source} at http://{shown}:{port}/ (Ctrl-C stops)", flush=True)
        if status is not None:
            run = "on" if status.allow_run else "off (--allow-run turns it on)"
            print(f"Status at http://{shown}:{port}/status/ (run now: {run})", flush=True)
        while not stop.wait(0.5):
            pass
        server.shutdown()
    server.server_close()
    print("Stopped.", flush=True)
    return EXIT_OK


def _status_site(options: argparse.Namespace, reports: Path) -> StatusSite:
    """The status pages' settings: the pipelines folder and, with ``--allow-run``,
    the run token of ``eil.toml`` (read only then, so serving never needs its secrets)."""
    from ..spec.loader import project_root_for
    from ..spec.project import load_project_settings

    if options.pipelines:
        pipelines = Path(options.pipelines)
    elif options.path != DEFAULT_PATH or options.reports is None:
        pipelines = Path(options.path)
    else:
        pipelines = reports.parent / DEFAULT_PATH
    token = None
    if options.allow_run:
        token = load_project_settings(project_root_for(pipelines)).serve.run_token
    return StatusSite(pipelines, reports, allow_run=options.allow_run, run_token=token)
