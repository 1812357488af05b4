"""Open the ledger a setting names: :func:`open_ledger`.

A file path (or ``sqlite:///path``) is the SQLite ledger of one machine; a
``postgresql://`` URL is the Postgres ledger shared by several runners
(:class:`~eil_pipelines.ledger.postgres.PostgresLedger`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from eil_pipelines.errors import EilError

from .base import LedgerBackend
from .postgres import DEFAULT_LEASE, PostgresLedger, redact_url
from .sqlite import SqliteLedger

__all__ = ["POSTGRES_SCHEMES", "open_ledger", "redact_url"]

#: URL schemes of a Postgres ledger.
POSTGRES_SCHEMES = ("postgresql", "postgres")


def open_ledger(
    target: str | os.PathLike[str],
    *,
    display_path: str | None = None,
    read_only: bool = False,
    clock: Callable[[], datetime] | None = None,
    lease: timedelta | None = None,
    node: str | None = None,
    create: bool = True,
) -> LedgerBackend:
    """The ledger at ``target``: a file path, or a URL.

    A path (or a ``sqlite:///path`` URL) opens the SQLite ledger in that
    file (see :class:`~eil_pipelines.ledger.sqlite.SqliteLedger` for
    ``display_path``, ``read_only`` and ``clock``).  A ``postgresql://`` URL
    opens the Postgres ledger (``lease``, ``node`` and ``create``: see
    :class:`~eil_pipelines.ledger.postgres.PostgresLedger`; the driver comes
    with ``pip install 'eil-pipelines[postgres]'``).  Any other URL scheme
    raises :class:`EilError`.  Messages never show a URL's password.
    """
    text = os.fspath(target)
    if isinstance(target, str) and "://" in text:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme == "sqlite":
            # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy writes them.
            path = parts.path[1:] if parts.path.startswith("/") else parts.path
            if not path or parts.netloc:
                raise EilError(
                    f"ledger URL {redact_url(text)}: expected sqlite:///path/to/ledger.sqlite3"
                )
            return SqliteLedger(
                Path(path), display_path=display_path or path, read_only=read_only, clock=clock
            )
        if scheme in POSTGRES_SCHEMES:
            try:
                import psycopg  # noqa: F401
            except ImportError:
                raise EilError(
                    f"ledger URL {redact_url(text)}: the Postgres ledger needs psycopg: "
                    "pip install 'eil-pipelines[postgres]'"
                ) from None
            return PostgresLedger(
                text,
                display_path=display_path,
                read_only=read_only,
                lease=lease or DEFAULT_LEASE,
                node=node,
                create=create,
            )
        raise EilError(
            f"ledger URL {redact_url(text)}: unknown scheme {parts.scheme!r}; "
            "expected a file path or sqlite:///path"
        )
    return SqliteLedger(target, display_path=display_path, read_only=read_only, clock=clock)
