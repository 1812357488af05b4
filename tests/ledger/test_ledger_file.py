"""Tests of the ledger file: creation, WAL, schema versions, locks, and files that are
not a ledger (corrupt, empty, another program's), and opening it read-only."""

from __future__ import annotations

import ctypes
import hashlib
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from ledger_helpers import NOW, T0, raw

from eil_pipelines.errors import EilError
from eil_pipelines.ledger import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Ledger,
    LedgerCorruptError,
    LedgerError,
    LedgerLockedError,
)
from eil_pipelines.ledger import connection as connection_module

# --- the file -----------------------------------------------------------------------


def test_the_file_is_created_in_wal_mode_with_the_schema_version(db: Path):
    assert not db.parent.exists()
    with Ledger(db) as ledger:
        assert db.exists()
        conn = ledger._conn()
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert ledger.schema_version() == SCHEMA_VERSION == 7
    with raw(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        # Reopening an up-to-date file changes nothing.
    with Ledger(db) as again:
        assert again.schema_version() == SCHEMA_VERSION


def test_the_status_check_constraint_holds(ledger: Ledger, db: Path):
    ledger.claim("sales", T0, run_id="r", now=NOW)
    with raw(db) as conn, pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        conn.execute("UPDATE runs SET status = 'done'")


def test_a_corrupt_file_gives_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    path = Path("reports/.eil/ledger.sqlite3")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database, just some text\n" * 200)
    with pytest.raises(LedgerCorruptError) as caught:
        Ledger("reports/.eil/ledger.sqlite3")
    assert str(caught.value) == (
        "run ledger reports/.eil/ledger.sqlite3 is not a valid SQLite database: "
        "file is not a database"
    )
    assert isinstance(caught.value, EilError)


def test_a_file_from_a_newer_version_is_refused(db: Path):
    Ledger(db).close()
    with raw(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(LedgerError) as caught:
        Ledger(db, display_path="reports/.eil/ledger.sqlite3")
    assert str(caught.value) == (
        "run ledger reports/.eil/ledger.sqlite3 has schema version 99, but this version of "
        "eil-pipelines knows only up to 7: upgrade eil-pipelines"
    )


def test_a_path_that_cannot_be_created_gives_a_clear_error(tmp_path: Path):
    (tmp_path / "reports").write_text("a file where a folder should be")
    with pytest.raises(LedgerError, match=r"^run ledger .*ledger\.sqlite3 cannot be created: "):
        Ledger(tmp_path / "reports" / ".eil" / "ledger.sqlite3")


def test_a_lock_held_beyond_the_timeout_gives_a_clear_error(
    db: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(connection_module, "BUSY_TIMEOUT_S", 0.05)
    ledger = Ledger(db, display_path="ledger.sqlite3")
    with raw(db) as blocker:
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(LedgerLockedError) as caught:
            ledger.claim("sales", T0, run_id="r", now=NOW)
        blocker.execute("ROLLBACK")
    assert str(caught.value) == (
        "run ledger ledger.sqlite3 is locked: another process held it for more than 0.05 s "
        "(database is locked)"
    )
    # Once the lock is released the ledger works again.
    assert ledger.claim("sales", T0, run_id="r", now=NOW) is not None
    ledger.close()


def test_close_closes_every_thread_connection_and_further_use_raises(db: Path):
    ledger = Ledger(db)
    conns = []
    thread = threading.Thread(target=lambda: conns.append(ledger._conn()))
    thread.start()
    thread.join()
    conns.append(ledger._conn())
    ledger.close()
    for conn in conns:
        with pytest.raises(sqlite3.ProgrammingError):
            conn.execute("SELECT 1")
    with pytest.raises(LedgerError, match="is closed"):
        ledger.history()
    ledger.close()  # twice is fine


def test_a_new_file_leaves_nothing_else_in_the_folder(db: Path):
    with Ledger(db) as ledger:
        ledger.claim("sales", T0, run_id="r", now=NOW)
    # The file is built under a temporary name and linked into place; none is left.
    assert sorted(p.name for p in db.parent.iterdir()) == ["ledger.sqlite3"]


# --- files that are not a ledger -----------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("read_only", [False, True])
def test_an_empty_file_is_refused_not_taken_for_a_new_ledger(db: Path, read_only: bool):
    db.parent.mkdir(parents=True)
    db.touch()
    with pytest.raises(LedgerCorruptError) as caught:
        Ledger(db, display_path="reports/.eil/ledger.sqlite3", read_only=read_only)
    assert str(caught.value) == (
        "run ledger reports/.eil/ledger.sqlite3 is empty (0 bytes), so it holds no run "
        "history: restore it from a backup, or delete it to start a new, empty ledger"
    )
    assert db.stat().st_size == 0
    assert sorted(p.name for p in db.parent.iterdir()) == ["ledger.sqlite3"]


@pytest.mark.parametrize("read_only", [False, True])
def test_another_programs_sqlite_database_is_refused_and_left_alone(db: Path, read_only: bool):
    db.parent.mkdir(parents=True)
    with raw(db) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
        conn.execute("CREATE TABLE orders (id INTEGER)")
    before = _digest(db)
    with pytest.raises(LedgerCorruptError) as caught:
        Ledger(db, display_path="ledger.sqlite3", read_only=read_only)
    assert str(caught.value) == (
        "run ledger ledger.sqlite3 is a SQLite database, but not an eil-pipelines run "
        "ledger: it has tables (customers, orders) and no ledger schema version; point "
        "eil-pipelines at another file, or move this one away"
    )
    assert _digest(db) == before


def test_a_schema_version_without_its_tables_is_refused(db: Path):
    db.parent.mkdir(parents=True)
    with raw(db) as conn:
        conn.execute("CREATE TABLE runs (id INTEGER)")
        conn.execute("PRAGMA user_version = 3")
    with pytest.raises(LedgerCorruptError) as caught:
        Ledger(db, display_path="ledger.sqlite3")
    assert str(caught.value) == (
        "run ledger ledger.sqlite3 is not an eil-pipelines run ledger, or is damaged: it says "
        "schema version 3, but tables are missing (delivery_state, leases, outbox)"
    )


def test_an_older_ledger_is_still_migrated(db: Path):
    db.parent.mkdir(parents=True)
    with raw(db) as conn:
        MIGRATIONS[0](conn)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO runs (pipeline, scheduled_at, status) VALUES ('sales', ?, 'succeeded')",
            (T0.isoformat(),),
        )
    with Ledger(db) as ledger:
        assert ledger.schema_version() == SCHEMA_VERSION
        assert [r.status for r in ledger.history()] == ["succeeded"]
        assert ledger.acquire_lease("backfill:sales", holder="b", now=NOW) is None
        # Version 4 allows 'waiting' rows (dependencies and freshness gates).
        assert ledger.wait("report", T0, run_id="w1", note="waiting for sales", now=NOW)
        assert ledger.get("report", T0).status == "waiting"


def test_a_waiting_row_holds_its_key_and_is_abandoned_with_its_process(db: Path):
    with Ledger(db) as ledger:
        held = ledger.wait("report", T0, run_id="w1", note="waiting for sales", now=NOW)
        assert held is not None and held.error == "waiting for sales"
        assert held.summary == {"checks": 0}
        assert ledger.claim("report", T0, run_id="r2", now=NOW) is None
        assert ledger.wait("report", T0, run_id="w2", note="again", now=NOW) is None
        assert ledger.note_waiting("report", T0, note="waiting for sales (failed)", checks=3)
        assert ledger.get("report", T0).summary == {"checks": 3}
        [abandoned] = ledger.mark_abandoned(now=NOW, pids_alive=lambda pid: False)
        assert (abandoned.status, abandoned.pipeline) == ("abandoned", "report")
        assert not ledger.note_waiting("report", T0, note="late", checks=4)


# --- read-only ---------------------------------------------------------------------------


def test_a_read_only_ledger_reads_and_never_writes(db: Path):
    with Ledger(db) as ledger:
        ledger.claim("sales", T0, run_id="r1", now=NOW)
        ledger.finish("sales", T0, status="succeeded", now=NOW)
    before = _digest(db)
    with Ledger(db, display_path="ledger.sqlite3", read_only=True) as reader:
        assert [(r.run_id, r.status) for r in reader.history()] == [("r1", "succeeded")]
        assert reader.get("sales", T0).run_id == "r1"
        assert reader.deliveries() == []
        assert reader.schema_version() == SCHEMA_VERSION
        with pytest.raises(LedgerError) as caught:
            reader.claim("sales", NOW, run_id="r2", now=NOW)
        assert str(caught.value) == (
            "run ledger ledger.sqlite3 was opened read-only: it cannot be written"
        )
    assert _digest(db) == before


def test_a_missing_ledger_opened_read_only_is_not_created(db: Path):
    with pytest.raises(LedgerError) as caught:
        Ledger(db, display_path="reports/.eil/ledger.sqlite3", read_only=True)
    assert str(caught.value) == "run ledger reports/.eil/ledger.sqlite3 does not exist"
    assert not db.parent.exists()


def test_an_older_ledger_opened_read_only_says_how_to_upgrade(db: Path):
    db.parent.mkdir(parents=True)
    with raw(db) as conn:
        MIGRATIONS[0](conn)
        conn.execute("PRAGMA user_version = 1")
    with pytest.raises(LedgerError) as caught:
        Ledger(db, display_path="ledger.sqlite3", read_only=True)
    assert str(caught.value) == (
        "run ledger ledger.sqlite3 has schema version 1, older than this version of "
        f"eil-pipelines ({SCHEMA_VERSION}), and is opened read-only: open it once "
        "read-write (any eil-run command that runs a pipeline) to upgrade it"
    )
    with raw(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1


READER = """
import sys
from eil_pipelines.ledger import Ledger, LedgerError

path = sys.argv[1]
with Ledger(path, display_path="ledger.sqlite3", read_only=True) as ledger:
    print("history:", " ".join(f"{r.run_id}={r.status}" for r in ledger.history()))
try:
    Ledger(path, display_path="ledger.sqlite3")
except LedgerError as exc:
    print("read-write:", exc)
"""


# Linux capabilities that let root write where the permissions say no.
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER = 1, 2, 3
_PR_CAPBSET_DROP = 24


def _drop_root_file_capabilities() -> None:  # runs in the child, before exec
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _unskippable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def run_without_write_permission(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``args`` in a process that file permissions apply to.

    Root writes anything, so as root the child drops the capabilities that
    override permissions from its bounding set; its uid stays 0, so it can
    still run this interpreter wherever it is installed.
    """
    options: dict = {}
    if os.geteuid() == 0:
        if not sys.platform.startswith("linux"):
            _unskippable("running as root, and dropping root's file capabilities needs Linux")
        options["preexec_fn"] = _drop_root_file_capabilities
    try:
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            **options,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        _unskippable(f"cannot start a process without write permission here: {exc}")
        raise


def test_history_works_on_a_read_only_folder_in_a_process_that_cannot_write(db: Path):
    with Ledger(db) as ledger:
        ledger.claim("sales", T0, run_id="r1", now=NOW)
        ledger.finish("sales", T0, status="failed", now=NOW, error="boom")
    # Closed cleanly: no -wal or -shm is left, and the reader can't create them.
    assert sorted(p.name for p in db.parent.iterdir()) == ["ledger.sqlite3"]
    before = _digest(db)
    db.chmod(0o444)
    db.parent.chmod(0o555)
    try:
        reader = run_without_write_permission([sys.executable, "-c", READER, str(db)])
    finally:
        db.parent.chmod(0o755)  # so pytest can clean up
    assert reader.returncode == 0, reader.stderr
    lines = reader.stdout.splitlines()
    assert lines[0] == "history: r1=failed"
    assert lines[1].startswith("read-write: run ledger ledger.sqlite3 is read-only: ")
    assert _digest(db) == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["ledger.sqlite3"]
