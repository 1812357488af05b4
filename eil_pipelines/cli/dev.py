"""``eil-run dev [PATH]``: a live preview of the reports on 127.0.0.1 while you edit them."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from .common import Parser, add_debug, add_path
from .exitcodes import EXIT_CONFIG, EXIT_OK
from .moments import parse_at
from .signals import stop_on_signals

DEFAULT_DEV_PORT = 8001


def build_dev_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run dev``."""
    parser = Parser(
        prog="eil-run dev",
        description="Serve a live preview of each pipeline's HTML report on 127.0.0.1: "
        "rendered on demand, and again whenever its TOML, SQL or template changes (the "
        "browser reloads by itself). Query results are cached, so a template edit "
        "re-renders without running the queries. Ctrl-C stops it.",
    )
    add_path(parser)
    parser.add_argument(
        "--at",
        metavar="DATETIME",
        help="render as if scheduled at this time, read in each pipeline's zone "
        "(default: the time dev started)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_DEV_PORT,
        metavar="N",
        help=f"TCP port on 127.0.0.1 (default: {DEFAULT_DEV_PORT}; 0 picks a free one)",
    )
    add_debug(parser)
    return parser


def cmd_dev(options: argparse.Namespace) -> int:
    """Serve the preview until Ctrl-C or SIGTERM (exit 0)."""
    from ..app.dev import DevSession
    from ..errors import UsageError
    from ..web.dev import DEV_HOST, make_dev_server

    if not 0 <= options.port <= 65535:
        raise UsageError("eil-run dev: --port must be between 0 and 65535")
    path = Path(options.path)
    if not path.exists():
        raise UsageError(f"eil-run dev: {path}: no such file or folder")
    at = parse_at(options.at) if options.at else None
    session = DevSession(path, at=at)
    try:
        server = make_dev_server(session, options.port)
    except OSError as exc:
        print(
            f"eil-run dev: cannot listen on {DEV_HOST}:{options.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    port = server.server_address[1]
    with stop_on_signals(threading.Event()) as stop:
        threading.Thread(target=server.serve_forever, name="eil-dev", daemon=True).start()
        watcher = threading.Thread(target=session.watch, args=(stop,), name="eil-dev-watch")
        watcher.start()
        print(f"Previewing {path} at http://{DEV_HOST}:{port}/ (Ctrl-C stops)", flush=True)
        for problem in session.problems():
            print(problem, file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
        server.shutdown()
        watcher.join()
    server.server_close()
    print("Stopped.", flush=True)
    return EXIT_OK
