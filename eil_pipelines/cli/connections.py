"""``eil-run connections [PATH]``: each named connection of ``eil.toml``, tested."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import Parser, add_debug, add_path, add_target
from .exitcodes import EXIT_CONFIG, EXIT_OK


def build_connections_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run connections``."""
    parser = Parser(
        prog="eil-run connections",
        description="Test every connection named in eil.toml: connect, ask the server's "
        "version, check that writes are refused.  Exit 2 when one has a problem.",
    )
    add_path(parser)
    add_target(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    add_debug(parser)
    return parser


def cmd_connections(options: argparse.Namespace) -> int:
    """Print each connection's check; exit 2 when any has a problem."""
    from ..app.connections import check_project_connections

    checks = check_project_connections(Path(options.path), target=options.target)
    failed = any(check.problems or not check.ok for check in checks)
    if options.format == "json":
        print(json.dumps([check.as_dict() for check in checks], indent=2))
        return EXIT_CONFIG if failed else EXIT_OK
    if not checks:
        print("No connections in eil.toml: pipelines use the embedded DuckDB.")
        return EXIT_OK
    for check in checks:
        state = "ok" if check.ok and not check.problems else "FAILED"
        read_only = {True: "read-only", False: "WRITABLE", None: "read-only: unknown"}
        details = [check.engine, check.where, check.server_version, read_only[check.read_only]]
        shown = ", ".join(d for d in details if d)
        print(f"{check.name}: {state} ({shown}; {check.seconds:.2f}s)")
        for problem in check.problems:
            print(f"  {problem}", file=sys.stderr)
    return EXIT_CONFIG if failed else EXIT_OK
