"""The report site: ``reports/index.html`` and ``reports/<pipeline>/index.html``.

Static, self-contained pages (inline CSS, no script, no outside request, a
Content-Security-Policy that forbids both) that work opened from disk and
from any static web server, with relative links only.

The site shows what is on disk: each pipeline's dated reports (by file name),
their manifests (title, schedule in words, headline metrics) and the small
status file every run leaves in ``reports/.eil/status/<pipeline>.json`` (the
only place a failed run is recorded, since a failed run never touches the
reports).  What it read of the reports is kept in an index on disk
(:mod:`.site_index`), so a run updates the site by looking at the stamps it
touched, not at the whole history: its cost does not grow with the number of
reports.  :func:`build_site` scans the folders again (``eil-run serve`` does at
start); a damaged or foreign index is rebuilt the same way.  Two updates of
the same disk state give the same bytes as a full rebuild.  A lock file
(``reports/.eil/site.lock``, ``flock``) serialises updates, so one that read
the disk before another run finished can never overwrite a newer page; each
page and index file is written atomically.

A pipeline's page shows its newest reports (the last two chunks of
:data:`~.site_index.CHUNK`, so 101 to 200 once there are more than 200); older
ones are on archive pages ``page-<n>.html``, one per chunk, numbered from the
oldest, so a page's address and content stay the same as new reports arrive.

The pages show scheduled times, not wall-clock times, so re-rendering a
report gives the same pages (the wall-clock times are in the manifests).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import threading
import time
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

from ..render.environment import page_environment, render_page
from ..render.markdown import CONTENT_SECURITY_POLICY  # the reports' policy: nothing fetched or run
from .atomic import atomic_write_bytes
from .site_index import (
    CHUNK,
    Entry,
    IndexInvalid,
    PipelineIndex,
    index_dir,
    open_index,
    scan_pipeline,
)
from .stamps import format_stamp, parse_stamp

log = logging.getLogger("eil_pipelines.outputs")

#: Where the engine keeps its own files inside the reports folder.
STATE_DIR = ".eil"
#: On the index, each pipeline lists this many reports; older ones fold into a <details>.
INDEX_RECENT = 10
#: On the index, each pipeline lists at most this many reports; the rest are on its pages.
INDEX_LIMIT = CHUNK

_PAGE_NAME = re.compile(r"^page-[1-9][0-9]*\.html$")

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
    # Not flushed to disk: the run ledger is the durable record of the run; a status
    # file torn by a power cut reads as none, and the site then shows the newest manifest.
    return atomic_write_bytes(
        status_path(reports_dir, record["pipeline"]), data.encode("utf-8"), durable=False
    )


# Status records by (inode, mtime, size): a site update reads every pipeline's, and a
# daemon's are mostly unchanged since its last update.
_STATUS_CACHE: dict[Path, tuple[tuple[int, int, int], dict[str, Any] | None]] = {}


def read_status(reports_dir: Path, pipeline: str) -> dict[str, Any] | None:
    """The pipeline's last-run record, or ``None``."""
    path = status_path(reports_dir, pipeline)
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (st.st_ino, st.st_mtime_ns, st.st_size)
    cached = _STATUS_CACHE.get(path)
    if cached is not None and cached[0] == key:
        return dict(cached[1]) if cached[1] is not None else None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    record = data if isinstance(data, dict) else None
    if len(_STATUS_CACHE) > 4096:
        _STATUS_CACHE.clear()
    _STATUS_CACHE[path] = (key, record)
    return dict(record) if record is not None else None


# --- what is on disk -------------------------------------------------------------------


@dataclass
class Report:
    """One dated report and its files, as the index knows them."""

    stamp: str
    documents: dict[str, str] = field(default_factory=dict)
    """Format (``html``, ``md``, ``pdf``, ``json``) → file name."""
    data: list[str] = field(default_factory=list)
    """Export files, as paths relative to the pipeline folder."""
    headline: list[dict[str, Any]] = field(default_factory=list)
    """The first three figures of its manifest."""
    key: tuple[Any, ...] = ()
    """What its rendered rows depend on, to reuse them (``()``: not reused)."""

    @classmethod
    def from_entry(cls, entry: Entry) -> Report:
        """A report from its index entry."""
        # The manifest's (inode, mtime, size) stands for its figures.
        key = (
            entry["s"],
            tuple(entry["m"]) if entry["m"] else None,
            tuple(sorted(entry["d"].items())),
            tuple(entry["x"]),
            len(entry["h"]) if not entry["m"] else -1,
        )
        return cls(entry["s"], dict(entry["d"]), list(entry["x"]), list(entry["h"]), key)


