"""What ``eil-run list``, ``history`` and ``status`` and the status page show.

Plain data (dicts that are also the ``--format json`` output and the status
page's ``/api/status``, documented in docs/status.md); the CLI prints them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import ConfigError, EilError
from ..ledger import (
    Ledger,
    LedgerBackend,
    LedgerError,
    NodeRecord,
    PipelineOverview,
    RunRecord,
    open_ledger,
)
from ..outputs.site import read_status
from ..run.context import pipeline_trigger, pipeline_zone
from ..spec.loader import Pipeline, load_pipeline, load_pipelines_lenient, project_root_for
from ..spec.project import load_ledger_settings
from . import ledger_path

__all__ = [
    "DEFAULT_MAX_AGE",
    "STATUS_FORMAT",
    "PipelineFolder",
    "broken_row",
    "empty_history_note",
    "health",
    "history_rows",
    "open_status_ledger",
    "pipeline_history",
    "pipeline_rows",
    "status_report",
]

#: The version of the status JSON (``eil-run status --format json``, ``/api/status``).
STATUS_FORMAT = 1
#: A heartbeat older than this means the scheduler is not alive (the daemon beats every 5 s).
DEFAULT_MAX_AGE = timedelta(seconds=60)


def open_status_ledger(
    path: Path,
    reports: Path,
    *,
    write: bool = False,
    clock: Callable[[], datetime] | None = None,
) -> LedgerBackend | None:
    """The run ledger of the pipelines at ``path``, as ``list``, ``history``, ``status``
    and the status page read it: ``[ledger] url`` of the project's ``eil.toml`` (the
    Postgres ledger several runners share) when set, else the SQLite file under
    ``reports`` (``None`` before the first run wrote it).

    Read-only unless ``write`` (the status page's "run now" requests).  Only
    ``[ledger]`` of ``eil.toml`` is read; a problem there raises
    :class:`ConfigError`; a ledger that cannot be opened raises
    :class:`LedgerError`, whose message never shows a password.
    """
    settings = load_ledger_settings(project_root_for(path))
    if settings.url is not None:
        return open_ledger(settings.url, read_only=not write, lease=settings.lease, create=False)
    file = ledger_path(reports)
    if write:
        return Ledger(file, clock=clock)
    # Read-only: `list` and `history` never write, so they work on a ledger (or a
    # folder) the user may only read, and never migrate or repair it behind a writer.
    return Ledger(file, read_only=True) if file.exists() else None


def _open_ledger(reports: Path, path: Path | None = None) -> LedgerBackend | None:
    if path is not None:
        return open_status_ledger(path, reports)
    file = ledger_path(reports)
    return Ledger(file, read_only=True) if file.exists() else None


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
    ledger = _open_ledger(reports, path)
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
            last = _last_seen(ledger, reports, pipeline.name)
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
                    "last_status": last[0] if last else None,
                    "last_scheduled_at": last[1].isoformat() if last else None,
                    "last_adhoc": last[2] if last else False,
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


def _last_seen(
    ledger: LedgerBackend | None, reports: Path, name: str
) -> tuple[str, datetime, bool] | None:
    """The last run as the report site shows it: ``(status, scheduled time, ad hoc)``.

    The site reads each pipeline's last-run record (``reports/.eil/status/``),
    which every run writes, ledgered or not; the ledger has only the
    scheduler's, backfill's and ``--once --deliver``'s runs.  So the record
    wins when it is newer than the ledger's last row, and is marked ad hoc
    when its run is not in the ledger (``--once`` without ``--deliver``).
    """
    record = ledger.last_run(name) if ledger else None
    site = read_status(reports, name)
    seen: tuple[str, datetime, bool] | None = (
        (record.status, record.scheduled_at, False) if record is not None else None
    )
    try:
        site_at = datetime.fromisoformat(str(site["scheduled_at"])) if site else None
        site_end = datetime.fromisoformat(str(site["finished_at"])) if site else None
    except (KeyError, ValueError):  # a record from another version: the ledger's word stands
        return seen
    if site is None or site_at is None or site_at.tzinfo is None:
        return seen
    ended = record.finished_at or record.started_at if record is not None else None
    if record is not None and (
        site_at == record.scheduled_at
        or (ended is not None and site_end is not None and site_end <= ended)
    ):
        return seen
    in_ledger = ledger is not None and ledger.get(name, site_at) is not None
    return (str(site.get("status")), site_at.astimezone(UTC), not in_ledger)


def broken_row(error: ConfigError, ledger: LedgerBackend | None = None) -> dict[str, Any]:
    """The status row of an invalid pipeline file: named after the file, with its problems.

    The last run is the ledger's for the file's stem (its usual pipeline name):
    a scheduler keeps running the last good version of a file broken by an edit.
    """
    name = error.file.stem
    last = ledger.last_run(name) if ledger else None
    return {
        "last_adhoc": False,
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
    the pipeline of ``path`` when it is a single pipeline file.  Each row has
    its pipeline's ``timezone`` (``UTC`` for a pipeline no longer in ``path``)."""
    pipeline = None
    if path.is_file():
        pipeline = load_pipeline(path).name
    elif not path.exists():
        raise EilError(f"{path}: no such file or folder")
    zones = _zones(path)
    ledger = _open_ledger(reports, path)
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
            "timezone": zones.get(r.pipeline, "UTC"),
        }
        for r in records
    ]


