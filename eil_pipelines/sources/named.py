"""Opening a named connection of ``eil.toml`` (``source = "warehouse"``).

The connection's settings are read from ``eil.toml`` (with ``.env`` and the
target's overrides), and the engine module opens it: DuckDB and SQLite as
today, Postgres and MySQL/MariaDB through the process's pool for that name,
anything else through SQLAlchemy (one engine per name, its own pool).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import EilError
from ..spec.loader import resolve_path
from ..spec.project import ConnectionSettings, ProjectSettings, load_project_settings
from .pool import ConnectionPool, pool_for


def connection_settings(
    name: str,
    root: Path,
    *,
    env: Mapping[str, str] | None = None,
    target: str | None = None,
    settings: ProjectSettings | None = None,
) -> ConnectionSettings:
    """The settings of connection ``name``; an :class:`EilError` naming it when unknown."""
    if settings is None:
        settings = load_project_settings(root, env=env, target=target)
    found = settings.connections.get(name)
    if found is None:
        defined = ", ".join(sorted(settings.connections)) or "none"
        raise EilError(f'no connection named "{name}" in eil.toml (connections defined: {defined})')
    return found


def open_named(
    pipeline: str,
    name: str,
    root: Path,
    *,
    env: Mapping[str, str] | None = None,
    target: str | None = None,
    pooled: bool = True,
) -> Any:
    """A :class:`~eil_pipelines.sources.Source` for one run of ``pipeline`` on connection ``name``."""
    from . import DuckDBSource, SQLiteSource

    settings = connection_settings(name, root, env=env, target=target)
    engine = settings.engine
    if engine == "duckdb":
        return DuckDBSource(
            pipeline, root, resolve_path(root, settings.path) if settings.path else None
        )
    if engine == "sqlite":
        assert settings.path is not None  # the model requires it
        return SQLiteSource(pipeline, resolve_path(root, settings.path))
    assert settings.url is not None
    if engine == "postgres":
        from . import postgres as module
        from .postgres import PostgresSource as cls
    elif engine == "mysql":
        from . import mysql as module  # type: ignore[no-redef]
        from .mysql import MySQLSource as cls  # type: ignore[assignment]
    else:
        from .alchemy import AlchemySource

        return AlchemySource(
            pipeline,
            name,
            settings.url,
            statement_timeout=settings.statement_timeout,
            engine=_alchemy_engine(name, settings, pipeline),
        )
    if not pooled:
        return cls(pipeline, name, settings.url, statement_timeout=settings.statement_timeout)
    url = settings.url

    def make() -> ConnectionPool:
        return ConnectionPool(
            name,
            settings.pool_size,
            connect=lambda: module.connect(name, url, pipeline=None),
            alive=module.alive,
            # Postgres closes the ADBC connection that goes with a psycopg one too.
            close=getattr(module, "close", lambda conn: conn.close()),
        )

    pool = pool_for((engine, name, url, settings.pool_size), make)
    conn = pool.acquire()
    try:
        return cls(
            pipeline,
            name,
            url,
            statement_timeout=settings.statement_timeout,
            connection=conn,
            on_close=lambda source: pool.release(source.connection, source.clean),
        )
    except BaseException:
        pool.release(conn, clean=False)
        raise


_engines: dict[tuple[str, str], Any] = {}
_engines_lock = threading.Lock()


def _alchemy_engine(name: str, settings: ConnectionSettings, pipeline: str) -> Any:
    from .alchemy import create_engine

    assert settings.url is not None
    key = (name, settings.url)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = create_engine(
                name, settings.url, pipeline=pipeline, pool_size=settings.pool_size
            )
        return engine
