"""The SQLite backend's runner heartbeats, "run now" requests and status overview.

The contracts are :class:`~eil_pipelines.ledger.base.LedgerBackend`'s
(:meth:`beat`, :meth:`nodes`, :meth:`request_run`, :meth:`take_run_requests`,
:meth:`overview`).  The overview is three queries whatever the number of
pipelines, each an index seek per pipeline (see the ``runs_status_pipeline``
index of schema version 5), so the status page stays fast on a large ledger;
between two calls, only the pipelines whose ``runs_versions`` moved are read
again (schema version 7).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from .connection import SqliteConnections
from .overview import PipelineOverview, assemble_overviews
from .records import FAILED_STATUSES, NodeRecord, RunRecord, RunRequest
from .runs import _COLUMNS, _record
from .schema import from_text, to_text

__all__ = ["SqliteNodes"]

_NODE_COLUMNS = "node, host, pid, version, started_at, last_beat, running, last_error, stopped"
_FAILED = ", ".join(f"'{status}'" for status in FAILED_STATUSES)


def _node(row: tuple) -> NodeRecord:
    node, host, pid, version, started_at, last_beat, running, last_error, stopped = row
    return NodeRecord(
        node=node,
        host=host,
        pid=pid,
        version=version,
        started_at=from_text(started_at),  # type: ignore[arg-type]
        last_beat=from_text(last_beat),  # type: ignore[arg-type]
        running=running,
        last_error=last_error,
        stopped=bool(stopped),
    )


def _request(row: tuple) -> RunRequest:
    id_, pipeline, requested_at, requested_by, params = row
    return RunRequest(
        id_,
        pipeline,
        from_text(requested_at),  # type: ignore[arg-type]
        requested_by,
        json.loads(params) if params else {},
    )


def _params_text(params: Mapping[str, str] | None) -> str | None:
    """A request's params as stored: JSON text, or NULL for none."""
    return json.dumps(dict(params), sort_keys=True) if params else None


