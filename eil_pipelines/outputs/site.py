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
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup, escape

from .atomic import atomic_write_bytes
from .manifest import read_manifest
from .report_files import owned_files

log = logging.getLogger("eil_pipelines.outputs")

#: Where the engine keeps its own files inside the reports folder.
STATE_DIR = ".eil"
#: On the index, each pipeline lists this many reports; older ones fold into a <details>.
INDEX_RECENT = 10

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_STAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(\d{2})(\d{2})?)?$")

# Same policy as the HTML reports: nothing is fetched, nothing runs.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)

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

SITE_CSS = """\
:root { color-scheme: light; --text: #1f2328; --muted: #57606a; --line: #d0d7de;
  --panel: #f6f8fa; --link: #0550ae; --good: #116329; --good-bg: #dafbe1; --bad: #a40e26;
  --bad-bg: #ffebe9; --neutral-bg: #eaeef2; }
*, *::before, *::after { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--text); line-height: 1.5;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "Noto Sans", sans-serif; }
.wrap { max-width: 1040px; margin: 0 auto; padding: 1.25rem 1.5rem; }
header.site { border-bottom: 1px solid var(--line); background: var(--panel); }
header.site .wrap { padding-top: 0.75rem; padding-bottom: 0.75rem; }
header.site p { margin: 0; font-weight: 600; }
main .wrap { padding-top: 2rem; padding-bottom: 3rem; }
h1 { font-size: 2rem; line-height: 1.2; margin: 0 0 0.5rem; }
h2 { font-size: 1.35rem; margin: 0 0 0.5rem; }
h3 { font-size: 1rem; margin: 1rem 0 0.4rem; }
a { color: var(--link); }
a:focus-visible, .table-wrap:focus-visible, summary:focus-visible {
  outline: 3px solid var(--link); outline-offset: 2px; }
.meta, .desc { color: var(--muted); }
.desc { margin: 0 0 0.75rem; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 1.25rem 1.4rem;
  margin: 1.25rem 0; }
.facts { display: flex; flex-wrap: wrap; gap: 0.4rem 2rem; margin: 0 0 0.75rem; }
.facts dt { color: var(--muted); font-size: 0.8rem; font-weight: 600; text-transform: uppercase;
  letter-spacing: 0.04em; }
.facts dd { margin: 0; }
.status { display: inline-block; padding: 0 0.5rem; border-radius: 999px; font-weight: 600; }
.status.succeeded { background: var(--good-bg); color: var(--good); }
.status.failed, .status.timed_out { background: var(--bad-bg); color: var(--bad); }
.alert { border: 1px solid var(--bad); border-radius: 6px; background: var(--bad-bg);
  padding: 0.6rem 0.9rem; margin: 0 0 0.9rem; }
.alert p { margin: 0; color: var(--bad); }
.alert pre { margin: 0.4rem 0 0; white-space: pre-wrap; overflow-wrap: anywhere;
  font-size: 0.85rem; color: var(--text); }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(11rem, 1fr)); gap: 0.75rem;
  margin: 0 0 0.75rem; }
.kpi { border: 1px solid var(--line); border-radius: 6px; padding: 0.6rem 0.8rem; }
.kpi dt { color: var(--muted); font-size: 0.8rem; font-weight: 600; }
.kpi dd { margin: 0; }
.kpi-value { font-size: 1.35rem; font-weight: 700; font-variant-numeric: tabular-nums; }
.kpi-change { font-size: 0.85rem; color: var(--muted); }
.delta { display: inline-block; padding: 0 0.4rem; border-radius: 999px; font-weight: 600;
  background: var(--neutral-bg); color: var(--muted); white-space: nowrap; }
.delta.good { background: var(--good-bg); color: var(--good); }
.delta.bad { background: var(--bad-bg); color: var(--bad); }
ul.reports { margin: 0; padding-left: 1.2rem; }
ul.reports li { margin: 0.15rem 0; }
.also { color: var(--muted); font-size: 0.9rem; }
details { margin-top: 0.4rem; }
summary { cursor: pointer; color: var(--link); }
.table-wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; width: 100%; font-size: 0.92rem; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.4rem; }
th, td { padding: 0.45rem 0.65rem; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
thead th { background: var(--panel); }
tbody th { font-weight: 600; white-space: nowrap; }
.visually-hidden { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px;
  overflow: hidden; clip: rect(0, 0, 0, 0); white-space: nowrap; border: 0; }
footer.site { border-top: 1px solid var(--line); color: var(--muted); font-size: 0.85rem; }
@media (max-width: 600px) { .wrap { padding-left: 1rem; padding-right: 1rem; }
  h1 { font-size: 1.6rem; } }
"""