@dataclass
class PipelineState:
    """A pipeline as the site sees it."""

    name: str
    has_folder: bool
    reports: list[Report]
    """The newest reports, newest first (not every one: see :attr:`count`)."""
    latest: dict[str, Any] | None
    """The newest report's manifest (the fields the site shows)."""
    status: dict[str, Any] | None
    """The last run's status record."""
    count: int = -1
    """How many reports it has (``-1``: ``len(reports)``)."""

    def __post_init__(self) -> None:
        if self.count < 0:
            self.count = len(self.reports)

    def info(self, key: str, default: Any = None) -> Any:
        """A descriptive field (title, schedule …) from the newest source that has it."""
        for source in (self.status, self.latest):
            if source and source.get(key) not in (None, ""):
                return source[key]
        return default

    @property
    def title(self) -> str:
        """The pipeline's title, else its name."""
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

    @cached_property
    def index_section(self) -> Markup:
        """Its section of the site index, rendered once (a state is reused while the
        pipeline does not change)."""
        prefix = self.view["href"] + "/"
        view = {**self.view, "items": [index_item(r, prefix) for r in self.reports]}
        section: Markup = _macros().index_section(view, INDEX_RECENT)
        return section


def pipeline_state(reports_dir: Path, index: PipelineIndex, *, newest: int) -> PipelineState:
    """What the site shows of the pipeline ``index`` describes, with its ``newest`` reports."""
    return PipelineState(
        name=index.name,
        has_folder=index.folder.is_dir(),
        reports=[Report.from_entry(e) for e in index.newest(newest)],
        latest=index.latest,
        status=read_status(reports_dir, index.name),
        count=index.count,
    )


#: pipeline_names by reports folder, with the identities of the two folders it lists.
_NAMES: dict[Path, tuple[tuple[Any, Any], list[str]]] = {}


def pipeline_names(reports_dir: Path) -> list[str]:
    """Pipeline folders and pipelines with a status record in ``reports_dir``, sorted by name.

    A folder that holds no report is dropped later, when its index says so.
    Listed again only when either folder changed (an entry added, removed or
    renamed changes its modification time): two ``stat`` calls per update
    instead of reading 200 entries.
    """
    key = (_file_key(str(reports_dir)), _file_key(str(reports_dir / STATE_DIR / "status")))
    cached = _NAMES.get(reports_dir)
    if cached is not None and cached[0] == key and key[0] is not None:
        return list(cached[1])
    names = _list_names(reports_dir)
    if len(_NAMES) >= 64:
        _NAMES.clear()
    _NAMES[reports_dir] = (key, names)
    return list(names)


def _list_names(reports_dir: Path) -> list[str]:
    names = set()
    with contextlib.suppress(OSError), os.scandir(reports_dir) as entries:
        for entry in entries:
            if _NAME.match(entry.name) and entry.is_dir():
                names.add(entry.name)
    with contextlib.suppress(OSError), os.scandir(reports_dir / STATE_DIR / "status") as entries:
        for entry in entries:
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
    """Rebuild ``reports/index.html`` and the pages of ``pipelines`` (default: every one)
    from a full scan of their folders.

    Returns the pages written (a page whose content did not change is not
    rewritten).  Safe to call from many threads and processes at once.
    """
    return _update(Path(reports_dir), None if pipelines is None else set(pipelines), {})


def _update(
    reports_dir: Path, rescan: set[str] | None, touched: Mapping[str, set[str]]
) -> list[Path]:
    """Scan the folders of ``rescan`` (``None``: every pipeline) again, look at the
    ``touched`` stamps of the others, then write their pages and the site index."""
    written: list[Path] = []
    with site_lock(reports_dir):
        trusted = _trusts_known(reports_dir)
        names = pipeline_names(reports_dir)
        scan = set(names) if rescan is None else rescan & set(names)
        states = []
        for name in names:
            if name not in scan and name not in touched:
                known = _KNOWN.get((reports_dir, name)) if trusted else None
                if known is None or _file_key(known.paths[2]) != known.key[2]:
                    # Not trusted, or its folder changed (a report added or deleted
                    # by hand): every file of its state is looked at.
                    known = _known_state(reports_dir, name)
                if known is not None:
                    if known.state is not None:
                        states.append(known.state)
                    continue
            if name in scan:
                index, rebuilt = _rescan(reports_dir, name), True
            else:
                index, rebuilt = open_index(reports_dir, name)
                for stamp in sorted(touched.get(name, ())):
                    index.touch(stamp)
                if not rebuilt and not index.spot_check():
                    log.info("the site index of %s is out of date: scanning its folder", name)
                    index, rebuilt = scan_pipeline(reports_dir, name, index), True
            if index.changed:
                index.save()
            if index.count == 0 and read_status(reports_dir, name) is None:
                # A folder without reports (notes, a removed pipeline's leftovers).
                _remember_state(reports_dir, index, None)
                continue
            state = pipeline_state(reports_dir, index, newest=INDEX_LIMIT)
            states.append(state)
            if (rebuilt or name in touched) and state.has_folder:
                written.extend(_write_pipeline_pages(reports_dir, index, state, rebuilt=rebuilt))
            _remember_state(reports_dir, index, state)
        if _write_if_changed(reports_dir / "index.html", render_index(states)):
            written.append(reports_dir / "index.html")
        _bump_generation(reports_dir, checked=not trusted)
    return written


