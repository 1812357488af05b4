"""``eil-run dev``: a pipeline's HTML report rendered on demand, again on every edit.

The use case behind the author's live preview (the HTTP side is
:mod:`eil_pipelines.web.dev`):

* :meth:`DevSession.render` loads the pipelines that PATH names, and renders
  one as if scheduled at ``at`` (default: now, fixed when the session starts)
  through the run's own stages (:func:`eil_pipelines.run.pipeline.render_documents`),
  writing nothing.
* Query results are cached by (connection, SQL text, bound parameters): a
  template edit re-renders without running a query; an edited query runs
  again (its text changed).  The cache does not see data changes: restart
  ``eil-run dev`` to read new data.
* A render that fails (an invalid file: ``file: key: message``; a template
  error: ``template:line: message``; a query error) keeps the last good HTML
  and records the error; the next good render clears it.
* :meth:`DevSession.watch` polls the project's file watcher
  (:class:`~eil_pipelines.app.watch.FileWatcher`: the pipeline files, their
  SQL files and templates) and, on a change, re-renders the pipelines that
  were viewed and calls the listeners, so a browser can reload.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..charts.work import ChartJob, RenderedChart, render_job
from ..errors import ConfigErrors, EilError, UsageError
from ..run.context import make_context
from ..run.pipeline import render_documents, utc_now
from ..sources import open_source
from ..spec.loader import Pipeline, load_pipelines_lenient
from .watch import FileWatcher, declared_references, pipeline_references

__all__ = ["DevSession", "DevState"]

#: Query results (and drawn charts) kept, least recently used first out.
CACHE_SIZE = 128


class ChartCache:
    """Draws charts, keeping each drawing by (chart, result, formats).

    A result is known by identity: the query cache hands the same DataFrame
    out again until its SQL or parameters change, and each entry keeps its
    frame alive, so an ``id`` is never reused while its entry exists.  A
    template edit then re-renders without drawing a chart.
    """

    def __init__(self, size: int = CACHE_SIZE):
        self.size = size
        self.drawn = 0
        """Charts drawn (not found in the cache) by the latest :meth:`render`."""
        self._entries: OrderedDict[tuple[Any, ...], tuple[Any, RenderedChart]] = OrderedDict()

    def render(self, jobs: Sequence[ChartJob]) -> list[RenderedChart]:
        """Each job's images, from the cache or drawn now."""
        out = []
        self.drawn = 0
        for job in jobs:
            key = (job.spec.model_dump_json(), id(job.data), job.currency, job.svg, job.png)
            if key in self._entries:
                self._entries.move_to_end(key)
                out.append(self._entries[key][1])
                continue
            images = render_job(job)
            self.drawn += 1
            self._entries[key] = (job.data, images)
            out.append(images)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return out


@dataclass
class DevState:
    """What the browser shows of one pipeline."""

    html: str | None = None
    """The last good render (``None`` before the first one succeeded)."""
    error: str | None = None
    """Why the latest render failed (``None`` when it succeeded)."""
    version: int = 0
    """Bumped on every render, good or failed."""
    good_version: int = 0
    """The version of ``html`` (a failed render leaves it)."""
    seconds: float = 0.0
    """How long the latest render took."""
    queries_run: int = 0
    """Queries the latest render ran (the others came from the cache)."""
    charts_drawn: int = 0
    """Charts the latest render drew (the others came from the cache)."""