def _page(title: str, header: Markup, body: Markup) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
        '<meta name="generator" content="eil-pipelines">\n'
        f"<title>{escape(title)}</title>\n"
        f"<style>\n{SITE_CSS}</style>\n"
        "</head>\n"
        "<body>\n"
        f'<header class="site"><div class="wrap">{header}</div></header>\n'
        f'<main><div class="wrap">\n{body}</div></main>\n'
        '<footer class="site"><div class="wrap"><p>Generated by eil-pipelines from the reports '
        "in this folder.</p></div></footer>\n"
        "</body>\n"
        "</html>\n"
    )


def _href(*parts: str) -> str:
    return "/".join(quote(part, safe="._-~") for part in parts)


def _zone(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _time(iso: Any, zone_name: Any) -> Markup:
    """A ``<time>`` element for an ISO date-time, shown in the pipeline's zone."""
    if not isinstance(iso, str):
        return Markup("unknown time")
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return Markup("{}").format(iso)
    zone = _zone(zone_name)
    if zone is not None and moment.tzinfo is not None:
        moment = moment.astimezone(zone)
    label = f"{moment:%a} {moment.day} {moment:%b %Y, %H:%M}"
    if moment.second:
        label += f":{moment:%S}"
    if moment.tzinfo is not None:
        label += f" {moment.tzname()}"
    return Markup('<time datetime="{}">{}</time>').format(moment.isoformat(), label)


def stamp_label(stamp: str) -> tuple[str, str]:
    """``2026-11-23T0900`` → (``2026-11-23T09:00``, ``Mon 23 Nov 2026, 09:00``):
    the ``datetime`` attribute and the words of a report's date."""
    match = _STAMP.match(stamp)
    if not match:
        return stamp, stamp
    year, month, day, hour, minute, second = match.groups()
    moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0))
    words = f"{moment:%a} {moment.day} {moment:%b %Y}"
    machine = f"{year}-{month}-{day}"
    if hour is not None:
        words += f", {hour}:{minute}" + (f":{second}" if second else "")
        machine += f"T{hour}:{minute}" + (f":{second}" if second else "")
    return machine, words


def _stamp_time(stamp: str) -> Markup:
    machine, words = stamp_label(stamp)
    return Markup('<time datetime="{}">{}</time>').format(machine, words)


def _status_badge(status: Any) -> Markup:
    mark, word = _STATUS_WORDS.get(str(status), ("•", str(status).replace("_", " ").capitalize()))
    css = str(status) if str(status) in _STATUS_WORDS else "other"
    return Markup('<span class="status {}"><span aria-hidden="true">{}</span> {}</span>').format(
        css, mark, word
    )


def _last_run(state: PipelineState) -> Markup:
    last = state.last_run
    if last is None:
        return Markup("never run")
    when = _time(last.get("scheduled_at"), state.info("timezone"))
    return Markup("{} · scheduled {}").format(_status_badge(last.get("status")), when)


def _failure(state: PipelineState) -> Markup:
    last = state.last_run
    if not last or last.get("status") in (None, "succeeded"):
        return Markup("")
    error = last.get("error") or "no message recorded"
    return Markup(
        '<div class="alert"><p><strong>The last run failed</strong> (report for {}); the reports '
        "below are from earlier runs.</p><pre>{}</pre></div>\n"
    ).format(_time(last.get("scheduled_at"), state.info("timezone")), error)


