"""``eil-run ledger init|migrate|check [PATH]``: set up and move the run ledger.

``init`` creates the Postgres ledger's tables (``[ledger] url`` of
``eil.toml``, or ``--url``) and prints the grants a runner's role needs;
``migrate --to URL`` copies the project's SQLite ledger into Postgres
(idempotent); ``check --to URL`` says whether both hold the same keys.
The logic is in :mod:`eil_pipelines.app.ledger_admin`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import UsageError
from .common import Parser, add_path, reports_dir_for
from .exitcodes import EXIT_FAILED, EXIT_OK


def build_ledger_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run ledger ACTION [PATH]``."""
    parser = Parser(
        prog="eil-run ledger",
        description="Set up the run ledger shared by several runners, or move a SQLite "
        "ledger into it.  URLs are best given as ${ENV_VAR} in eil.toml or the environment: "
        "a password on the command line is seen by other users of the machine.",
    )
    parser.add_argument("action", choices=("init", "migrate", "check"), help="what to do")
    add_path(parser)
    parser.add_argument(
        "--url",
        "--to",
        dest="url",
        metavar="URL",
        help="the postgresql:// ledger (default: [ledger] url of eil.toml); "
        "a value ${NAME} is read from the environment",
    )
    parser.add_argument(
        "--grant",
        metavar="ROLE",
        default="eil_runner",
        help="init: the role named in the printed grants (default: eil_runner)",
    )
    parser.add_argument("--reports", metavar="DIR", help="reports folder holding the SQLite ledger")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    return parser


def _url(options: argparse.Namespace) -> str:
    from ..app.ledger_admin import ledger_settings
    from ..spec.loader import project_root_for

    text = options.url
    if text is not None:
        text = text.strip()
        if text.startswith("${") and text.endswith("}"):
            name = text[2:-1]
            if name not in os.environ:
                raise UsageError(f"eil-run ledger: --url {text}: {name} is not set")
            text = os.environ[name]
        return text
    url, _lease = ledger_settings(project_root_for(Path(options.path)))
    if url is None:
        raise UsageError(
            f"eil-run ledger {options.action}: no Postgres ledger: set [ledger] url in eil.toml "
            "or give --url postgresql://…"
        )
    return url


def cmd_ledger(options: argparse.Namespace) -> int:
    """Run one ledger action and print its outcome."""
    from ..app import ledger_path
    from ..app.ledger_admin import check_ledgers, init_ledger, migrate_ledger, runner_grants

    url = _url(options)
    if options.action == "init":
        print(init_ledger(url))
        print("A runner's role needs only these privileges:")
        for statement in runner_grants(options.grant):
            print(f"  {statement};")
        return EXIT_OK
    sqlite_file = ledger_path(reports_dir_for(options))
    if options.action == "migrate":
        done = migrate_ledger(sqlite_file, url)
        print(
            f"copied {done.runs} runs, {done.outbox} messages, {done.delivery_state} delivery "
            f"states and {done.leases} leases from {sqlite_file} (rows already there were kept)"
        )
        return EXIT_OK
    result = check_ledgers(sqlite_file, url)
    if result.same:
        print(f"{sqlite_file} and the Postgres ledger hold the same keys")
        return EXIT_OK
    for key in result.only_in_sqlite:
        print(f"only in {sqlite_file}: {key}")
    for key in result.only_in_postgres:
        print(f"only in Postgres: {key}")
    return EXIT_FAILED
