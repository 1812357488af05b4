"""``eil-run diff``: what a change to the report definitions does to the reports.

The use case, in order:

1. **Revisions.**  ``base`` (and ``head``, when given) are resolved to commits
   of the git repository that holds PATH; an unknown revision or a folder
   outside git is a :class:`~eil_pipelines.errors.UsageError` naming it.
   Each revision is checked out with ``git worktree add --detach`` under a
   temporary folder, and always removed again (``git worktree remove
   --force``, then ``git worktree prune``), on success, error or Ctrl-C.
   Without ``head`` the head side is the work tree itself, as it is on disk
   (uncommitted edits and untracked files included): what an author sees is
   what is compared.
2. **Touched pipelines.**  The changed paths are ``git diff --name-status -M
   BASE HEAD`` (without ``head``: ``git diff --name-status -M BASE``, which
   compares with the work tree, plus the untracked files ``git ls-files
   --others --exclude-standard`` lists).  A pipeline is touched when its
   file, one of its SQL files, its template or the project's ``eil.toml``
   is among them.  A name on one side only is added or removed; a removed
   and an added pipeline whose files git pairs as a rename are renamed.
3. **Renders.**  Each touched pipeline is rendered at both revisions (an added
   one at head only, a removed one at base only) through the ``--once`` path
   (:func:`eil_pipelines.app.once.once`, no delivery, no ledger), as if
   scheduled at the same ``at``, into a temporary reports folder per side:
   never the project's ``reports/``.  Both sides read the **same data**: the
   definitions (pipeline files, SQL, templates, ``eil.toml``'s calendars)
   come from each revision, but every query runs against the work tree's
   project folder (its data files and the connections of its ``eil.toml``),
   so a data file changed by the branch does not show as a report change.
   Every render writes Markdown and HTML (a PDF is not laid out: it is the
   HTML's bytes on paper) so that both sides are compared on the same files.
   Untouched pipelines are never run.
4. **Comparison.**  Schedules (in words, with the next fire times), each KPI
   (the manifests' ``metrics``), each query's rows, columns and result hash
   (the manifests' ``queries``), the changed cells of a query whose result
   changed (only those queries run again, once per side, capped at
   ``max_cells``), each chart's PNG bytes, and the report documents' bytes.
   Reports are byte-reproducible, so a pipeline whose file changed only in a
   comment diffs as unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import ConfigError, EilError, UsageError
from ..run.context import make_context, pipeline_trigger
from ..run.pipeline import RunResult, utc_now
from ..sources import open_source
from ..spec.loader import PROJECT_FILE, Pipeline, load_pipelines_lenient, project_root_for
from .once import once

__all__ = [
    "MAX_CELLS",
    "CellChange",
    "ChartDiff",
    "DiffResult",
    "MetricDiff",
    "PipelineDiff",
    "QueryDiff",
    "ScheduleDiff",
    "diff_reports",
]

#: Changed cells listed per query by default; the count of all of them is kept.
MAX_CELLS = 20
#: Next fire times shown per side of a schedule change.
NEXT_FIRES = 3
#: The formats both sides render (a PDF is the HTML laid out: not compared).
DIFF_FORMATS = ["md", "html"]


@dataclass
class ScheduleDiff:
    """A schedule before and after, in words, with the next fire times from ``at``."""

    before: str
    """The base schedule in words (``"on demand only"`` without a schedule)."""
    after: str
    """The head schedule in words."""
    next_before: list[datetime] = field(default_factory=list)
    """The base schedule's next fire times after ``at``."""
    next_after: list[datetime] = field(default_factory=list)
    """The head schedule's next fire times after ``at``."""

    @property
    def changed(self) -> bool:
        """The words or the fire times differ."""
        return self.before != self.after or self.next_before != self.next_after


