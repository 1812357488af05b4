"""``eil-run ledger migrate --to postgresql://…`` and ``ledger check``: a SQLite
ledger's history, outbox and leases copied into a real Postgres, idempotently."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from ledger_helpers import NOW, T0

from eil_pipelines.cli import main
from eil_pipelines.ledger import Ledger
from eil_pipelines.ledger.records import NewDelivery

pytest.importorskip("psycopg", reason="pip install -e '.[postgres]' installs psycopg")


def _project(tmp_path: Path) -> tuple[Path, Path]:
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    return pipelines, tmp_path / "reports" / ".eil" / "ledger.sqlite3"


def _fill(db: Path) -> None:
    with Ledger(db) as ledger:
        ledger.claim("sales", T0, run_id="r1", now=NOW)
        ledger.finish(
            "sales", T0, status="succeeded", now=NOW, files=["a.md"], summary={"metrics": []}
        )
        ledger.record_skipped("sales", T0 + timedelta(hours=1), reason="overlap", now=NOW)
        ledger.claim("ops", T0, run_id="r2", now=NOW)
        with ledger.delivery_batch(now=NOW) as batch:
            batch.add("sales", T0, NewDelivery("report", "email", "a@x.org", "a@x.org", "s", b"m"))
        ledger.acquire_lease("backfill:sales", holder="backfill sales")


def test_migrate_copies_everything_once_and_check_compares_keys(
    pg_ledger_server, tmp_path, monkeypatch, capsys
):
    from servers import MARKER

    pg_ledger_server.wipe()
    pipelines, db = _project(tmp_path)
    _fill(db)
    monkeypatch.setenv("EIL_TEST_LEDGER_URL", pg_ledger_server.url)
    to = ["--to", "${EIL_TEST_LEDGER_URL}"]
    assert main(["ledger", "migrate", str(pipelines), *to]) == 0
    first = capsys.readouterr().out
    assert "copied 3 runs, 1 messages, 0 delivery states and 1 leases" in first
    assert main(["ledger", "migrate", str(pipelines), *to]) == 0
    assert "copied 0 runs, 0 messages, 0 delivery states and 0 leases" in capsys.readouterr().out
    assert main(["ledger", "check", str(pipelines), *to]) == 0
    assert "hold the same keys" in capsys.readouterr().out

    from eil_pipelines.ledger.postgres import PostgresLedger

    with PostgresLedger(pg_ledger_server.url, create=False) as pg, Ledger(db) as sqlite:
        assert [
            (r.pipeline, r.scheduled_at, r.status, r.attempt, r.files, r.summary, r.error)
            for r in pg.history(limit=None)
        ] == [
            (r.pipeline, r.scheduled_at, r.status, r.attempt, r.files, r.summary, r.error)
            for r in sqlite.history(limit=None)
        ]
        assert pg.claim_delivery(now=NOW)[1] == b"m"  # the payload came along
        # A new time in the SQLite ledger only: check names it and fails.
        sqlite.claim("sales", T0 + timedelta(days=1), run_id="r3", now=NOW)
    assert main(["ledger", "check", str(pipelines), *to]) == 1
    out = capsys.readouterr().out
    assert "only in " in out and "run sales 2026-11-28T06:00:00+00:00" in out
    assert MARKER not in first + out


def test_migrate_to_an_unreachable_server_says_so_without_the_password(tmp_path, capsys):
    from servers import MARKER, free_port

    pipelines, db = _project(tmp_path)
    _fill(db)
    url = f"postgresql://eil_runner:pw-{MARKER}@127.0.0.1:{free_port()}/eil"
    assert main(["ledger", "migrate", str(pipelines), "--to", url]) == 2  # an EilError
    err = capsys.readouterr().err
    assert "cannot be reached" in err and MARKER not in err and "eil_runner" not in err


def test_ledger_commands_need_a_url(tmp_path, capsys):
    pipelines, _db = _project(tmp_path)
    assert main(["ledger", "check", str(pipelines)]) == 2
    assert "set [ledger] url in eil.toml" in capsys.readouterr().err


def test_a_literal_password_in_the_ledger_url_is_refused(tmp_path):
    from eil_pipelines.errors import ConfigError
    from eil_pipelines.spec.project import load_project_settings

    (tmp_path / "eil.toml").write_text(
        '[ledger]\nurl = "postgresql://eil:hunter2@db/eil"\nlease = "30s"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_project_settings(tmp_path, env={})
    assert "ledger.url" in str(caught.value) and "hunter2" not in str(caught.value)
    (tmp_path / "eil.toml").write_text(
        '[ledger]\nurl = "postgresql://eil:${PW}@db/eil"\nlease = "10s"\n'
    )
    settings = load_project_settings(tmp_path, env={"PW": "s3cret"})
    assert settings.ledger.url == "postgresql://eil:s3cret@db/eil"
    assert settings.ledger.lease == timedelta(seconds=10)
    assert "s3cret" in settings.secrets()