def _zones(path: Path) -> dict[str, str]:
    """Each valid pipeline's time zone, by name (none when PATH has no pipeline files)."""
    try:
        pipelines, _ = load_pipelines_lenient(path)
    except EilError:
        return {}
    return {p.name: pipeline_zone(p).key for p in pipelines}


def empty_history_note(path: Path, reports: Path, *, failed_only: bool) -> str:
    """What an empty ``history`` means, in one or a few lines.

    ``--failed`` with runs recorded says how many; without any, the runs the
    report site shows that the ledger does not have (``--once`` without
    ``--deliver``) are listed as ad hoc, so ``history`` and the site agree.
    """
    pipeline = load_pipeline(path).name if path.is_file() else None
    ledger = _open_ledger(reports, path)
    recorded = 0
    if ledger is not None:
        with ledger:
            recorded = len(ledger.history(pipeline=pipeline, limit=None))
            if failed_only and recorded:
                return f"No failed runs among the {recorded} recorded in the run ledger."
            names = [pipeline] if pipeline else sorted(_zones(path))
            adhoc = [(n, seen) for n in names if (seen := _last_seen(ledger, reports, n))]
    else:
        names = [pipeline] if pipeline else sorted(_zones(path))
        adhoc = [(n, seen) for n in names if (seen := _last_seen(None, reports, n))]
    adhoc = [(n, seen) for n, seen in adhoc if seen[2]]
    if not adhoc:
        return "No runs recorded yet."
    lines = [
        "No runs in the run ledger. Ad-hoc runs (eil-run --once without --deliver) are not "
        "recorded in it; the report site shows these:"
    ]
    lines += [
        f"  {name}  {seen[0]}  (ad hoc, scheduled {seen[1].isoformat()})" for name, seen in adhoc
    ]
    return "\n".join(lines)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _seconds(delta: timedelta) -> float:
    # Never negative: a clock that stepped back must not show "-3 s ago".
    return round(max(delta.total_seconds(), 0.0), 3)


def _node_row(node: NodeRecord, now: datetime, max_age: timedelta) -> dict[str, Any]:
    age = now - node.last_beat
    return {
        "node": node.node,
        "host": node.host,
        "pid": node.pid,
        "version": node.version,
        "started_at": _iso(node.started_at),
        "last_beat": _iso(node.last_beat),
        "age_s": _seconds(age),
        "running": node.running,
        "last_error": node.last_error,
        "stopped": node.stopped,
        "alive": not node.stopped and age <= max_age,
    }


