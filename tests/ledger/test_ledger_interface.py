"""Tests of the ledger's one storage interface, and of opening a ledger by path or URL.

The interface is what a second backend (Postgres, issue 13) implements; these
tests keep it complete: every operation the engine calls is declared there,
with its contract, and the SQLite backend implements each with the same
signature.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from ledger_helpers import NOW, T0

from eil_pipelines.errors import EilError
from eil_pipelines.ledger import (
    Ledger,
    LedgerBackend,
    LedgerUnavailableError,
    SqliteLedger,
    open_ledger,
)

PACKAGE = Path(__file__).resolve().parents[2] / "eil_pipelines"


def _interface() -> dict[str, object]:
    return {
        name: member
        for name, member in inspect.getmembers(LedgerBackend)
        if not name.startswith("_") and callable(member)
    }


def test_every_ledger_operation_the_engine_calls_is_in_the_interface():
    called: dict[str, set[str]] = {}
    for file in PACKAGE.rglob("*.py"):
        if file.parent.name == "ledger" and file.parent.parent == PACKAGE:
            continue  # the ledger itself
        text = file.read_text(encoding="utf-8")
        for name in re.findall(r"(?<!\w)ledger\.([a-z]\w*)\(", text):
            called.setdefault(name, set()).add(file.relative_to(PACKAGE).as_posix())
    assert {"claim", "finish", "reclaim", "history", "close"} <= called.keys()
    missing = {name: sorted(files) for name, files in called.items() if name not in _interface()}
    assert missing == {}


def test_the_sqlite_backend_implements_the_interface_with_the_same_signatures():
    assert Ledger is SqliteLedger
    assert issubclass(SqliteLedger, LedgerBackend)
    assert not inspect.isabstract(SqliteLedger)
    for name, declared in _interface().items():
        implemented = getattr(SqliteLedger, name)
        # Names, kinds, defaults and annotations of the parameters; a
        # generator-based context manager may annotate its return differently.
        assert (
            inspect.signature(implemented).parameters == inspect.signature(declared).parameters
        ), name


def test_the_sqlite_backend_offers_nothing_outside_the_interface():
    extra = {
        name
        for name, member in inspect.getmembers(SqliteLedger)
        if not name.startswith("_") and callable(member)
    } - _interface().keys()
    assert extra == set()


def test_every_operation_of_the_interface_states_its_contract():
    for name, member in _interface().items():
        doc = inspect.getdoc(member) or ""
        assert len(doc.split()) >= 8, f"LedgerBackend.{name} needs a docstring with its contract"


# --- open_ledger -------------------------------------------------------------------------


def test_open_ledger_opens_the_sqlite_file_at_a_path(db: Path):
    with open_ledger(db) as ledger:
        assert isinstance(ledger, SqliteLedger)
        assert ledger.claim("sales", T0, run_id="r", now=NOW) is not None
    with open_ledger(str(db), read_only=True) as reader:
        assert [r.run_id for r in reader.history()] == ["r"]


def test_open_ledger_takes_a_sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    with open_ledger("sqlite:///reports/.eil/ledger.sqlite3") as ledger:
        assert ledger.display_path == "reports/.eil/ledger.sqlite3"
        ledger.claim("sales", T0, run_id="r", now=NOW)
    assert (tmp_path / "reports" / ".eil" / "ledger.sqlite3").stat().st_size > 0
    absolute = tmp_path / "other.sqlite3"
    with open_ledger(f"sqlite:///{absolute}") as ledger:
        assert ledger.history() == []
    assert absolute.exists()


def test_an_unreachable_postgres_url_is_a_ledger_error_without_its_password():
    with pytest.raises(LedgerUnavailableError) as caught:
        open_ledger("postgresql://eil_runner:s3cret-pw@pg.invalid:5432/eil")
    assert str(caught.value).startswith(
        "run ledger postgresql://pg.invalid:5432/eil cannot be reached: "
    )
    assert "s3cret" not in str(caught.value) and "eil_runner" not in str(caught.value)


def test_an_unknown_url_scheme_is_refused():
    with pytest.raises(EilError) as caught:
        open_ledger("mysql://root:pw@db/eil")
    assert str(caught.value) == (
        "ledger URL mysql://db/eil: unknown scheme 'mysql'; expected a file path or sqlite:///path"
    )
    with pytest.raises(EilError, match=re.escape("expected sqlite:///path/to/ledger.sqlite3")):
        open_ledger("sqlite://host/ledger.sqlite3")