@dataclass
class MetricDiff:
    """One KPI before and after (by label); ``None`` on the side it is missing from."""

    label: str
    """The KPI's label."""
    before: dict[str, Any] | None
    """The base manifest's metric record (``value``, ``text`` …)."""
    after: dict[str, Any] | None
    """The head manifest's metric record."""

    @property
    def changed(self) -> bool:
        """The value or its text differ, or the KPI is on one side only."""
        if self.before is None or self.after is None:
            return True
        return any(self.before.get(k) != self.after.get(k) for k in ("value", "text", "previous"))

    @property
    def change(self) -> float | None:
        """``after - before`` of the values, when both are numbers."""
        a = (self.before or {}).get("value")
        b = (self.after or {}).get("value")
        if isinstance(a, int | float) and isinstance(b, int | float):
            return b - a
        return None

    @property
    def change_pct(self) -> float | None:
        """The change relative to the base value, when it is a non-zero number."""
        a = (self.before or {}).get("value")
        delta = self.change
        if delta is None or not a:
            return None
        return delta / abs(a)


@dataclass
class CellChange:
    """One changed cell of a query's result."""

    row: str
    """The row: its key (the first column's value, when unique on both sides) or its number."""
    column: str
    """The column's name."""
    before: str
    """The base value as text."""
    after: str
    """The head value as text."""


@dataclass
class QueryDiff:
    """One query's result before and after."""

    name: str
    """The query's name."""
    rows_before: int | None
    """Rows at base (``None``: the query is new)."""
    rows_after: int | None
    """Rows at head (``None``: the query was removed)."""
    columns_added: list[str] = field(default_factory=list)
    """Columns only the head result has."""
    columns_removed: list[str] = field(default_factory=list)
    """Columns only the base result has."""
    columns_retyped: list[str] = field(default_factory=list)
    """Columns on both sides whose type changed (``"amount: int64 → float64"``)."""
    result_changed: bool = False
    """The result's hash differs (or the query is on one side only)."""
    cells: list[CellChange] = field(default_factory=list)
    """The first changed cells (at most ``max_cells``)."""
    cells_changed: int = 0
    """How many cells changed in all (rows added or removed not counted)."""


@dataclass
class ChartDiff:
    """One chart's PNG before and after."""

    name: str
    """The chart's name."""
    before: bytes | None
    """The base PNG (``None``: the chart is new)."""
    after: bytes | None
    """The head PNG (``None``: the chart was removed)."""

    @property
    def changed(self) -> bool:
        """The bytes differ (or the chart is on one side only)."""
        return self.before != self.after


@dataclass
class PipelineDiff:
    """What the change does to one touched pipeline's report."""

    name: str
    """The pipeline's name at head (at base for a removed one)."""
    status: str
    """``added``, ``removed``, ``renamed``, ``changed``, ``unchanged``, ``failed`` (a
    render failed) or ``invalid`` (the change made the pipeline's file invalid)."""
    touched_by: list[str] = field(default_factory=list)
    """The changed files that touch it, relative to the repository."""
    old_name: str | None = None
    """A renamed pipeline's name at base."""
    schedule: ScheduleDiff | None = None
    """The schedule on both sides."""
    metrics: list[MetricDiff] = field(default_factory=list)
    """Every KPI of either side, base order first."""
    queries: list[QueryDiff] = field(default_factory=list)
    """Every query of either side."""
    charts: list[ChartDiff] = field(default_factory=list)
    """Every chart of either side."""
    documents_changed: list[str] = field(default_factory=list)
    """The report formats (``md``, ``html``) whose bytes differ."""
    errors: dict[str, str] = field(default_factory=dict)
    """A failed render's message, by side (``base``, ``head``)."""

    @property
    def changed(self) -> bool:
        """Anything a reader of the report would see differs (or a render failed)."""
        return self.status != "unchanged"


