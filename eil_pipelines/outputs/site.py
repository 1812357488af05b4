"""The report site: ``reports/index.html`` and ``reports/<pipeline>/index.html``.

Static, self-contained pages (inline CSS, no script, no outside request, a
Content-Security-Policy that forbids both) that work opened from disk and
from any static web server, with relative links only.

The site is rebuilt from what is on disk, never from memory: each pipeline's
dated reports (by file name), their manifests (title, schedule in words,
headline metrics) and the small status file every run leaves in
``reports/.eil/status/<pipeline>.json`` (the only place a failed run is
recorded, since a failed run never touches the reports).  So any run, in any
thread or process, can rebuild it, and two rebuilds of the same disk state
give the same bytes.  A lock file (``reports/.eil/site.lock``, ``flock``)
serialises rebuilds, so a rebuild that read the disk before another run
finished can never overwrite a newer page; each page is written atomically.

The pages show scheduled times, not wall-clock times, so re-rendering a
report gives the same pages (the wall-clock times are in the manifests).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup

from ..render.environment import render_page
from ..render.markdown import CONTENT_SECURITY_POLICY  # the reports' policy: nothing fetched or run
from .atomic import atomic_write_bytes
from .manifest import read_manifest
from .report_files import owned_files
from .stamps import format_stamp, parse_stamp

log = logging.getLogger("eil_pipelines.outputs")

#: Where the engine keeps its own files inside the reports folder.
STATE_DIR = ".eil"
#: On the index, each pipeline lists this many reports; older ones fold into a <details>.
INDEX_RECENT = 10

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

_FORMAT_NAMES = {"html": "HTML", "md": "Markdown", "pdf": "PDF"}
_STATUS_WORDS = {
    "succeeded": ("✓", "Succeeded"),
    "failed": ("✗", "Failed"),
    "timed_out": ("✗", "Timed out"),
}

# One process-wide lock beside the file lock: flock is per open file, so it
# already excludes threads, but the in-process lock keeps the threads of one
# process from queueing on the kernel and works where fcntl does not exist.
_THREAD_LOCK = threading.Lock()


# --- run status -----------------------------------------------------------------------


def status_path(reports_dir: Path, pipeline: str) -> Path:
    """``reports/.eil/status/<pipeline>.json``: the outcome of the pipeline's last run."""
    return reports_dir / STATE_DIR / "status" / f"{pipeline}.json"


def write_status(reports_dir: Path, record: Mapping[str, Any]) -> Path:
    """Record the outcome of a run (succeeded or failed) for the site, atomically.

    ``record`` holds ``pipeline``, ``title``, ``description``, ``schedule``,
    ``timezone``, ``status``, ``scheduled_at``, ``stamp``, ``run_id``,
    ``finished_at`` and ``error``.
    """
    data = json.dumps(dict(record), indent=2, ensure_ascii=False, default=str) + "\n"
    return atomic_write_bytes(status_path(reports_dir, record["pipeline"]), data.encode("utf-8"))