class SqliteNodes(SqliteConnections):
    """Heartbeats, run requests and the overview in the SQLite ledger."""

    def beat(
        self,
        node: str,
        *,
        host: str,
        pid: int,
        version: str,
        started_at: datetime,
        running: int,
        last_error: str | None,
        stopped: bool = False,
    ) -> None:
        """Insert or replace runner ``node``'s row; ``last_beat`` is the ledger's clock."""
        row = (
            node,
            host,
            pid,
            version,
            to_text(started_at, "started_at"),
            self._stamp(None),
            running,
            last_error,
            int(stopped),
        )
        with self._write() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO nodes ({_NODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )

    def nodes(self) -> list[NodeRecord]:
        """Every runner that ever beat, newest beat first."""
        rows = self._read(f"SELECT {_NODE_COLUMNS} FROM nodes ORDER BY last_beat DESC, node")
        return [_node(row) for row in rows]

    def request_run(
        self, pipeline: str, *, requested_by: str, params: Mapping[str, str] | None = None
    ) -> int:
        """Store a "run now" request for ``pipeline``; return its id."""
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO run_requests (pipeline, requested_at, requested_by, params)"
                " VALUES (?, ?, ?, ?)",
                (pipeline, self._stamp(None), requested_by, _params_text(params)),
            )
            return int(cursor.lastrowid or 0)

    def take_run_requests(self, node: str, pipelines: Collection[str]) -> list[RunRequest]:
        """Take the open requests for ``pipelines`` (oldest first) for ``node``."""
        names = json.dumps(sorted(set(pipelines)))
        if names == "[]":
            return []
        select = (
            "SELECT id, pipeline, requested_at, requested_by, params FROM run_requests"
            " WHERE taken_by IS NULL AND pipeline IN (SELECT value FROM json_each(?)) ORDER BY id"
        )
        # Called at every beat: a read first, so an idle scheduler never takes the
        # write lock; the write re-reads under the lock, so no request is taken twice.
        if not self._read(select, (names,)):
            return []
        with self._write() as conn:
            rows = conn.execute(select, (names,)).fetchall()
            stamp = self._stamp(None)
            conn.executemany(
                "UPDATE run_requests SET taken_by = ?, taken_at = ? WHERE id = ?",
                [(node, stamp, row[0]) for row in rows],
            )
        return [_request(row) for row in rows]

    def open_run_requests(self) -> list[RunRequest]:
        """The requests no runner has taken yet, oldest first."""
        rows = self._read(
            "SELECT id, pipeline, requested_at, requested_by, params FROM run_requests"
            " WHERE taken_by IS NULL ORDER BY id"
        )
        return [_request(row) for row in rows]

    def overview(self, pipelines: Collection[str] | None = None) -> dict[str, PipelineOverview]:
        """Each pipeline's newest finished run, running rows and failure streak.

        On a read-only ledger (the status page's) the answer is kept per
        connection and given again while ``PRAGMA data_version`` says no one
        wrote the file since: a page polled by many viewers reads the runs once
        per change, not once per request.
        """
        if pipelines is None:
            names = [row[0] for row in self._read("SELECT DISTINCT pipeline FROM runs")]
        else:
            names = sorted(set(pipelines))
        if not names:
            return {}
        if not self.read_only:
            return self._overview(names)
        # data_version changes when another connection commits; a read-only
        # connection never writes, so an unchanged value means unchanged rows.
        key = (self._read("PRAGMA data_version")[0][0], tuple(names))
        cached = getattr(self._local, "overview", None)
        if cached is None or cached[0] != key:
            cached = (key, self._overview(names))
            self._local.overview = cached
        return dict(cached[1])

    def _overview(self, names: list[str]) -> dict[str, PipelineOverview]:
        # Each pipeline's runs version (schema 7), read before its rows: a write
        # after this read moves a version, and is read at the next call.
        versions: dict[str, int] = dict(self._read("SELECT pipeline, version FROM runs_versions"))
        before: _Finished | None = getattr(self._local, "finished", None)
        if before is None or before.names != names:
            last, streak = self._finished(names)
        else:
            # Only the pipelines written since the last call are read again: a page
            # polled between two runs (a heartbeat was the write) reads none.
            last, streak = dict(before.last), dict(before.streak)
            changed = [n for n in names if versions.get(n) != before.versions.get(n)]
            if changed:
                for name in changed:
                    last.pop(name, None)
                    streak.pop(name, None)
                fresh_last, fresh_streak = self._finished(changed)
                last.update(fresh_last)
                streak.update(fresh_streak)
        self._local.finished = _Finished(names, versions, last, streak)
        held_rows = self._read(
            f"SELECT {_COLUMNS} FROM runs WHERE status IN ('running', 'waiting')"
            " ORDER BY started_at, id"
        )
        return assemble_overviews(names, last, map(_record, held_rows), streak)

    def _finished(self, names: list[str]) -> tuple[dict[str, RunRecord], dict[str, int]]:
        """The newest finished row and the failure streak of each of ``names``."""
        given = json.dumps(names)
        # One index seek per pipeline: its newest row that finished (walking back
        # from its newest time past running and skipped rows).
        last_rows = self._read(
            f"SELECT {_COLUMNS} FROM runs WHERE id IN ("
            " SELECT (SELECT r.id FROM runs r WHERE r.pipeline = p.value"
            "  AND r.status NOT IN ('running', 'waiting', 'skipped')"
            "  ORDER BY r.scheduled_at DESC LIMIT 1)"
            " FROM json_each(?) p)",
            (given,),
        )
        # Failures after the newest success: a seek and three short range scans
        # on (status, pipeline, scheduled_at).
        streaks = self._read(
            "SELECT p.value, (SELECT count(*) FROM runs f"
            f"  WHERE f.status IN ({_FAILED}) AND f.pipeline = p.value"
            "  AND f.scheduled_at > coalesce((SELECT s.scheduled_at FROM runs s"
            "   WHERE s.status = 'succeeded' AND s.pipeline = p.value"
            "   ORDER BY s.scheduled_at DESC LIMIT 1), ''))"
            " FROM json_each(?) p",
            (given,),
        )
        last = {record.pipeline: record for record in map(_record, last_rows)}
        return last, {name: count for name, count in streaks}


@dataclass(frozen=True)
class _Finished:
    """What one connection last read of the finished rows, to read only what changed."""

    names: list[str]
    versions: dict[str, int]
    """Each pipeline's runs version then (``runs_versions``)."""
    last: dict[str, RunRecord]
    streak: dict[str, int]