#: How long this process trusts what it knows of the pipelines no run touched,
#: while no other process has updated the site: within it, an update looks at each
#: such pipeline's folder only (one ``stat``: a report added or deleted by hand
#: changes it).  After it, all of a pipeline's files are looked at again (its index
#: head and status record too), so even a hand edit of those shows within about this
#: long, as does the write of a process that does not mark its updates.
TRUST_KNOWN_S = 1.0

# Per reports folder: the generation file as this process last wrote it, and when it
# last looked at every pipeline's files.
_GENERATIONS: dict[Path, tuple[tuple[int, int, int] | None, float]] = {}


def _generation_path(reports_dir: Path) -> Path:
    return reports_dir / STATE_DIR / "site.generation"


def _trusts_known(reports_dir: Path) -> bool:
    """Whether the last update was this process's own, and recent: then the pipelines
    that no run touched are as it left them, and their files need no ``stat``.

    Every update (each process's, under the site lock) writes the generation file
    anew, so its identity changes with every update by anyone.  At 200 pipelines,
    checking all of each untouched one cost about 1,000 system calls per run; a
    trusted update makes one per pipeline (its folder).
    """
    mine = _GENERATIONS.get(reports_dir)
    if mine is None or time.monotonic() - mine[1] >= TRUST_KNOWN_S:
        return False
    return mine[0] is not None and _file_key(str(_generation_path(reports_dir))) == mine[0]


def _bump_generation(reports_dir: Path, *, checked: bool) -> None:
    """Write the generation file anew (a new inode: other processes see an update)."""
    path = _generation_path(reports_dir)
    try:
        atomic_write_bytes(path, os.urandom(8).hex().encode(), durable=False)
        key = _file_key(str(path))
    except OSError:
        key = None  # not trusted next time: every pipeline is looked at again
    before = _GENERATIONS.get(reports_dir)
    since = time.monotonic() if checked or before is None else before[1]
    _GENERATIONS[reports_dir] = (key, since)


@dataclass
class _Known:
    """What the last update of this process made of a pipeline, and when it holds."""

    paths: tuple[str, ...]
    """Its index head, status record and folder."""
    key: tuple[Any, ...]
    """Their identities then."""
    checks: tuple[str, ...]
    """The files :meth:`~.site_index.PipelineIndex.spot_check` looks at."""
    state: PipelineState | None
    """Its state (``None``: not on the site)."""


# Per (reports folder, pipeline): an update reuses the state of every pipeline whose
# index, status record and folder did not change since, so its cost is that of the
# pipelines a run touched, not of every pipeline on the site.  Paths are kept as
# strings: at 1,000 pipelines, pathlib's joins would cost more than the stats.
_KNOWN: dict[tuple[Path, str], _Known] = {}
_KNOWN_LIMIT = 20_000