def _last_row(record: RunRecord) -> dict[str, Any]:
    return {
        "status": record.status,
        "scheduled_at": _iso(record.scheduled_at),
        "started_at": _iso(record.started_at),
        "finished_at": _iso(record.finished_at),
        "duration_s": record.duration_s,
        "error": record.error,
    }


def _waiting_rows(overview: PipelineOverview, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "scheduled_at": _iso(r.scheduled_at),
            "waiting_s": _seconds(now - r.started_at) if r.started_at else None,
            "for": r.error,
            "checks": (r.summary or {}).get("checks", 0),
        }
        for r in overview.waiting
    ]


def _running_rows(overview: PipelineOverview, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "scheduled_at": _iso(r.scheduled_at),
            "started_at": _iso(r.started_at),
            "running_s": _seconds(now - r.started_at) if r.started_at else None,
            "attempt": r.attempt,
            "host": r.host,
            "pid": r.pid,
        }
        for r in overview.running
    ]


def _after(pipeline: Pipeline) -> list[str]:
    """The pipelines ``pipeline`` waits for (``[schedule] after``)."""
    schedule = pipeline.spec.schedule
    return list(schedule.after) if schedule is not None else []


@dataclass
class _Entry:
    """A loaded pipeline with what the status shows of it that only its file changes."""

    pipeline: Pipeline
    trigger: Any
    zone: ZoneInfo
    row: dict[str, Any]
    """``pipeline``, ``file``, ``title``, ``enabled``, ``schedule``, ``timezone``."""
    fire: tuple[datetime, datetime | None, dict[str, str] | None] | None = None
    """``(asked at, next fire after it, as shown)``: valid until that fire time passes."""


class PipelineFolder:
    """The pipelines of a PATH, loaded again only when one of its files changes.

    For the web server, which answers ``/api/status`` every few seconds per
    viewer: a folder of a thousand files is parsed once, then only looked at
    (a ``stat`` per file, at most every ``recheck`` seconds).  Each
    pipeline's trigger, zone, schedule in words and next fire time are kept
    with it.  Safe to share between threads.
    """

    def __init__(self, path: Path, *, recheck: float = 0.0):
        self.path = path
        self.recheck = recheck
        self._lock = threading.Lock()
        self._snapshot: tuple[tuple[str, int, int], ...] | None = None
        self._checked = -float("inf")
        self._entries: list[_Entry] = []
        self._errors: list[ConfigError] = []
        #: Finished runs as shown, by (row id, attempt, status): a finished row
        #: changes only when it is claimed again, which changes its attempt.
        self.shown_runs: dict[tuple[int, int, str], dict[str, Any]] = {}

    def _take_snapshot(self) -> tuple[tuple[str, int, int], ...]:
        # os.scandir: one stat per file, no path resolution (a thousand files in
        # a few milliseconds); the loader resolves when something changed.
        if not self.path.is_dir():
            stat = self.path.stat() if self.path.exists() else None
            return ((str(self.path), stat.st_mtime_ns, stat.st_size),) if stat else ()
        rows = []
        with os.scandir(self.path) as found:
            for entry in found:
                if not entry.name.endswith(".toml"):
                    continue
                try:
                    stat = entry.stat()
                except OSError:
                    continue
                rows.append((entry.name, stat.st_mtime_ns, stat.st_size))
        return tuple(sorted(rows))

    def entries(self) -> tuple[list[_Entry], list[ConfigError]]:
        """The valid pipelines (with their cached facts) and the problems of the others.

        Raises :class:`EilError` when PATH names no pipeline files.
        """
        with self._lock:
            now = time.monotonic()
            if self._snapshot is None or now - self._checked >= self.recheck:
                self._checked = now
                snapshot = self._take_snapshot()
                if snapshot != self._snapshot:
                    pipelines, self._errors = load_pipelines_lenient(self.path)
                    self._entries = [_entry(p) for p in pipelines]
                    self._snapshot = snapshot
            return self._entries, self._errors

    def load(self) -> tuple[list[Pipeline], list[ConfigError]]:
        """The valid pipelines and the problems of the others, as
        :func:`~eil_pipelines.spec.loader.load_pipelines_lenient` gives them."""
        entries, errors = self.entries()
        return [entry.pipeline for entry in entries], errors


