"""Real PostgreSQL and MariaDB servers for the tests, from Debian's packages.

Each server runs as a non-root user (``eil-test`` when the tests run as root,
as CI does: PostgreSQL refuses to start as root), listens on 127.0.0.1 on a
free port with its socket under a private temporary folder, and is stopped
by its fixture's finalizer and by ``atexit`` (the whole process group), so
an interrupted test session leaves nothing behind.  Readiness is a
connection that succeeds, polled with a generous deadline.

The fixture data set is the sample orders (``data/orders.parquet``), loaded
into a table ``orders`` of database ``analytics``.  Roles:

* the admin (``eil_admin``) who owns everything;
* ``reader``: may read ``orders`` (the role a project should use);
* ``outsider``: may connect but has no grant on ``orders``.

Their passwords contain :data:`MARKER`, which a test searches for in messages.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ORDERS = REPO / "data" / "orders.parquet"

#: A recognisable secret: it must never appear in a message, log or file.
MARKER = "Mk7-SECRET-pw"
ADMIN_PASSWORD = f"admin-{MARKER}"
READER_PASSWORD = f"reader-{MARKER}"
OUTSIDER_PASSWORD = f"outsider-{MARKER}"
DATABASE = "analytics"
TEST_USER = "eil-test"

_running: list[Server] = []


def need(tool: str, found: bool) -> None:
    """Skip (or fail under ``CI``) when a server's binaries are missing."""
    if found:
        return
    reason = f"{tool} is not installed (bash scripts/setup-test-env.sh installs it)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user() -> list[str]:
    """The command prefix that drops root to the test user (nothing when not root)."""
    if os.getuid() != 0:
        return []
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        pytest.fail(
            f'the tests run as root and user "{TEST_USER}" does not exist: '
            "run bash scripts/setup-test-env.sh"
        )
    return ["runuser", "-u", TEST_USER, "--"]


def _private_dir(prefix: str) -> Path:
    # Under /tmp itself: pytest's own temp folders are private to root.
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.getuid() == 0:
        shutil.chown(path, TEST_USER, TEST_USER)
    return path


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    """Poll ``predicate`` until it returns a true value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:
            last = exc
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not happen in {timeout:.0f}s (last error: {last})")


@dataclass
class Server:
    """One running database server process."""

    engine: str
    base: Path
    port: int
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)
    ready: Callable[[], Any] | None = None

    def __post_init__(self) -> None:
        self.log = self.base / "server.log"

    def start(self) -> None:
        """Start the process in its own session and wait until it takes connections."""
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [*_as_user(), *self.command],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        if self not in _running:
            _running.append(self)

        def up() -> Any:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.engine} exited ({self.process.returncode}): {self.tail()}"
                )
            assert self.ready is not None
            return self.ready()

        try:
            wait_until(up, f"{self.engine} accepting connections")
        except BaseException:
            self.stop()
            raise

    def tail(self) -> str:
        """The end of the server's log, for failure messages."""
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server: a polite signal, then the whole process group."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)  # Postgres: fast shutdown
            if self.engine == "mariadb":
                os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def restart(self) -> None:
        """Stop and start again on the same port and data (connections die)."""
        self.stop()
        self.start()

    def remove(self) -> None:
        """Stop and delete the data folder."""
        self.stop()
        if self in _running:
            _running.remove(self)
        shutil.rmtree(self.base, ignore_errors=True)


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.remove()


# --- PostgreSQL -------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """Debian's newest PostgreSQL binaries folder, or ``None``."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=_version_key)
    if found:
        return Path(found[-1]).parent
    which = shutil.which("postgres")
    return Path(which).resolve().parent if which else None


def _version_key(path: str) -> tuple[int, ...]:
    part = Path(path).parts[-3]
    return tuple(int(p) for p in part.split(".") if p.isdigit())


@dataclass
class PostgresServer:
    """A running PostgreSQL with the fixture data loaded."""

    server: Server

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1."""
        return self.server.port

    def url(self, user: str = "reader", password: str = READER_PASSWORD, db: str = DATABASE) -> str:
        """A ``postgresql://`` URL for ``user``."""
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{db}"

    def admin(self, db: str = DATABASE, autocommit: bool = True) -> Any:
        """A psycopg connection as the admin."""
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user="eil_admin",
            password=ADMIN_PASSWORD,
            dbname=db,
            autocommit=autocommit,
            connect_timeout=5,
        )