def _kpis(manifest: Mapping[str, Any] | None) -> Markup:
    metrics = (manifest or {}).get("metrics") or []
    if not metrics:
        return Markup("")
    items = []
    for metric in metrics:
        if not isinstance(metric, Mapping):
            continue
        change = Markup("")
        if metric.get("direction"):
            change = Markup(
                '<dd class="kpi-change"><span class="delta {} {}">{}</span> vs {}</dd>'
            ).format(
                metric.get("direction", ""),
                metric.get("sentiment", "neutral"),
                metric.get("change_text", ""),
                metric.get("previous_text", ""),
            )
        items.append(
            Markup('<div class="kpi"><dt>{}</dt><dd class="kpi-value">{}</dd>{}</div>').format(
                metric.get("label", ""), metric.get("text", ""), change
            )
        )
    return Markup('<dl class="kpis">\n{}\n</dl>\n').format(Markup("\n").join(items))


def _headline(manifest: Mapping[str, Any] | None) -> Markup:
    """The figures of one report in a line, for the history table."""
    metrics = (manifest or {}).get("metrics") or []
    parts = []
    for metric in metrics[:3]:
        if not isinstance(metric, Mapping):
            continue
        part = Markup("{} <strong>{}</strong>").format(metric.get("label", ""), metric.get("text"))
        if metric.get("direction"):
            part += Markup(' <span class="delta {} {}">{}</span>').format(
                metric.get("direction", ""),
                metric.get("sentiment", "neutral"),
                metric.get("change_text", ""),
            )
        parts.append(part)
    return Markup("<br>").join(parts) if parts else Markup("")


def _main_link(report: Report, prefix: tuple[str, ...]) -> Markup:
    for fmt in ("html", "pdf", "md"):
        if fmt in report.documents:
            return Markup('<a href="{}">{}</a>').format(
                _href(*prefix, report.documents[fmt]), _stamp_time(report.stamp)
            )
    return _stamp_time(report.stamp)


def _other_links(report: Report, prefix: tuple[str, ...], *, skip_first: bool) -> list[Markup]:
    """Links to the report's other formats, each named with the date for screen readers."""
    present = [f for f in ("html", "pdf", "md") if f in report.documents]
    if skip_first:
        present = present[1:]
    _, words = stamp_label(report.stamp)
    return [
        Markup('<a href="{}">{}<span class="visually-hidden"> of {}</span></a>').format(
            _href(*prefix, report.documents[f]), _FORMAT_NAMES[f], words
        )
        for f in present
    ]


def _report_item(report: Report, name: str) -> Markup:
    others = _other_links(report, (name,), skip_first=True)
    also = Markup(' <span class="also">({})</span>').format(Markup(", ").join(others))
    return Markup("<li>{}{}</li>").format(_main_link(report, (name,)), also if others else "")


def _index_section(state: PipelineState) -> Markup:
    anchor = f"p-{state.name}"
    title = escape(state.title)
    if state.has_folder:
        title = Markup('<a href="{}">{}</a>').format(_href(state.name, "index.html"), state.title)
    parts = [Markup('<h2 id="{}">{}</h2>\n').format(anchor, title)]
    description = state.info("description")
    if description:
        parts.append(Markup('<p class="desc">{}</p>\n').format(description))
    schedule = state.info("schedule") or "on demand only"
    parts.append(
        Markup(
            '<dl class="facts"><div><dt>Schedule</dt><dd>{}</dd></div>'
            "<div><dt>Last run</dt><dd>{}</dd></div>"
            "<div><dt>Reports</dt><dd>{}</dd></div></dl>\n"
        ).format(schedule, _last_run(state), len(state.reports))
    )
    parts.append(_failure(state))
    if state.reports:
        newest = state.reports[0]
        if state.latest is not None and state.latest.get("metrics"):
            parts.append(Markup("<h3>Latest figures ({})</h3>\n").format(_stamp_time(newest.stamp)))
            parts.append(_kpis(state.latest))
        parts.append(Markup("<h3>Reports, newest first</h3>\n"))
        recent, older = state.reports[:INDEX_RECENT], state.reports[INDEX_RECENT:]
        items = Markup("\n").join(_report_item(r, state.name) for r in recent)
        parts.append(Markup('<ul class="reports">\n{}\n</ul>\n').format(items))
        if older:
            items = Markup("\n").join(_report_item(r, state.name) for r in older)
            parts.append(
                Markup(
                    '<details><summary>{} older report{}</summary>\n<ul class="reports">\n{}\n'
                    "</ul>\n</details>\n"
                ).format(len(older), "s" if len(older) != 1 else "", items)
            )
    else:
        parts.append(Markup('<p class="meta">No report yet.</p>\n'))
    return Markup('<section class="card" aria-labelledby="{}">\n{}</section>\n').format(
        anchor, Markup("").join(parts)
    )


