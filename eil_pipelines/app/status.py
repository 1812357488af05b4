"""What ``eil-run list`` and ``eil-run history`` show: schedules, fire times, runs.

Plain data (dicts that are also the ``--format json`` output); the CLI prints them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigError, EilError
from ..ledger import Ledger
from ..run.context import pipeline_trigger, pipeline_zone
from ..spec.loader import load_pipeline, load_pipelines_lenient
from . import ledger_path

__all__ = ["broken_row", "history_rows", "pipeline_rows"]


def _open_ledger(reports: Path) -> Ledger | None:
    # Read-only: `list` and `history` never write, so they work on a ledger (or a
    # folder) the user may only read, and never migrate or repair it behind a writer.
    path = ledger_path(reports)
    return Ledger(path, read_only=True) if path.exists() else None


def pipeline_rows(
    path: Path, reports: Path, *, count: int, now: Callable[[], datetime] | None = None
) -> list[dict[str, Any]]:
    """Each pipeline of ``path``: its schedule in words, its next ``count`` fire
    times (in its zone and in UTC) and its last run from the ledger.

    An invalid file is a row too, named after the file, with its ``problems``
    (``"key.path: message"`` lines) and no fire times; a valid row's
    ``problems`` is empty.  Rows are sorted by pipeline name.
    """
    pipelines, errors = load_pipelines_lenient(path)
    ledger = _open_ledger(reports)
    moment_now = now() if now is not None else datetime.now(UTC)
    rows = []
    try:
        for pipeline in pipelines:
            trigger = pipeline_trigger(pipeline)
            zone = pipeline_zone(pipeline)
            fires = []
            if trigger is not None and pipeline.spec.enabled:
                moment = moment_now
                for _ in range(count):
                    moment = trigger.next_fire(moment)
                    fires.append(moment)
            last = ledger.last_run(pipeline.name) if ledger else None
            rows.append(
                {
                    "pipeline": pipeline.name,
                    "file": pipeline.display_path,
                    "title": pipeline.spec.title,
                    "enabled": pipeline.spec.enabled,
                    "schedule": trigger.describe() if trigger else "on demand only",
                    "timezone": zone.key,
                    "next": [
                        {
                            "local": f.astimezone(zone).isoformat(),
                            "utc": f.astimezone(UTC).isoformat(),
                        }
                        for f in fires
                    ],
                    "last_status": last.status if last else None,
                    "last_scheduled_at": last.scheduled_at.isoformat() if last else None,
                    "problems": [],
                }
            )
        for error in errors:
            rows.append(broken_row(error, ledger))
    finally:
        if ledger is not None:
            ledger.close()
    rows.sort(key=lambda row: (row["pipeline"], row["file"]))
    return rows


def broken_row(error: ConfigError, ledger: Ledger | None = None) -> dict[str, Any]:
    """The status row of an invalid pipeline file: named after the file, with its problems.

    The last run is the ledger's for the file's stem (its usual pipeline name):
    a scheduler keeps running the last good version of a file broken by an edit.
    """
    name = error.file.stem
    last = ledger.last_run(name) if ledger else None
    return {
        "pipeline": name,
        "file": error.shown,
        "title": None,
        "enabled": None,
        "schedule": "invalid",
        "timezone": None,
        "next": [],
        "last_status": last.status if last else None,
        "last_scheduled_at": last.scheduled_at.isoformat() if last else None,
        "problems": [f"{key}: {message}" if key else message for key, message in error.problems],
    }


def history_rows(
    path: Path, reports: Path, *, failed_only: bool, limit: int
) -> list[dict[str, Any]]:
    """Recent runs from the ledger, newest first, with their deliveries; only
    the pipeline of ``path`` when it is a single pipeline file."""
    pipeline = None
    if path.is_file():
        pipeline = load_pipeline(path).name
    elif not path.exists():
        raise EilError(f"{path}: no such file or folder")
    ledger = _open_ledger(reports)
    if ledger is None:
        return []
    with ledger:
        records = ledger.history(pipeline=pipeline, failed_only=failed_only, limit=limit)
        deliveries = ledger.deliveries_by_run(records)
    return [
        {
            "pipeline": r.pipeline,
            "scheduled_at": r.scheduled_at.isoformat(),
            "started_at": r.started_at.isoformat() if r.started_at else None,
            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            "duration_s": r.duration_s,
            "status": r.status,
            "attempt": r.attempt,
            "error": r.error,
            "files": r.files,
            "deliveries": [d.as_dict() for d in deliveries.get((r.pipeline, r.scheduled_at), [])],
        }
        for r in records
    ]
