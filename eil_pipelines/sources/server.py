"""What the server engines share: drivers as extras, redaction, connection errors.

A server source (Postgres, MySQL/MariaDB, SQLAlchemy) is opened from a named
connection of ``eil.toml``.  Its URL holds credentials, so nothing here ever
puts the URL, the user's password or the driver's raw connection message
unredacted into an error.
"""

from __future__ import annotations

import importlib
import re
import threading
from dataclasses import dataclass
from datetime import timedelta
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import EilError
from . import Source

#: Connection failures are reported after this long at most.
CONNECT_TIMEOUT = timedelta(seconds=10)


_versions: dict[str, str] = {}


def remember_version(connection: str, version: str) -> None:
    """Note the server version a connection last reported (for the run manifest)."""
    _versions[connection] = version


def version_seen(connection: str) -> str | None:
    """The server version connection ``connection`` reported last in this process."""
    return _versions.get(connection)


class ConnectionFailed(EilError):
    """A named connection could not be opened (auth, host, database, driver)."""

    def __init__(self, connection: str, message: str, *, pipeline: str | None = None):
        self.connection = connection
        self.pipeline = pipeline
        self.detail = message
        where = f'pipeline "{pipeline}", ' if pipeline else ""
        super().__init__(f'{where}connection "{connection}": {message}')


class MissingDriver(ConnectionFailed):
    """The driver of a connection's engine is not installed."""


@dataclass(frozen=True)
class ServerURL:
    """The parts of a connection URL the messages may show (never the password)."""

    url: str
    scheme: str
    user: str | None
    password: str | None
    host: str | None
    port: int | None
    database: str | None

    @classmethod
    def parse(cls, url: str) -> ServerURL:
        """Split ``url``; a malformed one raises ``ValueError`` without echoing it."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ValueError("the URL is malformed (expected scheme://user@host:port/db)") from None
        return cls(
            url=url,
            scheme=parts.scheme,
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            host=parts.hostname,
            port=port,
            database=unquote(parts.path.lstrip("/")) or None,
        )

    @property
    def where(self) -> str:
        """``host:port`` for messages."""
        host = self.host or "localhost"
        return f"{host}:{self.port}" if self.port else host

    def secrets(self) -> list[str]:
        """Strings that must never be shown: the URL, and the password raw and quoted."""
        found = [self.url]
        if self.password:
            from urllib.parse import quote

            found += [self.password, quote(self.password, safe="")]
        return [s for s in found if s]


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret replaced by ``***``, longest first."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    # A URL with inline credentials that is not ours (a driver echoing a DSN).
    return re.sub(r"(\w+://[^:/@\s]+):[^@\s]+@", r"\1:***@", text)


def load_driver(module: str, extra: str, connection: str) -> ModuleType:
    """Import a driver module, or raise :class:`MissingDriver` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDriver(
            connection,
            f"the {module} driver is not installed: pip install 'eil-pipelines[{extra}]'",
        ) from None


def one_line(text: str) -> str:
    """A driver message made one line, its ``HINT``/``DETAIL`` parts kept."""
    return " ".join(part.strip() for part in str(text).strip().splitlines() if part.strip())


def line_of(sql: str, position: int | None) -> int | None:
    """The 1-based line of a 1-based character ``position`` in ``sql``."""
    if not position or position < 1:
        return None
    return sql.count("\n", 0, position - 1) + 1


class ServerSource(Source):
    """What the server engines share: one driver connection (opened here, or lent by a
    pool), the parsed URL, the statement timeout, and whether the connection is clean."""

    def __init__(
        self,
        pipeline: str,
        name: str,
        url: str,
        *,
        statement_timeout: timedelta | None = None,
        connection: Any = None,
        on_close: Any = None,
    ):
        super().__init__(pipeline)
        self.name = name
        self._url = ServerURL.parse(url)
        self.statement_timeout = statement_timeout
        self.connection = (
            connection if connection is not None else self._connect(name, url, pipeline=pipeline)
        )
        self._on_close = on_close
        self._interrupted = threading.Event()
        self.clean = True

    @staticmethod
    def _connect(name: str, url: str, *, pipeline: str | None = None) -> Any:
        """Open the engine's driver connection (each engine's module-level ``connect``)."""
        raise NotImplementedError