def read_status(reports_dir: Path, pipeline: str) -> dict[str, Any] | None:
    """The pipeline's last-run record, or ``None``."""
    try:
        data = json.loads(status_path(reports_dir, pipeline).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --- what is on disk -------------------------------------------------------------------


@dataclass
class Report:
    """One dated report and its files, as found on disk."""

    stamp: str
    documents: dict[str, str] = field(default_factory=dict)
    """Format (``html``, ``md``, ``pdf``, ``json``) → file name."""
    data: list[str] = field(default_factory=list)
    """Export files, as paths relative to the pipeline folder."""
    manifest: dict[str, Any] | None = None


@dataclass
class PipelineState:
    """A pipeline as the site sees it."""

    name: str
    has_folder: bool
    reports: list[Report]
    """Newest first."""
    latest: dict[str, Any] | None
    """The newest report's manifest."""
    status: dict[str, Any] | None
    """The last run's status record."""

    def info(self, key: str, default: Any = None) -> Any:
        """A descriptive field (title, schedule …) from the newest source that has it."""
        for source in (self.status, self.latest):
            if source and source.get(key) not in (None, ""):
                return source[key]
        return default

    @property
    def title(self) -> str:
        return str(self.info("title", self.name))

    @property
    def last_run(self) -> dict[str, Any] | None:
        """The last run: the status record, else what the newest manifest says."""
        if self.status is not None:
            return self.status
        if self.latest is not None:
            return {
                "status": self.latest.get("status", "succeeded"),
                "scheduled_at": self.latest.get("scheduled_at"),
                "stamp": self.latest.get("stamp"),
            }
        return None

    @cached_property
    def view(self) -> dict[str, Any]:
        """What the pages show of this pipeline, prepared once for the index and its page."""
        return _pipeline_view(self)


def read_pipeline(reports_dir: Path, name: str, *, all_manifests: bool) -> PipelineState:
    """Everything the site shows about one pipeline, read from disk.

    ``all_manifests`` reads every report's manifest (the pipeline's own page
    shows each report's figures); otherwise only the newest one (the index).
    """
    folder = reports_dir / name
    owned = owned_files(folder)
    reports = []
    for stamp in sorted(owned, reverse=True):
        report = Report(stamp)
        for path in owned[stamp]:
            if path.parent == folder:
                report.documents[path.suffix.lstrip(".")] = path.name
            elif path.parent.name.endswith("_data"):
                report.data.append(f"{path.parent.name}/{path.name}")
        if report.documents:  # charts or data left without a report are not a report
            reports.append(report)
    for report in reports if all_manifests else reports[:1]:
        if "json" in report.documents:
            report.manifest = read_manifest(folder / report.documents["json"])
    # The figures shown are the newest report's; one written without a manifest has none.
    latest = reports[0].manifest if reports else None
    return PipelineState(
        name=name,
        has_folder=folder.is_dir(),
        reports=reports,
        latest=latest,
        status=read_status(reports_dir, name),
    )


def pipeline_names(reports_dir: Path) -> list[str]:
    """Pipelines with reports or a status record in ``reports_dir``, sorted by name."""
    names = set()
    with contextlib.suppress(OSError):
        for entry in os.scandir(reports_dir):
            if _NAME.match(entry.name) and entry.is_dir() and owned_files(Path(entry.path)):
                names.add(entry.name)
    with contextlib.suppress(OSError):
        for entry in os.scandir(reports_dir / STATE_DIR / "status"):
            stem = entry.name.removesuffix(".json")
            if entry.name.endswith(".json") and _NAME.match(stem):
                names.add(stem)
    return sorted(names)


# --- building --------------------------------------------------------------------------


@contextlib.contextmanager
def site_lock(reports_dir: Path) -> Iterator[None]:
    """Hold the site lock: one rebuild at a time, across threads and processes."""
    lock_path = reports_dir / STATE_DIR / "site.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with _THREAD_LOCK, open(lock_path, "a+b") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: the thread lock and atomic writes still hold
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def build_site(reports_dir: Path, pipelines: Iterable[str] | None = None) -> list[Path]:
    """Rebuild ``reports/index.html`` and the pages of ``pipelines`` (default: every one).

    Returns the pages written (a page whose content did not change is not
    rewritten).  Safe to call from many threads and processes at once.
    """
    reports_dir = Path(reports_dir)
    written = []
    with site_lock(reports_dir):
        names = pipeline_names(reports_dir)
        wanted = set(names) if pipelines is None else set(pipelines) & set(names)
        states = []
        for name in names:
            state = read_pipeline(reports_dir, name, all_manifests=name in wanted)
            states.append(state)
            if name in wanted and state.has_folder:
                page = render_pipeline_page(state)
                if _write_if_changed(reports_dir / name / "index.html", page):
                    written.append(reports_dir / name / "index.html")
        if _write_if_changed(reports_dir / "index.html", render_index(states)):
            written.append(reports_dir / "index.html")
    return written


# Coalescing rebuilds within a process: with many pipelines finishing at once, one
# thread rebuilds for all of them instead of each run rebuilding in turn under the lock.
_STATE_LOCK = threading.Lock()
_PENDING: dict[Path, set[str] | None] = {}  # None: every pipeline's page
_BUILDING: set[Path] = set()


def update_site(reports_dir: Path, pipelines: Iterable[str] | None = None) -> bool:
    """Bring the site up to date after runs of ``pipelines``; the entry point for runs.

    When another thread of this process is rebuilding the same site, the
    request is handed to it (it rebuilds once more before it stops) and this
    returns ``False`` at once; otherwise this thread rebuilds, and again for
    every request that arrives meanwhile, and returns ``True``.  Either way,
    once every caller has returned, the site reflects every run.  A failed
    rebuild leaves its request pending for the next run and raises.
    """
    key = Path(reports_dir).resolve()
    with _STATE_LOCK:
        _add_pending(key, pipelines)
        if key in _BUILDING:
            return False
        _BUILDING.add(key)
    try:
        while True:
            with _STATE_LOCK:
                if key not in _PENDING:
                    # Decided under the lock: a request arriving after this builds itself.
                    _BUILDING.discard(key)
                    return True
                wanted = _PENDING.pop(key)
            try:
                build_site(reports_dir, wanted)
            except BaseException:
                with _STATE_LOCK:
                    _add_pending(key, wanted)
                raise
    finally:
        with _STATE_LOCK:
            _BUILDING.discard(key)


def _add_pending(key: Path, pipelines: Iterable[str] | None) -> None:
    if pipelines is None or (key in _PENDING and _PENDING[key] is None):
        _PENDING[key] = None
        return
    current = _PENDING.setdefault(key, set())
    assert current is not None
    current.update(pipelines)


def _write_if_changed(path: Path, text: str) -> bool:
    data = text.encode("utf-8")
    with contextlib.suppress(OSError):
        if path.read_bytes() == data:
            return False
    atomic_write_bytes(path, data)
    return True


# --- HTML ------------------------------------------------------------------------------
# The pages are Jinja templates beside the report template (render/builtin/site_*.html.j2),
# rendered in the sandbox with autoescape.  What they show is prepared here as plain
# dicts, lists and strings, read with subscripts: the templates hold the markup, this
# code the decisions, and a page of a thousand reports renders as fast as the f-strings
# did (every attribute or method the sandbox resolves costs a safety check).


@cache
def site_css() -> str:
    """The site's style sheet, inlined into every page."""
    return resources.files("eil_pipelines.render").joinpath("site.css").read_text(encoding="utf-8")


def _href(*parts: str) -> str:
    """A relative link from path parts, each percent-encoded."""
    return "/".join(quote(part, safe="._-~") for part in parts)


def _zone(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _when(iso: Any, zone_name: Any) -> tuple[str, str] | str | None:
    """An ISO date-time as (``datetime`` attribute, words) in the pipeline's zone; the
    text itself when it does not parse; ``None`` when there is none."""
    if not isinstance(iso, str):
        return None
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    zone = _zone(zone_name)
    if zone is not None and moment.tzinfo is not None:
        moment = moment.astimezone(zone)
    label = f"{moment:%a} {moment.day} {moment:%b %Y, %H:%M}"
    if moment.second:
        label += f":{moment:%S}"
    if moment.tzinfo is not None:
        label += f" {moment.tzname()}"
    return moment.isoformat(), label


def stamp_label(stamp: str) -> tuple[str, str]:
    """``2026-11-23T0900`` → (``2026-11-23T09:00``, ``Mon 23 Nov 2026, 09:00``):
    the ``datetime`` attribute and the words of a report's date."""
    parsed = parse_stamp(stamp)
    if parsed is None:
        return stamp, stamp
    moment, precision = parsed
    words = f"{moment:%a} {moment.day} {moment:%b %Y}"
    machine = format_stamp(moment, "day")
    if precision != "day":
        clock = f"{moment:%H:%M:%S}" if precision == "second" else f"{moment:%H:%M}"
        words += f", {clock}"
        machine += f"T{clock}"
    return machine, words


def _metric(metric: Mapping[str, Any]) -> dict[str, Any]:
    """One headline figure as the pages print it."""
    return {
        "label": metric.get("label", ""),
        "text": metric.get("text", ""),
        "headline_text": metric.get("text"),
        "change": bool(metric.get("direction")),
        "direction": metric.get("direction", ""),
        "sentiment": metric.get("sentiment", "neutral"),
        "change_text": metric.get("change_text", ""),
        "previous_text": metric.get("previous_text", ""),
    }


def _report_view(report: Report) -> dict[str, Any]:
    """One report's row: its date, links (the first is the main one), data, figures."""
    machine, words = stamp_label(report.stamp)
    metrics = (report.manifest or {}).get("metrics") or []
    return {
        "machine": machine,
        "words": words,
        "links": [
            (_href(report.documents[fmt]), _FORMAT_NAMES[fmt])
            for fmt in ("html", "pdf", "md")
            if fmt in report.documents
        ],
        "data": [(_href(*path.split("/")), path.split("/")[-1]) for path in report.data],
        "json": _href(report.documents["json"]) if "json" in report.documents else None,
        "headline": [_metric(m) for m in metrics[:3] if isinstance(m, Mapping)],
    }


def _pipeline_view(state: PipelineState) -> dict[str, Any]:
    """What the index and the pipeline's own page show of ``state``."""
    zone = state.info("timezone")
    last = state.last_run
    view: dict[str, Any] = {
        "name": state.name,
        "href": _href(state.name),
        "has_folder": state.has_folder,
        "title": state.title,
        "description": state.info("description"),
        "schedule": state.info("schedule") or "on demand only",
        "last_run": None,
        "failure": None,
        "latest": None,
        "reports": [_report_view(report) for report in state.reports],
    }
    if last is not None:
        status = last.get("status")
        mark, word = _STATUS_WORDS.get(
            str(status), ("•", str(status).replace("_", " ").capitalize())
        )
        view["last_run"] = {
            "css": str(status) if str(status) in _STATUS_WORDS else "other",
            "mark": mark,
            "word": word,
            "when": _when(last.get("scheduled_at"), zone),
        }
        if status not in (None, "succeeded"):
            view["failure"] = {
                "when": view["last_run"]["when"],
                "error": last.get("error") or "no message recorded",
            }
    metrics = state.latest.get("metrics") if state.latest is not None else None
    if metrics and state.reports:
        newest = view["reports"][0]
        view["latest"] = {
            "machine": newest["machine"],
            "words": newest["words"],
            "metrics": [_metric(m) for m in metrics if isinstance(m, Mapping)],
        }
    return view


def _render(template: str, values: dict[str, Any]) -> str:
    return render_page(
        template,
        {"csp": Markup(CONTENT_SECURITY_POLICY), "css": Markup(site_css()), **values},
    )


def render_index(states: list[PipelineState]) -> str:
    """``reports/index.html``: every pipeline, its last run, latest figures and reports."""
    ordered = sorted(states, key=lambda s: (s.title.casefold(), s.name))
    return _render(
        "site_index.html.j2",
        {
            "pipelines": [state.view for state in ordered],
            "report_count": sum(len(s.reports) for s in ordered),
            "recent": INDEX_RECENT,
        },
    )


def render_pipeline_page(state: PipelineState) -> str:
    """``reports/<pipeline>/index.html``: one pipeline's history, newest first."""
    return _render("site_pipeline.html.j2", {"state": state.view})