def _entry(pipeline: Pipeline) -> _Entry:
    trigger = pipeline_trigger(pipeline)
    zone = pipeline_zone(pipeline)
    row = {
        "pipeline": pipeline.name,
        "file": pipeline.display_path,
        "title": pipeline.spec.title,
        "enabled": pipeline.spec.enabled,
        "schedule": trigger.describe() if trigger else "on demand only",
        "timezone": zone.key,
    }
    return _Entry(pipeline, trigger if pipeline.spec.enabled else None, zone, row)


def _next_fire(entry: _Entry, moment: datetime) -> dict[str, str] | None:
    """The entry's next fire time after ``moment`` (``{"local", "utc"}``), computed
    again only once it passed."""
    if entry.trigger is None:
        return None
    cached = entry.fire
    if cached is not None and cached[0] <= moment and (cached[1] is None or moment < cached[1]):
        return cached[2]
    fire = entry.trigger.next_fire(moment)
    shown = (
        {"local": fire.astimezone(entry.zone).isoformat(), "utc": fire.astimezone(UTC).isoformat()}
        if fire is not None
        else None
    )
    entry.fire = (moment, fire, shown)  # one assignment: safe between threads
    return shown


def _shown_last(folder: PipelineFolder, record: RunRecord | None) -> dict[str, Any] | None:
    """:func:`_last_row`, kept in ``folder`` (formatting times is most of a request's work)."""
    if record is None:
        return None
    key = (record.id, record.attempt, record.status)
    shown = folder.shown_runs.get(key)
    if shown is None:
        if len(folder.shown_runs) > 100_000:  # a long-lived server: bounded
            folder.shown_runs.clear()
        shown = folder.shown_runs[key] = _last_row(record)
    return shown


def status_report(
    path: Path,
    reports: Path,
    *,
    now: datetime | None = None,
    max_age: timedelta = DEFAULT_MAX_AGE,
    max_failures: int | None = None,
    ledger: LedgerBackend | None = None,
    folder: PipelineFolder | None = None,
) -> dict[str, Any]:
    """Everything the status page and ``eil-run status`` show, as one JSON-able mapping.

    Read from the pipelines at ``path`` (or ``folder``, the web server's
    cache of them) and the ledger of ``reports``, opened read-only (or
    ``ledger``, kept open by the caller).  ``now`` is the clock's reading
    (default: this machine's).  The format is documented in docs/status.md;
    ``health`` says whether a health check passes with ``max_age`` and
    ``max_failures`` (see :func:`health`).
    """
    moment = now if now is not None else datetime.now(UTC)
    folder = folder if folder is not None else PipelineFolder(path)
    entries, errors = folder.entries()
    names = [e.row["pipeline"] for e in entries] + [e.file.stem for e in errors]
    own = ledger is None
    ledger_error: str | None = None
    overviews: dict[str, PipelineOverview] = {}
    nodes: list[NodeRecord] = []
    requested: dict[str, int] = {}
    try:
        if own:
            ledger = _open_ledger(reports, path)
        if ledger is not None:
            overviews = ledger.overview(names)
            nodes = ledger.nodes()
            for request in ledger.open_run_requests():
                requested[request.pipeline] = requested.get(request.pipeline, 0) + 1
    except LedgerError as exc:
        ledger_error = str(exc)
    finally:
        if own and ledger is not None:
            ledger.close()
    after = {e.row["pipeline"]: _after(e.pipeline) for e in entries}
    # The reverse edges once, not a scan of every pipeline per pipeline: a
    # thousand pipelines would cost a million membership tests per request.
    before: dict[str, set[str]] = {}
    for other, upstream in after.items():
        for name in upstream:
            before.setdefault(name, set()).add(other)
    rows = []
    for entry in entries:
        name = entry.row["pipeline"]
        overview = overviews.get(name) or PipelineOverview(name)
        rows.append(
            {
                **entry.row,
                "next": _next_fire(entry, moment),
                "last": _shown_last(folder, overview.last),
                "running": _running_rows(overview, moment),
                "waiting": _waiting_rows(overview, moment),
                "after": after[name],
                "before": sorted(before.get(name, ())),
                "failures_in_a_row": overview.failures_in_a_row,
                "requested": requested.get(name, 0),
            }
        )
    rows.sort(key=lambda row: (row["pipeline"], row["file"]))
    invalid: list[dict[str, Any]] = [
        {
            "pipeline": error.file.stem,
            "file": error.shown,
            "problems": [f"{key}: {text}" if key else text for key, text in error.problems],
        }
        for error in sorted(errors, key=lambda error: error.shown)
    ]
    node_rows = [_node_row(node, moment, max_age) for node in nodes]
    report: dict[str, Any] = {
        "format": STATUS_FORMAT,
        "generated_at": _iso(moment.astimezone(UTC)),
        "ledger_error": ledger_error,
        # The newest runner alive; else the newest: with several (--processes, or
        # machines), one that said goodbye does not make a running service unhealthy.
        "scheduler": next(
            (r for r in node_rows if r["alive"]), node_rows[0] if node_rows else None
        ),
        "nodes": node_rows,
        "pipelines": rows,
        "invalid": invalid,
    }
    report["health"] = health(report, max_age=max_age, max_failures=max_failures)
    return report


