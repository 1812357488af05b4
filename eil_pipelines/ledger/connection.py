"""The SQLite file behind the ledger: connections, WAL, the write lock, and errors.

Concurrency model
    The file is opened in WAL mode with a busy timeout of
    :data:`BUSY_TIMEOUT_S` seconds, so readers never block the writer and two
    ``eil-run`` processes may share it.  Every thread gets its own connection
    (connections are never shared across threads), and every write happens in
    a ``BEGIN IMMEDIATE`` transaction, which takes the write lock up front so
    a check-then-write can't interleave with another writer.

Creating the file
    A new ledger is built under a temporary name in the same folder and
    hard-linked into place, which fails when the name exists.  So the file at
    the ledger's path is always a complete ledger, and one that is empty (0
    bytes) or not ours is refused rather than silently taken for a new one.

Waiting for the lock
    A write that meets another process's write lock waits the busy timeout
    (SQLite's own handler); after that, what happens depends on the write.
    Claims and skips (the rows that record fire times) keep trying for
    ``lock_patience`` seconds (``None``: as long as the process lives; the
    scheduler's setting), so a ledger held by another process for longer
    than the busy timeout delays a fire time's row but never loses it.
    :meth:`~eil_pipelines.ledger.runs.SqliteRuns.finish` keeps trying as long
    as the process lives, whatever ``lock_patience`` says: a run that wrote
    its report must be recorded as such, not found ``running`` and marked
    abandoned later.  Other writes give up after the busy timeout
    (:class:`LedgerLockedError`).  One warning is logged when a write starts
    waiting, one when it gets through.

A full disk
    SQLite reports a full disk as "database or disk is full" (ENOSPC) and a
    write refused by a file-size limit or a quota (EFBIG, EDQUOT) as "disk
    I/O error".  Both become :class:`LedgerFullError`, whose message says
    which limit was met as far as the process can tell (the free space of
    the folder, the process's file-size limit); the CLI exits 3 for it.

Read-only
    ``read_only=True`` opens the file with ``mode=ro``: nothing is created,
    migrated or written, so ``history`` works on a folder the process can't
    write.  When SQLite can't create the WAL index next to the file (a
    read-only folder) and no write-ahead log is waiting, the file is read as
    immutable, since no process can be writing it either.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from .process import host_name
from .records import LedgerCorruptError, LedgerError, LedgerFullError, LedgerLockedError
from .schema import SCHEMA_VERSION, check_schema, migrate, to_text

__all__ = ["BUSY_TIMEOUT_S", "SqliteConnections"]

#: How long a write waits for another process's write lock before giving up
#: (or, for claims, skips and finishes, before it says so and keeps waiting).
BUSY_TIMEOUT_S = 5.0

#: ``_write(patience=FOREVER)``: keep waiting for the write lock while the process lives.
FOREVER = float("inf")

#: Between two tries of a write whose busy timeout ran out (SQLite's handler
#: sleeps inside each try; this only keeps a lock that fails fast from spinning).
_LOCK_RETRY_PAUSE = 0.05

#: Free space below which a failed write is put down to a full disk.
_NEARLY_FULL = 1 << 20

log = logging.getLogger("eil_pipelines.ledger")

# Extended result codes: the WAL index (-shm) can't be created next to a
# read-only file, in a folder we can't write.
_SQLITE_READONLY_CANTINIT = 1288
_SQLITE_READONLY_DIRECTORY = 1544
# "disk I/O error" while writing, syncing, growing or truncating: what a
# write refused by a file-size limit or a quota (EFBIG, EDQUOT) comes out as.
_SQLITE_IOERR_WRITES = frozenset(
    {
        778,  # SQLITE_IOERR_WRITE
        1034,  # SQLITE_IOERR_FSYNC
        1290,  # SQLITE_IOERR_DIR_FSYNC
        1546,  # SQLITE_IOERR_TRUNCATE
        4874,  # SQLITE_IOERR_SHMSIZE
    }
)


def _system_now() -> datetime:
    return datetime.now(UTC)


def _error_code(exc: sqlite3.Error) -> int:
    return getattr(exc, "sqlite_errorcode", 0) or 0


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL mode (it stays so), retrying for up to the busy timeout.

    Switching a file to WAL needs an exclusive lock, and SQLite reports
    "database is locked" at once instead of calling the busy handler when two
    processes open the ledger together, so wait here as a write would.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchall()
            return
        except sqlite3.OperationalError as exc:
            busy = _error_code(exc) & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


class SqliteConnections:
    """Per-thread connections to the ledger file at ``path``, and its transactions.

    The base of the SQLite backend: :mod:`.runs`, :mod:`.outbox` and
    :mod:`.leases` write their SQL through :meth:`_write` and :meth:`_read`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        display_path: str | None = None,
        read_only: bool = False,
        clock: Callable[[], datetime] | None = None,
        lock_patience: float | None = 0.0,
    ):
        self.path = Path(path)
        #: Seconds a claim or skip keeps trying, after the busy timeout, to get
        #: a write lock another process holds (None: while the process lives).
        self.lock_patience = lock_patience
        # Resolved once: a relative path must not follow a later chdir, since
        # each thread opens its own connection when it first needs one.
        self._file = self.path.absolute()
        self.display_path = display_path or str(path)
        self.read_only = read_only
        self._clock = clock or _system_now
        self._lock = threading.Lock()
        self._local = threading.local()
        # Every open connection, keyed by id, with a weak reference to its
        # thread: close() closes them all, and connections of threads that
        # have ended are closed when the next one opens.
        self._conns: dict[int, tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = {}
        # Connections inherited across fork(): never used, and never closed,
        # since closing them in the child could release the parent's locks.
        self._inherited: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._closed = False
        self._host = host_name()
        if not read_only:
            try:
                self._file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LedgerError(
                    f"run ledger {self.display_path} cannot be created: {exc.strerror or exc}"
                ) from exc
        self._conn()

    # -- the clock --

    def now(self) -> datetime:
        """The ledger's clock (given when opened; default: this machine's), in UTC."""
        return self._clock().astimezone(UTC)

    def _stamp(self, now: datetime | None, name: str = "now") -> str:
        """``now`` (or the ledger's clock when ``None``) as stored text."""
        return to_text(self.now() if now is None else now, name)

    # -- connections --

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise LedgerError(f"run ledger {self.display_path} is closed")
        if os.getpid() != self._pid:
            with self._lock:
                self._inherited.extend(conn for _, conn in self._conns.values())
                self._conns.clear()
                self._local = threading.local()
                self._pid = os.getpid()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
            with self._lock:
                for key, (thread_ref, other) in list(self._conns.items()):
                    thread = thread_ref()
                    if thread is None or not thread.is_alive():
                        other.close()
                        del self._conns[key]
                self._conns[id(conn)] = (weakref.ref(threading.current_thread()), conn)
        return conn

    @property
    def _name(self) -> str:
        return f"run ledger {self.display_path}"

    def _uri(self, mode: str) -> str:
        # A URI, so that mode=rw never creates the file and mode=ro never writes it.
        return f"{self._file.as_uri()}?mode={mode}"

    def _connect(self, target: str | Path, *, uri: bool = False) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, since
        # the module's implicit BEGIN DEFERRED can deadlock two writers.
        # check_same_thread=False only so close() can close connections
        # opened by other threads; each is still used by one thread only.
        conn = sqlite3.connect(
            target,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
            uri=uri,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def _open(self) -> sqlite3.Connection:
        if self.read_only:
            return self._open_read_only()
        with self._translate():
            self._create_if_missing()
            self._refuse_empty()
            conn = self._connect(self._uri("rw"), uri=True)
            try:
                # Check before WAL: switching the journal mode writes the file,
                # and another program's database must be left as it is.
                check_schema(conn, name=self._name)
                _enable_wal(conn)
                migrate(conn, name=self._name)
            except BaseException:
                conn.close()
                raise
        return conn

    def _create_if_missing(self) -> None:
        """Build a new ledger next to ``path`` and link it into place, unless one is there.

        Two processes creating the ledger at once each build their own; the
        first link wins and the other's copy is deleted, so neither ever sees
        a half-made file at the ledger's path.
        """
        if self._file.exists():
            return
        building = self._file.with_name(f".{self._file.name}.{uuid.uuid4().hex}.new")
        try:
            conn = self._connect(building)
            try:
                # A rollback journal while building: it leaves no -wal beside
                # the file to be lost by the link; WAL is switched on when opened.
                migrate(conn, name=self._name)
            finally:
                conn.close()
            try:
                os.link(building, self._file)
            except FileExistsError:
                pass  # another process made it first: use theirs
            except OSError:
                # No hard links on this file system (FAT, some network shares):
                # a rename, safe unless another process creates the ledger in
                # the instant between the check and the rename.
                if not self._file.exists():
                    os.replace(building, self._file)
        except OSError as exc:
            raise LedgerError(f"{self._name} cannot be created: {exc.strerror or exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                building.unlink()

    def _refuse_empty(self) -> None:
        try:
            size = self._file.stat().st_size
        except FileNotFoundError:
            return  # SQLite says so, with its own words
        if size == 0:
            raise LedgerCorruptError(
                f"{self._name} is empty (0 bytes), so it holds no run history: restore it "
                "from a backup, or delete it to start a new, empty ledger"
            )

    def _open_read_only(self) -> sqlite3.Connection:
        with self._translate():
            if not self._file.exists():
                raise LedgerError(f"{self._name} does not exist")
            self._refuse_empty()
            conn = self._connect(self._uri("ro"), uri=True)
            try:
                version = check_schema(conn, name=self._name)
            except sqlite3.OperationalError as exc:
                conn.close()
                code = _error_code(exc)
                wal = self._file.with_name(self._file.name + "-wal")
                if code not in (_SQLITE_READONLY_CANTINIT, _SQLITE_READONLY_DIRECTORY):
                    raise
                if wal.exists() and wal.stat().st_size > 0:
                    raise LedgerError(
                        f"{self._name} cannot be read: its newest changes are in "
                        f"{wal.name}, and this process cannot create {self._file.name}-shm "
                        "beside it to read them (open it once from a process that may "
                        "write the folder)"
                    ) from exc
                conn = self._connect(self._uri("ro") + "&immutable=1", uri=True)
                try:
                    version = check_schema(conn, name=self._name)
                except BaseException:
                    conn.close()
                    raise
            except BaseException:
                conn.close()
                raise
        if version != SCHEMA_VERSION:
            conn.close()
            raise LedgerError(
                f"{self._name} has schema version {version}, older than this version of "
                f"eil-pipelines ({SCHEMA_VERSION}), and is opened read-only: open it once "
                "read-write (any eil-run command that runs a pipeline) to upgrade it"
            )
        return conn

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """Turn SQLite errors about the file into :class:`LedgerError` messages for the user."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.IntegrityError | sqlite3.ProgrammingError):
                raise  # a bug in this package, not a problem with the file
            code = _error_code(exc) & 0xFF
            detail = str(exc)
            shown = self.display_path
            if code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT) or (
                "not a database" in detail or "malformed" in detail
            ):
                raise LedgerCorruptError(
                    f"run ledger {shown} is not a valid SQLite database: {detail}"
                ) from exc
            if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in detail:
                raise LedgerLockedError(
                    f"run ledger {shown} is locked: another process held it for more than "
                    f"{BUSY_TIMEOUT_S:g} s ({detail})"
                ) from exc
            if code == sqlite3.SQLITE_FULL or _error_code(exc) in _SQLITE_IOERR_WRITES:
                raise LedgerFullError(
                    f"run ledger {shown} cannot be written: "
                    f"{self._why_full(code == sqlite3.SQLITE_FULL)} "
                    f"(SQLite: {detail}); nothing was written: make room and it carries on"
                ) from exc
            if code == sqlite3.SQLITE_CANTOPEN:
                raise LedgerError(f"run ledger {shown} cannot be opened: {detail}") from exc
            if code == sqlite3.SQLITE_READONLY:
                raise LedgerError(f"run ledger {shown} is read-only: {detail}") from exc
            raise LedgerError(f"run ledger {shown}: {detail}") from exc

    def _why_full(self, no_space: bool) -> str:
        """Which limit refused a write, as far as this process can tell; ``no_space``:
        SQLite said the disk is full (ENOSPC), not that a write failed (EFBIG, EDQUOT)."""
        try:
            import resource  # POSIX only

            limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
            unlimited = limit == resource.RLIM_INFINITY
        except (ImportError, OSError, ValueError):
            limit, unlimited = -1, True
        if not unlimited and not no_space:
            return (
                f"the disk is full for this process: it may not write a file past {limit:,} "
                "bytes (a file-size limit, `ulimit -f`)"
            )
        try:
            stats = os.statvfs(self._file.parent)
            free: int | None = stats.f_bavail * stats.f_frsize
        except (AttributeError, OSError):
            free = None
        if free is not None and (no_space or free < _NEARLY_FULL):
            return f"the disk is full ({free:,} bytes free in {self._file.parent})"
        if no_space:
            return "the disk is full"
        return "the disk is full, or a disk quota or file-size limit was reached"

    def _begin(self, conn: sqlite3.Connection, patience: float | None) -> None:
        """``BEGIN IMMEDIATE``, tried again for ``patience`` seconds (None: forever)
        after each busy timeout while another process holds the write lock."""
        if patience is None:
            patience = FOREVER
        deadline = time.monotonic() + patience
        waited: float | None = None
        while True:
            try:
                with self._translate():
                    conn.execute("BEGIN IMMEDIATE")
            except LedgerLockedError as exc:
                now = time.monotonic()
                if now >= deadline or self._closed:
                    raise
                if waited is None:
                    waited = now - BUSY_TIMEOUT_S
                    log.warning("%s; this write keeps waiting for it", exc)
                time.sleep(_LOCK_RETRY_PAUSE)
                continue
            if waited is not None:
                log.warning(
                    "%s: written after waiting %.1f s for another process's lock",
                    self._name,
                    time.monotonic() - waited,
                )
            return

    @contextmanager
    def _write(self, patience: float | None = 0.0) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction: the write lock is taken before any read.

        ``patience``: seconds to keep trying, after the busy timeout, to get
        the write lock (None or :data:`FOREVER`: while the process lives).
        """
        if self.read_only:
            raise LedgerError(f"{self._name} was opened read-only: it cannot be written")
        conn = self._conn()
        self._begin(conn, patience)
        with self._translate():
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                # SQLite rolls back by itself after some errors.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _read(self, sql: str, params: Iterable = ()) -> list[tuple]:
        conn = self._conn()
        with self._translate():
            return conn.execute(sql, tuple(params)).fetchall()

    # -- lifetime --

    def close(self) -> None:
        """Close every connection this ledger opened, in all threads; further use raises."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for _, conn in self._conns.values():
                conn.close()
            self._conns.clear()