@dataclass
class DiffResult:
    """The report-level diff between two revisions."""

    base: str
    """The base revision as given, with its short commit (``origin/main (1a2b3c4)``)."""
    head: str
    """The head revision likewise, or ``work tree``."""
    at: datetime
    """The moment both sides were rendered as if scheduled at."""
    pipelines: list[PipelineDiff] = field(default_factory=list)
    """One entry per touched pipeline, by name."""
    untouched: list[str] = field(default_factory=list)
    """The pipelines no change touches (never rendered)."""
    problems: dict[str, list[str]] = field(default_factory=dict)
    """Invalid pipeline files by side (``base``, ``head``): their messages."""
    rendered: list[tuple[str, str]] = field(default_factory=list)
    """Every render done, as ``(side, pipeline)``: the touched pipelines only."""

    @property
    def changed(self) -> list[PipelineDiff]:
        """The touched pipelines whose reports differ."""
        return [p for p in self.pipelines if p.changed]

    @property
    def failed(self) -> bool:
        """A head render failed or a head file is invalid: the change is broken."""
        return bool(self.problems.get("head")) or any("head" in p.errors for p in self.pipelines)

    def to_json(self, *, images: bool = False) -> dict[str, Any]:
        """A JSON-ready view; charts carry their PNGs (base64) only with ``images``."""
        import base64

        def chart(c: ChartDiff) -> dict[str, Any]:
            out: dict[str, Any] = {"name": c.name, "changed": c.changed}
            if images:
                for side, png in (("before", c.before), ("after", c.after)):
                    out[side] = base64.b64encode(png).decode("ascii") if png else None
            else:
                out["before"] = c.before is not None
                out["after"] = c.after is not None
            return out

        def pipeline(p: PipelineDiff) -> dict[str, Any]:
            data = dataclasses.asdict(p)
            data["charts"] = [chart(c) for c in p.charts]
            data["metrics"] = [
                {**dataclasses.asdict(m), "change": m.change, "change_pct": m.change_pct}
                for m in p.metrics
            ]
            data["changed"] = p.changed
            if p.schedule is not None:
                data["schedule"]["changed"] = p.schedule.changed
            return data

        return json.loads(
            json.dumps(
                {
                    "base": self.base,
                    "head": self.head,
                    "at": self.at.isoformat(),
                    "changed": [p.name for p in self.changed],
                    "pipelines": [pipeline(p) for p in self.pipelines],
                    "untouched": self.untouched,
                    "problems": self.problems,
                    "renders": len(self.rendered),
                },
                default=_json_default,
                allow_nan=False,
            )
        )


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


# --- git ------------------------------------------------------------------------------


def _git(top: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run git in ``top``; a missing git or a failure with ``check`` is a UsageError."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", *args], cwd=top, capture_output=True, text=True, env=env, check=False
        )
    except OSError as exc:
        raise UsageError(f"eil-run diff: cannot run git: {exc}") from None
    if check and done.returncode != 0:
        detail = done.stderr.strip().splitlines()
        raise EilError(
            f"eil-run diff: git {' '.join(args[:2])} failed in {top}: "
            + (detail[-1] if detail else f"exit {done.returncode}")
        )
    return done


def repository_top(path: Path) -> Path:
    """The top folder of the git work tree holding ``path``; a UsageError outside git."""
    folder = path if path.is_dir() else path.parent
    if not folder.exists():
        raise UsageError(f"eil-run diff: {path}: no such file or folder")
    done = _git(folder, "rev-parse", "--show-toplevel", check=False)
    if done.returncode != 0:
        raise UsageError(
            f"eil-run diff: {folder} is not in a git repository "
            "(diff compares two revisions: run it inside the repository of your pipelines)"
        )
    return Path(done.stdout.strip()).resolve()