def _file_key(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _known_state(reports_dir: Path, name: str) -> _Known | None:
    """The pipeline as the last update saw it, when nothing of it changed since
    (another process's writes change the files, so they count too)."""
    known = _KNOWN.get((reports_dir, name))
    if known is None or known.key != tuple(_file_key(p) for p in known.paths):
        return None
    if not all(os.path.lexists(path) for path in known.checks):
        return None
    return known


def _remember_state(reports_dir: Path, index: PipelineIndex, state: PipelineState | None) -> None:
    if len(_KNOWN) >= _KNOWN_LIMIT:
        _KNOWN.clear()
    name = index.name
    head = index_dir(reports_dir, name) / "head.json"
    paths = (str(head), str(status_path(reports_dir, name)), str(reports_dir / name))
    order = index.order
    checks: tuple[str, ...] = ()
    if order:
        ends = (index.entries(order[0])[0], index.entries(order[-1])[-1])
        checks = tuple(str(index.folder / next(iter(e["d"].values()))) for e in ends)
    key = tuple(_file_key(p) for p in paths)
    _KNOWN[(reports_dir, name)] = _Known(paths, key, checks, state)


def _rescan(reports_dir: Path, name: str) -> PipelineIndex:
    """A full scan of the pipeline's folder, parsing only the manifests that changed."""
    try:
        old = PipelineIndex.load(reports_dir, name)
    except IndexInvalid:  # only a missed shortcut here
        old = None
    return scan_pipeline(reports_dir, name, old)


def _write_pipeline_pages(
    reports_dir: Path, index: PipelineIndex, state: PipelineState, *, rebuilt: bool
) -> list[Path]:
    """The pipeline's page (its newest reports) and the archive pages that changed."""
    folder = reports_dir / index.name
    written = []
    order = index.order
    window = order[-2:]  # the newest two chunks are on index.html
    archive = order[:-2]
    head = [Report.from_entry(e) for c in reversed(window) for e in reversed(index.entries(c))]
    older = _page_name(archive[-1]) if archive else None
    page = render_pipeline_page(state, head, older=older)
    if _write_if_changed(folder / "index.html", page):
        written.append(folder / "index.html")
    pages: dict[str, str] = {}
    for i, chunk in enumerate(archive):
        newer = _page_name(archive[i + 1]) if i + 1 < len(archive) else "index.html"
        prev = _page_name(archive[i - 1]) if i > 0 else None
        name = _page_name(chunk)
        key = json.dumps([index.chunks[chunk][3], newer, prev, state.title])
        pages[name] = key
        if index.pages.get(name) == key and not rebuilt:
            continue
        rows = [Report.from_entry(e) for e in reversed(index.entries(chunk))]
        html = render_archive_page(state, rows, newer=newer, older=prev, number=chunk + 1)
        if _write_if_changed(folder / name, html):
            written.append(folder / name)
    gone = set(index.pages) - set(pages)
    if rebuilt:  # what the lost index knew is gone: look at the folder
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            gone |= {e.name for e in entries if _PAGE_NAME.match(e.name)} - set(pages)
    for name in gone:
        if _PAGE_NAME.match(name):
            with contextlib.suppress(OSError):
                (folder / name).unlink()
    if pages != index.pages:
        index.pages = pages
        index.save()
    return written


def _page_name(chunk: int) -> str:
    return f"page-{chunk + 1}.html"


# Coalescing rebuilds within a process: with many pipelines finishing at once, one
# thread rebuilds for all of them instead of each run rebuilding in turn under the lock.
_STATE_LOCK = threading.Lock()


@dataclass
class _Request:
    """What the runs of one reports folder asked for since its last update."""

    everything: bool = False
    """Some caller asked for a full rebuild of every pipeline."""
    rescan: set[str] = field(default_factory=set)
    """Pipelines to scan again in full (named without stamps)."""
    touched: dict[str, set[str]] = field(default_factory=dict)
    """Stamps written or deleted, by pipeline."""

    def add(
        self, pipelines: Iterable[str] | None, touched: Mapping[str, Iterable[str]] | None
    ) -> None:
        """Add a caller's request."""
        if pipelines is None and touched is None:
            self.everything = True
        self.rescan.update(pipelines or ())
        for name, stamps in (touched or {}).items():
            self.touched.setdefault(name, set()).update(stamps)

    def merge(self, other: _Request) -> None:
        """Add a request that failed, to be tried again."""
        self.everything = self.everything or other.everything
        self.add(other.rescan, other.touched)


_PENDING: dict[Path, _Request] = {}
_BUILDING: set[Path] = set()


@functools.lru_cache(maxsize=64)
def _site_key(reports_dir: str, cwd: str) -> Path:
    # One folder, one key, however it is spelled; resolved once, not once per run.
    return Path(cwd, reports_dir).resolve()


def update_site(
    reports_dir: Path,
    pipelines: Iterable[str] | None = None,
    *,
    touched: Mapping[str, Iterable[str]] | None = None,
) -> bool:
    """Bring the site up to date after runs of ``pipelines``; the entry point for runs.

    ``touched`` names, by pipeline, the stamps whose files a run wrote or
    deleted: only those are looked at on disk (a run's cost does not grow with
    the history).  The folders of ``pipelines`` are scanned again in full; with
    neither, every pipeline is (:func:`build_site`).

    When another thread of this process is rebuilding the same site, the
    request is handed to it (it rebuilds once more before it stops) and this
    returns ``False`` at once; otherwise this thread rebuilds, and again for
    every request that arrives meanwhile, and returns ``True``.  Either way,
    once every caller has returned, the site reflects every run.  A failed
    rebuild leaves its request pending for the next run and raises.
    """
    key = _site_key(str(reports_dir), os.getcwd())
    with _STATE_LOCK:
        _PENDING.setdefault(key, _Request()).add(pipelines, touched)
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
                request = _PENDING.pop(key)
            try:
                _update(
                    Path(reports_dir),
                    None if request.everything else request.rescan,
                    request.touched,
                )
            except BaseException:
                with _STATE_LOCK:
                    _PENDING.setdefault(key, _Request()).merge(request)
                raise
    finally:
        with _STATE_LOCK:
            _BUILDING.discard(key)


def _write_if_changed(path: Path, text: str) -> bool:
    data = text.encode("utf-8")
    with contextlib.suppress(OSError):
        if path.read_bytes() == data:
            return False
    # Pages are made again from the index by the next update: a torn page after a
    # power cut heals then, so no fsync (the rename alone keeps readers whole).
    atomic_write_bytes(path, data, durable=False)
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


def _when(iso: Any, zone_name: Any, stamp: Any = None) -> tuple[str, str] | str | None:
    """An ISO date-time as (``datetime`` attribute, words) in the pipeline's zone; the
    text itself when it does not parse; ``None`` when there is none.

    The words stop at the minute ("07:49", not "07:49:50" for a ``--once`` run
    without ``--at``) unless the run's ``stamp`` itself has seconds (a schedule
    that fires more than once a minute), where the minute would not tell runs apart.
    """
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
    parsed = parse_stamp(stamp) if isinstance(stamp, str) else None
    if moment.second and parsed is not None and parsed[1] == "second":
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
        "headline": [_metric(m) for m in report.headline],
    }