def render_index(states: list[PipelineState]) -> str:
    """``reports/index.html``: every pipeline, its last run, latest figures and reports."""
    ordered = sorted(states, key=lambda s: (s.title.casefold(), s.name))
    count = sum(len(s.reports) for s in ordered)
    body = [Markup("<h1>Reports</h1>\n")]
    if not ordered:
        body.append(
            Markup(
                '<p class="meta">No reports yet. Run <code>eil-run --once</code> to make the '
                "first ones.</p>\n"
            )
        )
    else:
        body.append(
            Markup('<p class="meta">{} pipeline{} · {} report{}</p>\n').format(
                len(ordered),
                "s" if len(ordered) != 1 else "",
                count,
                "s" if count != 1 else "",
            )
        )
        body.extend(_index_section(s) for s in ordered)
    header = Markup("<p>eil-pipelines reports</p>")
    return _page("Reports", header, Markup("").join(body))


def render_pipeline_page(state: PipelineState) -> str:
    """``reports/<pipeline>/index.html``: one pipeline's history, newest first."""
    body = [Markup("<h1>{}</h1>\n").format(state.title)]
    description = state.info("description")
    if description:
        body.append(Markup('<p class="desc">{}</p>\n').format(description))
    schedule = state.info("schedule") or "on demand only"
    body.append(
        Markup(
            '<dl class="facts"><div><dt>Pipeline</dt><dd><code>{}</code></dd></div>'
            "<div><dt>Schedule</dt><dd>{}</dd></div>"
            "<div><dt>Last run</dt><dd>{}</dd></div>"
            "<div><dt>Reports</dt><dd>{}</dd></div></dl>\n"
        ).format(state.name, schedule, _last_run(state), len(state.reports))
    )
    body.append(_failure(state))
    if state.latest is not None and state.latest.get("metrics") and state.reports:
        body.append(
            Markup("<h2>Latest figures ({})</h2>\n").format(_stamp_time(state.reports[0].stamp))
        )
        body.append(_kpis(state.latest))
    body.append(Markup("<h2>History</h2>\n"))
    if not state.reports:
        body.append(Markup('<p class="meta">No report yet.</p>\n'))
    else:
        rows = []
        for report in state.reports:
            others = Markup(", ").join(_other_links(report, (), skip_first=True))
            data = Markup(", ").join(
                Markup('<a href="{}">{}</a>').format(_href(*path.split("/")), path.split("/")[-1])
                for path in report.data
            )
            manifest = Markup("")
            if "json" in report.documents:
                _, words = stamp_label(report.stamp)
                manifest = Markup(
                    '<a href="{}">JSON<span class="visually-hidden"> manifest of {}</span></a>'
                ).format(_href(report.documents["json"]), words)
            rows.append(
                Markup(
                    '<tr><th scope="row">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>'
                ).format(_main_link(report, ()), _headline(report.manifest), others, data, manifest)
            )
        body.append(
            Markup(
                '<div class="table-wrap" role="region" aria-label="History" tabindex="0">\n'
                "<table>\n<caption>Every report of this pipeline, newest first</caption>\n"
                '<thead><tr><th scope="col">Report</th><th scope="col">Headline figures</th>'
                '<th scope="col">Other formats</th><th scope="col">Data</th>'
                '<th scope="col">Manifest</th></tr></thead>\n<tbody>\n{}\n</tbody>\n</table>\n'
                "</div>\n"
            ).format(Markup("\n").join(rows))
        )
    header = Markup(
        '<nav aria-label="Breadcrumb"><p><a href="../index.html">All reports</a> '
        '<span aria-hidden="true">›</span> {}</p></nav>'
    ).format(state.title)
    return _page(f"{state.title}: reports", header, Markup("").join(body))