@dataclass
class DevSession:
    """The pipelines of PATH, rendered on demand with a query cache."""

    path: Path
    """A pipelines folder or one pipeline file."""
    at: datetime | None = None
    """The scheduled time every render stands for (default: now, at the first render)."""
    clock: Callable[[], datetime] = utc_now
    """The wall clock (for the default ``at``)."""
    states: dict[str, DevState] = field(default_factory=dict)
    """Each viewed pipeline's state, by name."""
    _cache: OrderedDict[tuple[str, str, str], Any] = field(default_factory=OrderedDict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _pipelines: dict[str, Pipeline] = field(default_factory=dict)
    _problems: list[str] = field(default_factory=list)
    _files: set[Path] = field(default_factory=set)
    _charts: ChartCache = field(default_factory=ChartCache)

    def __post_init__(self) -> None:
        if self.at is None:
            self.at = self.clock()
        self.reload()

    # --- loading --------------------------------------------------------------------

    def reload(self) -> None:
        """Read the pipeline files again (each render does too)."""
        with self._lock:
            try:
                valid, errors = load_pipelines_lenient(self.path)
            except EilError as exc:
                valid, errors = [], []
                self._problems = [str(exc)]
            else:
                self._problems = [e.format(e.shown) for e in errors]
            self._pipelines = {p.name: p for p in valid}
            self._files = {e.file for e in errors}

    def names(self) -> list[str]:
        """The valid pipelines' names."""
        with self._lock:
            return sorted(self._pipelines)

    def problems(self) -> list[str]:
        """The invalid files' messages, as of the last reload."""
        with self._lock:
            return list(self._problems)

    def references(self) -> list[Path]:
        """What the file watcher watches beside the pipeline files."""
        with self._lock:
            found = [r for p in self._pipelines.values() for r in pipeline_references(p)]
            root = self.path if self.path.is_dir() else self.path.parent
            for file in self._files:
                found += declared_references(file, root.parent)
            return found

    # --- rendering --------------------------------------------------------------------

    def state(self, name: str) -> DevState:
        """The pipeline's state, rendered first when it was never viewed."""
        with self._lock:
            if name not in self.states:
                if name not in self._pipelines and not any(name in text for text in self._problems):
                    known = ", ".join(self.names()) or "none"
                    raise UsageError(f"no pipeline named {name} (pipelines: {known})")
                self.states[name] = DevState()
                self._render(name)
            return self.states[name]

    def render(self, name: str) -> DevState:
        """Render ``name`` again now (after an edit); its state."""
        with self._lock:
            self.states.setdefault(name, DevState())
            self._render(name)
            return self.states[name]

    def _render(self, name: str) -> None:
        state = self.states[name]
        started = time.perf_counter()
        state.version += 1
        try:
            state.html, state.queries_run = self._html(name)
            state.charts_drawn = self._charts.drawn
            state.error = None
            state.good_version = state.version
        except ConfigErrors as exc:
            state.error = "\n".join(e.format(e.shown) for e in exc.errors)
        except EilError as exc:
            state.error = str(exc)
        except Exception as exc:  # a bug: shown, the server goes on
            state.error = f"internal error: {type(exc).__name__}: {exc}"
        state.seconds = time.perf_counter() - started

    def _html(self, name: str) -> tuple[str, int]:
        pipeline = self._pipelines.get(name)
        if pipeline is None:
            mine = [text for text in self._problems if name in text]
            raise EilError("\n".join(mine) or f"pipeline {name} is gone")
        # Only the HTML; no e-mail, so no PNG either.
        report = pipeline.spec.report.model_copy(update={"formats": ["html"]})
        spec = pipeline.spec.model_copy(update={"report": report, "deliver": []})
        pipeline = dataclasses.replace(pipeline, spec=spec)
        assert self.at is not None
        ctx = make_context(pipeline, self.at)
        data, ran = self._queries(pipeline, ctx)
        self._charts.drawn = 0
        produced = render_documents(pipeline, ctx, data, chart_processes=self._charts)
        html = produced.files.documents["html"]
        return html if isinstance(html, str) else html.decode("utf-8"), ran

    def _queries(self, pipeline: Pipeline, ctx: Any) -> tuple[dict[str, Any], int]:
        """Each query's result, from the cache or run (one connection for the misses)."""
        params: dict[str, Any] = {**ctx.params(), **pipeline.spec.params}
        where = repr((pipeline.spec.source, str(pipeline.root)))
        bound = repr(sorted((k, repr(v)) for k, v in params.items()))
        data: dict[str, Any] = {}
        missing = []
        for name, sql in pipeline.sql.items():
            key = (where, sql, bound)
            if key in self._cache:
                self._cache.move_to_end(key)
                data[name] = self._cache[key]
            else:
                missing.append((name, sql, key))
        if missing:
            with open_source(pipeline.name, pipeline.spec.source, pipeline.root) as source:
                for name, sql, key in missing:
                    data[name] = self._cache[key] = source.run(name, sql, params)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return {n: data[n] for n in pipeline.sql}, len(missing)

    # --- watching ---------------------------------------------------------------------

    def wait_version(self, name: str, seen: int, timeout: float) -> DevState:
        """The state once its version is past ``seen`` (or after ``timeout`` seconds)."""
        with self._changed:
            self._changed.wait_for(lambda: self.state(name).version > seen, timeout)
        return self.state(name)

    def watch(self, stop: threading.Event, interval: float = 0.1) -> None:
        """Until ``stop``: on each edit, reload and re-render every viewed pipeline."""
        watcher = FileWatcher(self.path, references=self.references)
        try:
            watcher.settle(watcher.look())
            while not stop.wait(interval):
                if not watcher.changed():
                    continue
                look = watcher.look()
                with self._lock:
                    self.reload()
                    for name in list(self.states):
                        self._render(name)
                watcher.settle(look)
                with self._changed:
                    self._changed.notify_all()
        finally:
            watcher.close()