def start_postgres() -> PostgresServer:
    """initdb, start, create the roles and load the orders."""
    bindir = postgres_bin()
    need("PostgreSQL (Debian package postgresql)", bindir is not None)
    assert bindir is not None
    base = _private_dir("eil-pg-")
    data = base / "data"
    pwfile = base / "pw"
    pwfile.write_text(ADMIN_PASSWORD + "\n")
    if os.getuid() == 0:
        shutil.chown(pwfile, TEST_USER, TEST_USER)
    subprocess.run(
        [
            *_as_user(),
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "eil_admin",
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = Server(
        "postgres",
        base,
        port,
        [
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(base),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "synchronous_commit=off",
        ],
    )
    pg = PostgresServer(server)

    def ready() -> bool:
        with pg.admin(db="postgres"):
            return True

    server.ready = ready
    server.start()
    _load_postgres(pg)
    return pg


def _orders_frame() -> Any:
    import duckdb

    return duckdb.sql(f"SELECT * FROM '{ORDERS}' ORDER BY order_id").df()


def _orders_rows() -> tuple[list[str], list[tuple[Any, ...]]]:
    import duckdb

    rel = duckdb.sql(f"SELECT * FROM '{ORDERS}' ORDER BY order_id")
    return list(rel.columns), rel.fetchall()


def _orders_types() -> list[tuple[str, str]]:
    import duckdb

    return [(r[0], r[1]) for r in duckdb.sql(f"DESCRIBE SELECT * FROM '{ORDERS}'").fetchall()]


_PG_TYPES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "DOUBLE": "double precision",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "BOOLEAN": "boolean",
    "FLOAT": "real",
}


def _load_postgres(pg: PostgresServer) -> None:
    with pg.admin(db="postgres") as conn:
        conn.execute(f"CREATE DATABASE {DATABASE}")
        conn.execute(f"CREATE ROLE reader LOGIN PASSWORD '{READER_PASSWORD}'")
        conn.execute(f"CREATE ROLE outsider LOGIN PASSWORD '{OUTSIDER_PASSWORD}'")
    columns, rows = _orders_rows()
    types = dict(_orders_types())
    ddl = ", ".join(f"{c} {_PG_TYPES.get(types[c], 'text')}" for c in columns)
    with pg.admin() as conn:
        conn.execute(f"CREATE TABLE orders ({ddl})")
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY orders ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        conn.execute("CREATE TABLE secrets (note text)")
        conn.execute("INSERT INTO secrets VALUES ('hidden')")
        conn.execute("GRANT SELECT ON orders TO reader")
        conn.execute("ANALYZE orders")


# --- MariaDB ----------------------------------------------------------------------


def mariadb_bins() -> tuple[str, str] | None:
    """``(mariadb-install-db, mariadbd)`` paths, or ``None``."""
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    daemon = (
        shutil.which("mariadbd")
        or shutil.which("mysqld")
        or next(iter(glob.glob("/usr/sbin/mariadbd")), None)
    )
    return (install, daemon) if install and daemon else None


@dataclass
class MariaDBServer:
    """A running MariaDB with the fixture data loaded."""

    server: Server
    socket_path: Path

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1."""
        return self.server.port

    def url(self, user: str = "reader", password: str = READER_PASSWORD, db: str = DATABASE) -> str:
        """A ``mysql://`` URL for ``user``."""
        return f"mysql://{user}:{password}@127.0.0.1:{self.port}/{db}"

    def admin(self, db: str | None = DATABASE, local_infile: bool = False) -> Any:
        """A PyMySQL connection as root over the unix socket."""
        import pymysql

        return pymysql.connect(
            local_infile=local_infile,
            unix_socket=str(self.socket_path),
            user="root",
            database=db,
            autocommit=True,
            connect_timeout=5,
        )


def start_mariadb() -> MariaDBServer:
    """mariadb-install-db, start, create the users and load the orders."""
    bins = mariadb_bins()
    need("MariaDB (Debian package mariadb-server)", bins is not None)
    assert bins is not None
    install, daemon = bins
    base = _private_dir("eil-maria-")
    data = base / "data"
    sock = base / "mysqld.sock"
    common = [
        "--no-defaults",
        f"--datadir={data}",
    ]
    subprocess.run(
        [
            *_as_user(),
            install,
            *common,
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = Server(
        "mariadb",
        base,
        port,
        [
            daemon,
            *common,
            f"--socket={sock}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={base / 'mysqld.pid'}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-buffer-pool-size=64M",
            "--performance-schema=OFF",
        ],
    )
    maria = MariaDBServer(server, sock)

    def ready() -> bool:
        with contextlib.closing(maria.admin(db=None)):
            return True

    server.ready = ready
    server.start()
    _load_mariadb(maria)
    return maria


_MY_TYPES = {
    "VARCHAR": "varchar(64)",
    "BIGINT": "bigint",
    "INTEGER": "int",
    "DOUBLE": "double",
    "DATE": "date",
    "TIMESTAMP": "datetime",
    "BOOLEAN": "boolean",
    "FLOAT": "float",
}


def _load_mariadb(maria: MariaDBServer) -> None:
    with contextlib.closing(maria.admin(db=None)) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {DATABASE}")
        cur.execute(f"CREATE USER 'reader'@'%' IDENTIFIED BY '{READER_PASSWORD}'")
        cur.execute(f"CREATE USER 'outsider'@'%' IDENTIFIED BY '{OUTSIDER_PASSWORD}'")
    columns, rows = _orders_rows()
    types = dict(_orders_types())
    ddl = ", ".join(f"{c} {_MY_TYPES.get(types[c], 'text')}" for c in columns)
    # LOAD DATA from a CSV that DuckDB writes: a minute faster than executemany.
    import duckdb

    csv = maria.server.base / "orders.csv"
    duckdb.execute(
        f"COPY (SELECT * FROM '{ORDERS}' ORDER BY order_id) TO '{csv}' "
        "(HEADER false, NULLSTR '\\N')"
    )
    with contextlib.closing(maria.admin(local_infile=True)) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE orders ({ddl})")
        cur.execute("CREATE TABLE secrets (note text)")
        cur.execute("INSERT INTO secrets VALUES ('hidden')")
        cur.execute(
            f"LOAD DATA LOCAL INFILE %s INTO TABLE orders FIELDS TERMINATED BY ',' "
            f"OPTIONALLY ENCLOSED BY '\"' ({', '.join(columns)})",
            (str(csv),),
        )
        cur.execute("SELECT count(*) FROM orders")
        assert cur.fetchone()[0] == len(rows)
        cur.execute(f"GRANT SELECT ON {DATABASE}.orders TO 'reader'@'%'")
        cur.execute("GRANT USAGE ON *.* TO 'outsider'@'%'")
        cur.execute(f"GRANT SELECT ON {DATABASE}.secrets TO 'outsider'@'%'")