def resolve_revision(top: Path, rev: str, option: str) -> str:
    """The full commit id ``rev`` names; a UsageError naming it when it names none."""
    if not rev or rev.startswith("-"):
        raise UsageError(f"eil-run diff: {option}: not a revision: {rev!r}")
    done = _git(top, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if done.returncode != 0:
        raise UsageError(
            f"eil-run diff: {option}: unknown revision {rev!r} in {top} "
            "(a branch, tag or commit; in CI fetch it first, e.g. "
            "actions/checkout with fetch-depth: 0)"
        )
    return done.stdout.strip()


def changed_paths(top: Path, base: str, head: str | None) -> tuple[set[str], dict[str, str]]:
    """The paths that differ between ``base`` and ``head`` (or the work tree), and the
    renames git detects (old path → new path); paths relative to ``top``."""
    spec = [base, head] if head else [base]
    out = _git(top, "diff", "--name-status", "-M", "-z", *spec, "--").stdout
    fields = out.split("\0")
    changed: set[str] = set()
    renames: dict[str, str] = {}
    i = 0
    while i < len(fields) and fields[i]:
        status = fields[i]
        if status[:1] in ("R", "C"):
            old, new = fields[i + 1], fields[i + 2]
            changed.update((old, new))
            if status[:1] == "R":
                renames[old] = new
            i += 3
        else:
            changed.add(fields[i + 1])
            i += 2
    if head is None:
        untracked = _git(top, "ls-files", "--others", "--exclude-standard", "-z").stdout
        changed.update(p for p in untracked.split("\0") if p)
    return changed, renames


@contextlib.contextmanager
def worktree(top: Path, commit: str, parent: Path, name: str) -> Iterator[Path]:
    """A detached work tree of ``commit`` under ``parent``, always removed afterwards."""
    folder = parent / name
    try:
        _git(top, "worktree", "add", "--detach", "--quiet", str(folder), commit)
        yield folder.resolve()
    finally:
        _git(top, "worktree", "remove", "--force", str(folder), check=False)
        _git(top, "worktree", "prune", check=False)
        shutil.rmtree(folder, ignore_errors=True)


# --- one side -------------------------------------------------------------------------


@dataclass
class _Side:
    """The pipelines of one revision, and the files that define each."""

    name: str
    top: Path
    pipelines: dict[str, Pipeline]
    problems: list[ConfigError]

    def files_of(self, pipeline: Pipeline) -> set[str]:
        """The pipeline's definition files, relative to the repository's top."""
        paths = [pipeline.file]
        paths += [pipeline.resolve(q.file) for q in pipeline.spec.queries.values() if q.file]
        if pipeline.template_path is not None:
            paths.append(pipeline.template_path)
        paths.append(pipeline.root / PROJECT_FILE)
        return {rel for p in paths if (rel := _relative(p, self.top)) is not None}


def _relative(path: Path, top: Path) -> str | None:
    try:
        return path.resolve().relative_to(top).as_posix()
    except ValueError:
        return None


def _load_side(name: str, top: Path, relative: str) -> _Side:
    """The valid pipelines (and the problems) that PATH names in this revision."""
    target = top / relative
    if not target.exists():
        return _Side(name, top, {}, [])  # PATH is new (or gone) on this side
    try:
        valid, errors = load_pipelines_lenient(target)
    except ConfigError as exc:
        return _Side(name, top, {}, [exc])
    except EilError:
        return _Side(name, top, {}, [])  # no pipeline files here on this side
    return _Side(name, top, {p.name: p for p in valid}, errors)


def _for_diff(pipeline: Pipeline, data_root: Path) -> Pipeline:
    """The pipeline with its queries run against ``data_root`` (the same data on both
    sides), its template still read from its own revision, and both formats rendered."""
    report = pipeline.spec.report
    update: dict[str, Any] = {"formats": list(DIFF_FORMATS)}
    if pipeline.template_path is not None:
        update["template"] = str(pipeline.template_path)
    spec = pipeline.spec.model_copy(update={"report": report.model_copy(update=update)})
    return dataclasses.replace(pipeline, root=data_root, spec=spec)


# --- the use case ---------------------------------------------------------------------


def diff_reports(
    path: Path,
    *,
    base: str,
    head: str | None = None,
    at: datetime | None = None,
    max_cells: int = MAX_CELLS,
    workers: int = 2,
    clock: Callable[[], datetime] = utc_now,
) -> DiffResult:
    """Render the pipelines a change touches at ``base`` and ``head`` and compare them.

    ``path`` is a pipelines folder or one pipeline file of a git work tree;
    ``head`` ``None`` compares with the work tree as it is on disk.  ``at``
    (default: now) is the scheduled time both sides render as; a naive value
    is read in each pipeline's zone.  See the module's docstring for what is
    compared and how.  Nothing is written outside a temporary folder, and the
    run ledger is not opened.
    """
    path = Path(path).absolute()
    top = repository_top(path)
    relative = _relative(path, top)
    if relative is None:  # a symbolic link out of the repository
        raise UsageError(f"eil-run diff: {path} is outside the repository {top}")
    base_commit = resolve_revision(top, base, "--base")
    head_commit = resolve_revision(top, head, "--head") if head is not None else None
    moment = at if at is not None else clock()
    data_root = project_root_for(top / relative)
    changed, renames = changed_paths(top, base_commit, head_commit)
    result = DiffResult(
        base=f"{base} ({base_commit[:7]})",
        head=f"{head} ({head_commit[:7]})" if head_commit else "work tree",
        at=moment,
    )
    with tempfile.TemporaryDirectory(prefix="eil-diff-") as scratch:
        folder = Path(scratch)
        with contextlib.ExitStack() as stack:
            base_top = stack.enter_context(worktree(top, base_commit, folder, "base"))
            head_top = (
                stack.enter_context(worktree(top, head_commit, folder, "head"))
                if head_commit
                else top
            )
            sides = {
                "base": _load_side("base", base_top, relative),
                "head": _load_side("head", head_top, relative),
            }
            for name, side in sides.items():
                if side.problems:
                    result.problems[name] = [_problem_text(e, side.top) for e in side.problems]
            plan = _plan(sides, changed, renames)
            result.untouched = sorted(
                n for n in sides["head"].pipelines if n not in {e.name for e in plan}
            )
            results = {
                label: _render(
                    [_for_diff(p, data_root) for p in entry_pipelines],
                    folder / f"reports-{label}",
                    moment,
                    workers,
                    clock,
                )
                for label, entry_pipelines in (
                    ("base", [e.base for e in plan if e.base is not None and not e.invalid]),
                    ("head", [e.head for e in plan if e.head is not None]),
                )
            }
            for label, by_name in results.items():
                result.rendered += [(label, name) for name in by_name]
            for entry in plan:
                result.pipelines.append(
                    _compare(entry, results, moment, data_root, max_cells, sides)
                )
    result.pipelines.sort(key=lambda p: p.name)
    return result


def _problem_text(error: ConfigError, top: Path) -> str:
    """An invalid file's messages with the file named relative to the repository."""
    shown = _relative(error.file, top) or str(error.file)
    return error.format(shown)


@dataclass
class _Entry:
    name: str
    base: Pipeline | None
    head: Pipeline | None
    touched_by: list[str]
    renamed_from: str | None = None
    invalid: str | None = None
    """The head file's problems when the change made it invalid (then nothing renders)."""


def _plan(sides: dict[str, _Side], changed: set[str], renames: dict[str, str]) -> list[_Entry]:
    """The touched pipelines, each with its base and head definitions."""
    base, head = sides["base"], sides["head"]
    entries: dict[str, _Entry] = {}
    for name in sorted(set(base.pipelines) | set(head.pipelines)):
        b, h = base.pipelines.get(name), head.pipelines.get(name)
        files = (base.files_of(b) if b else set()) | (head.files_of(h) if h else set())
        touching = sorted(files & changed)
        if b is None or h is None or touching:
            entries[name] = _Entry(name, b, h, touching)
    # A pipeline whose head file is invalid is not removed: the change broke it.
    broken = {_relative(e.file, head.top): e for e in head.problems}
    for entry in entries.values():
        if entry.base is not None and entry.head is None:
            error = broken.get(_relative(entry.base.file, base.top))
            if error is not None:
                entry.invalid = _problem_text(error, head.top)
    # A removed and an added pipeline whose files git pairs as a rename: renamed.
    head_by_file = {_relative(p.file, head.top): n for n, p in head.pipelines.items()}
    for old_name, entry in list(entries.items()):
        if entry.head is not None or entry.base is None or entry.invalid:
            continue
        new_file = renames.get(_relative(entry.base.file, base.top) or "")
        new_name = head_by_file.get(new_file)
        added = entries.get(new_name or "")
        if added is None or added.base is not None:
            continue
        del entries[old_name]
        added.base = entry.base
        added.renamed_from = old_name
        added.touched_by = sorted({*added.touched_by, *entry.touched_by})
    return [entries[n] for n in sorted(entries)]


def _render(
    pipelines: Sequence[Pipeline],
    reports: Path,
    moment: datetime,
    workers: int,
    clock: Callable[[], datetime],
) -> dict[str, RunResult]:
    """One side's renders, through the ``--once`` path, into its own reports folder."""
    if not pipelines:
        return {}
    outcome = once(
        pipelines,
        reports_dir=reports,
        at=moment,
        workers=workers,
        clock=clock,
        ignore_require=True,  # a gate reads data now; the diff is about the definitions
    )
    return {r.pipeline: r for r in outcome.results}


def _manifest(result: RunResult | None) -> dict[str, Any]:
    if result is None or result.manifest is None:
        return {}
    data = json.loads(result.manifest.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _compare(
    entry: _Entry,
    results: dict[str, dict[str, RunResult]],
    moment: datetime,
    data_root: Path,
    max_cells: int,
    sides: dict[str, _Side],
) -> PipelineDiff:
    """Compare one touched pipeline's renders."""
    before = results["base"].get(entry.base.name) if entry.base else None
    after = results["head"].get(entry.name) if entry.head else None
    diff = PipelineDiff(name=entry.name, status="unchanged", touched_by=entry.touched_by)
    (words_b, fires_b), (words_a, fires_a) = (
        _schedule(p, moment) for p in (entry.base, entry.head)
    )
    diff.schedule = ScheduleDiff(words_b, words_a, fires_b, fires_a)
    for side, run in (("base", before), ("head", after)):
        if run is not None and not run.ok:
            diff.errors[side] = run.error or run.status
    mb, ma = _manifest(before), _manifest(after)
    diff.metrics = _metrics(mb.get("metrics", []), ma.get("metrics", []))
    diff.queries = _queries(
        entry, mb.get("queries", {}), ma.get("queries", {}), moment, data_root, max_cells
    )
    diff.charts = _charts(entry, before, after)
    for fmt in DIFF_FORMATS:
        a = before.documents.get(fmt) if before else None
        b = after.documents.get(fmt) if after else None
        if (a.read_bytes() if a else None) != (b.read_bytes() if b else None):
            diff.documents_changed.append(fmt)
    if entry.invalid is not None:
        diff.status = "invalid"
        diff.errors["head"] = entry.invalid
    elif entry.base is None:
        diff.status = "added"
    elif entry.head is None:
        diff.status = "removed"
    elif entry.renamed_from is not None:
        diff.status = "renamed"
        diff.old_name = entry.renamed_from
    elif diff.errors:
        diff.status = "failed"
    elif (
        diff.documents_changed
        or diff.schedule.changed
        or any(m.changed for m in diff.metrics)
        or any(q.result_changed or q.columns_added or q.columns_removed for q in diff.queries)
        or any(c.changed for c in diff.charts)
    ):
        diff.status = "changed"
    return diff


def _schedule(pipeline: Pipeline | None, moment: datetime) -> tuple[str, list[datetime]]:
    """A schedule's words and next fire times after ``moment`` (empty without one)."""
    if pipeline is None:
        return "(no pipeline)", []
    trigger = pipeline_trigger(pipeline)
    if trigger is None:
        return "on demand only", []
    start = make_context(pipeline, moment).scheduled_at
    fires: list[datetime] = []
    for _ in range(NEXT_FIRES):
        start = trigger.next_fire(start)
        fires.append(start)
    return trigger.describe(), fires


def _metrics(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[MetricDiff]:
    by_label = {m["label"]: m for m in after}
    out = [MetricDiff(m["label"], m, by_label.pop(m["label"], None)) for m in before]
    out += [MetricDiff(label, None, m) for label, m in by_label.items()]
    return out


def _queries(
    entry: _Entry,
    before: dict[str, Any],
    after: dict[str, Any],
    moment: datetime,
    data_root: Path,
    max_cells: int,
) -> list[QueryDiff]:
    out = []
    rerun: list[QueryDiff] = []
    for name in [*before, *(n for n in after if n not in before)]:
        b, a = before.get(name), after.get(name)
        q = QueryDiff(name, b["rows"] if b else None, a["rows"] if a else None)
        cb, ca = (b or {}).get("columns", {}), (a or {}).get("columns", {})
        if b and a:
            q.columns_added = [c for c in ca if c not in cb]
            q.columns_removed = [c for c in cb if c not in ca]
            q.columns_retyped = [
                f"{c}: {cb[c]} → {ca[c]}" for c in cb if c in ca and cb[c] != ca[c]
            ]
            q.result_changed = b.get("result_sha256") != a.get("result_sha256")
            if q.result_changed and max_cells > 0:
                rerun.append(q)
        else:
            q.result_changed = True
        out.append(q)
    if rerun and entry.base is not None and entry.head is not None:
        names = [q.name for q in rerun]
        frames_b = _run_queries(entry.base, names, moment, data_root)
        frames_a = _run_queries(entry.head, names, moment, data_root)
        for q in rerun:
            q.cells, q.cells_changed = _cells(frames_b[q.name], frames_a[q.name], max_cells)
    return out


def _run_queries(
    pipeline: Pipeline, names: Sequence[str], moment: datetime, data_root: Path
) -> dict[str, Any]:
    """Some of a pipeline's queries again, with the run's parameters, for their cells."""
    ctx = make_context(pipeline, moment)
    params: dict[str, Any] = {**ctx.params(), **pipeline.spec.params}
    with open_source(pipeline.name, pipeline.spec.source, data_root) as source:
        return {n: source.run(n, pipeline.sql[n], params) for n in names}


def _cells(before: Any, after: Any, cap: int) -> tuple[list[CellChange], int]:
    """The changed cells of two results on their common columns, rows matched by key.

    The key is the first column when it is not a number and its values are
    unique on both sides (a region, a day), else the row number.
    """
    columns = [c for c in before.columns if c in after.columns]
    if not columns:
        return [], 0
    key = columns[0]
    keyed = (
        len(columns) > 1
        and before[key].dtype.kind not in "iufcb"
        and after[key].dtype.kind not in "iufcb"
        and before[key].is_unique
        and after[key].is_unique
    )
    if keyed:
        left = {
            _text(k): row for k, row in zip(before[key], before.to_dict("records"), strict=True)
        }
        right = {_text(k): row for k, row in zip(after[key], after.to_dict("records"), strict=True)}
        shown = columns[1:]
    else:
        left = {str(i + 1): row for i, row in enumerate(before.to_dict("records"))}
        right = {str(i + 1): row for i, row in enumerate(after.to_dict("records"))}
        shown = columns
    cells: list[CellChange] = []
    count = 0
    for row_key, row in left.items():
        other = right.get(row_key)
        if other is None:
            continue
        for column in shown:
            old, new = _text(row[column]), _text(other[column])
            if old != new:
                count += 1
                if len(cells) < cap:
                    label = f"{key}={row_key}" if keyed else f"row {row_key}"
                    cells.append(CellChange(label, str(column), old, new))
    return cells, count


def _text(value: Any) -> str:
    """A cell as text: missing values empty, floats without binary noise."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return repr(round(value, 10))
    text = str(value)
    return "" if text in ("NaT", "<NA>", "nan") else text


def _charts(entry: _Entry, before: RunResult | None, after: RunResult | None) -> list[ChartDiff]:
    names = [c.name for c in entry.base.spec.charts] if entry.base else []
    names += [c.name for c in entry.head.spec.charts if c.name not in names] if entry.head else []
    return [ChartDiff(n, _png(before, n), _png(after, n)) for n in names]


def _png(result: RunResult | None, chart: str) -> bytes | None:
    if result is None or not result.ok:
        return None
    for path in result.files:
        if path.name == f"{chart}.png" and path.parent.name.endswith("_charts"):
            return path.read_bytes()
    return None
