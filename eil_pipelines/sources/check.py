"""``eil-run connections``: each named connection tested, problems as ``file: key: message``.

The CLI prints what :func:`check_connections` returns (or its ``as_dict()``
as JSON); nothing here prints.  A check opens its own connection (never a
pooled one), asks for the server version, checks that a write is refused
(or that the user holds no write grant), and closes it.  Messages never hold
the URL or a password.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, EilError
from ..spec.loader import PROJECT_FILE, display_path
from ..spec.project import ConnectionSettings, load_project_settings
from .server import ServerURL, redact


@dataclass
class ConnectionCheck:
    """What testing one named connection found."""

    name: str
    """The connection's name in ``eil.toml``."""
    engine: str
    """``postgres``, ``mysql``, ``sqlalchemy``, ``duckdb`` or ``sqlite``."""
    where: str = ""
    """``host:port`` or the file, never the URL."""
    ok: bool = False
    """Whether it connected and answered."""
    server_version: str = ""
    """What the server says it is."""
    read_only: bool | None = None
    """Whether writes are refused (``None``: could not tell)."""
    seconds: float = 0.0
    """How long the check took."""
    problems: list[str] = field(default_factory=list)
    """``file: key: message`` lines."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return {
            "name": self.name,
            "engine": self.engine,
            "where": self.where,
            "ok": self.ok,
            "server_version": self.server_version,
            "read_only": self.read_only,
            "seconds": round(self.seconds, 3),
            "problems": list(self.problems),
        }


def check_connections(
    root: Path | str, env: Mapping[str, str] | None = None, target: str | None = None
) -> list[ConnectionCheck]:
    """Test every connection of ``<root>/eil.toml``; raises :class:`ConfigError` when the
    file itself is invalid."""
    root = Path(root).resolve()
    settings = load_project_settings(root, env=env, target=target)
    shown = display_path(root / PROJECT_FILE)
    return [
        _check(name, conn, root, shown, settings.secrets(), env, target)
        for name, conn in sorted(settings.connections.items())
    ]


def _check(
    name: str,
    conn: ConnectionSettings,
    root: Path,
    shown: str,
    secrets: list[str],
    env: Mapping[str, str] | None,
    target: str | None,
) -> ConnectionCheck:
    from .named import open_named

    engine = conn.engine
    check = ConnectionCheck(name=name, engine=engine)
    if conn.url:
        try:
            check.where = ServerURL.parse(conn.url).where
        except ValueError:
            check.where = "?"
    else:
        check.where = conn.path or ":memory:"
    started = time.monotonic()
    key = f"connections.{name}"
    try:
        source = open_named("connections", name, root, env=env, target=target, pooled=False)
    except (EilError, ConfigError) as exc:
        detail = getattr(exc, "detail", None) or str(exc)
        check.problems.append(f"{shown}: {key}: {redact(detail, secrets)}")
        check.seconds = time.monotonic() - started
        return check
    try:
        version = getattr(source, "server_version", None)
        check.server_version = version() if version else _embedded_version(source)
        read_only_check = getattr(source, "read_only_check", None)
        problem = read_only_check() if read_only_check else None
        check.read_only = problem is None if engine != "sqlalchemy" else None
        if problem:
            check.problems.append(f"{shown}: {key}: {redact(problem, secrets)}")
        check.ok = True
    except EilError as exc:
        check.problems.append(f"{shown}: {key}: {redact(str(exc), secrets)}")
    finally:
        source.close()
        check.seconds = time.monotonic() - started
    return check


def _embedded_version(source: Any) -> str:
    if source.kind == "duckdb":
        import duckdb

        return f"DuckDB {duckdb.__version__}"
    import sqlite3

    return f"SQLite {sqlite3.sqlite_version}"