# Rendered rows by Report.key: a report's row is the same on every page and every
# update, so a daemon renders each once instead of a hundred rows per run.
_ROWS: dict[tuple[Any, ...], dict[str, Any]] = {}
_ROWS_LIMIT = 20_000


def _row_slot(report: Report) -> dict[str, Any]:
    if not report.key:
        return {"view": _report_view(report)}
    slot = _ROWS.get(report.key)
    if slot is None:
        if len(_ROWS) >= _ROWS_LIMIT:
            _ROWS.clear()
        slot = _ROWS[report.key] = {"view": _report_view(report)}
    return slot


@cache
def _macros() -> Any:
    return page_environment().get_template("site_macros.html.j2").module


def history_row(report: Report) -> Markup:
    """The report's row in a pipeline's history table."""
    slot = _row_slot(report)
    if "row" not in slot:
        slot["row"] = _macros().history_row(slot["view"])
    row: Markup = slot["row"]  # a macro's output is Markup already
    return row


def index_item(report: Report, prefix: str) -> Markup:
    """The report's item in the site index, its links under ``prefix``."""
    slot = _row_slot(report)
    items = slot.setdefault("items", {})
    if prefix not in items:
        items[prefix] = _macros().report_item(slot["view"], prefix)
    item: Markup = items[prefix]
    return item


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
        "reports": [_row_slot(report)["view"] for report in state.reports],
        "count": state.count,
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
            "when": _when(last.get("scheduled_at"), zone, last.get("stamp")),
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
    """``reports/index.html``: every pipeline, its last run, latest figures and newest reports."""
    ordered = sorted(states, key=lambda s: (s.title.casefold(), s.name))
    return _render(
        "site_index.html.j2",
        {
            "sections": [state.index_section for state in ordered],
            "report_count": sum(s.count for s in ordered),
        },
    )


def render_pipeline_page(
    state: PipelineState, reports: list[Report] | None = None, *, older: str | None = None
) -> str:
    """``reports/<pipeline>/index.html``: the pipeline's newest ``reports`` (default: those of
    ``state``), newest first, and a link to the ``older`` archive page when there is one."""
    rows = [history_row(r) for r in (state.reports if reports is None else reports)]
    return _render("site_pipeline.html.j2", {"state": state.view, "rows": rows, "older": older})


def render_archive_page(
    state: PipelineState, reports: list[Report], *, newer: str, older: str | None, number: int
) -> str:
    """``reports/<pipeline>/page-<number>.html``: one chunk of older reports, newest first.

    It shows nothing that changes with each run (no last run, no count), so it
    is written once, and again only when its reports or its neighbours change.
    """
    return _render(
        "site_archive.html.j2",
        {
            "state": {"name": state.name, "title": state.title},
            "rows": [history_row(r) for r in reports],
            "newer": newer,
            "older": older,
            "number": number,
        },
    )