def health(
    report: dict[str, Any], *, max_age: timedelta, max_failures: int | None
) -> dict[str, Any]:
    """Whether a health check passes: ``{"ok": bool, "problems": [sentences]}``.

    It fails when the ledger cannot be read, when no runner ever beat, when
    the newest heartbeat is older than ``max_age`` or was a goodbye, and (with
    ``max_failures``) when a pipeline failed more than ``max_failures`` times
    in a row.  Invalid pipeline files do not fail it (``validate`` is for them).
    """
    problems: list[str] = []
    if report["ledger_error"]:
        problems.append(f"the run ledger cannot be read: {report['ledger_error']}")
    scheduler = report["scheduler"]
    limit = _seconds(max_age)
    if scheduler is None:
        if not report["ledger_error"]:
            problems.append("no scheduler has ever beaten into the run ledger")
    elif scheduler["stopped"]:
        problems.append(f"the scheduler {scheduler['node']} stopped at {scheduler['last_beat']}")
    elif not scheduler["alive"]:
        problems.append(
            f"the scheduler's last heartbeat ({scheduler['node']}, {scheduler['last_beat']}) "
            f"is {scheduler['age_s']:g} s old, more than {limit:g} s"
        )
    if max_failures is not None:
        problems.extend(
            f"{row['pipeline']} failed {row['failures_in_a_row']} times in a row "
            f"(more than {max_failures})"
            for row in report["pipelines"]
            if row["failures_in_a_row"] > max_failures
        )
    return {"ok": not problems, "problems": problems}


def pipeline_history(
    reports: Path,
    name: str,
    *,
    limit: int = 50,
    ledger: LedgerBackend | None = None,
    path: Path | None = None,
) -> list[dict[str, Any]]:
    """The newest ``limit`` runs of pipeline ``name`` (any state), for its status page.

    ``ledger`` is the caller's open ledger (the web server's); without it the
    ledger of the pipelines at ``path`` is opened read-only (see
    :func:`open_status_ledger`; without ``path``, the SQLite file under
    ``reports``).  No ledger: no runs.
    """
    own = ledger is None
    if own:
        ledger = _open_ledger(reports, path)
    if ledger is None:
        return []
    try:
        records: Sequence[RunRecord] = ledger.history(pipeline=name, limit=limit)
    finally:
        if own:
            ledger.close()
    return [
        {
            "scheduled_at": _iso(r.scheduled_at),
            "status": r.status,
            "attempt": r.attempt,
            "started_at": _iso(r.started_at),
            "finished_at": _iso(r.finished_at),
            "duration_s": r.duration_s,
            "error": r.error,
        }
        for r in records
    ]
