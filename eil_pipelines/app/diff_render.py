"""The report-level diff (:class:`~eil_pipelines.app.diff.DiffResult`) as text,
Markdown, a self-contained HTML page, or JSON.

* ``text``: for a terminal, one block per touched pipeline.
* ``markdown``: for a pull-request comment; the summary table first, then one
  section per changed pipeline, cut at :data:`MARKDOWN_LIMIT` characters
  (GitHub refuses comments over 65,536) with a line saying what was left out.
* ``html``: one page, no external request: its CSS inline, both chart images
  of a changed chart side by side as ``data:`` URIs; every value from the
  reports or the repository goes through :func:`html.escape`.
* ``json``: :meth:`DiffResult.to_json` (charts as flags, not images).
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
from datetime import datetime

from ..text import printable
from .diff import ChartDiff, DiffResult, MetricDiff, PipelineDiff, QueryDiff

__all__ = ["FORMATS", "MARKDOWN_LIMIT", "render_diff"]

#: Characters of a Markdown diff at most (a GitHub comment holds 65,536).
MARKDOWN_LIMIT = 60_000
#: The output formats, by ``--format`` name.
FORMATS = ("text", "markdown", "html", "json")

_STATUS_WORDS = {
    "added": "new pipeline",
    "removed": "pipeline removed",
    "renamed": "renamed",
    "changed": "report changed",
    "unchanged": "report unchanged",
    "failed": "render failed",
    "invalid": "invalid at head",
}


def render_diff(result: DiffResult, fmt: str, *, limit: int = MARKDOWN_LIMIT) -> str:
    """``result`` in ``fmt`` (one of :data:`FORMATS`); ``limit`` caps Markdown."""
    renderers: dict[str, Callable[[DiffResult], str]] = {
        "text": _text,
        "markdown": lambda r: _markdown(r, limit),
        "html": _html,
        "json": lambda r: json.dumps(r.to_json(), indent=2, ensure_ascii=False) + "\n",
    }
    return renderers[fmt](result)


# --- shared words ---------------------------------------------------------------------


def _fires(fires: list[datetime]) -> str:
    return ", ".join(f.strftime("%Y-%m-%d %H:%M %Z") for f in fires) or "none"


def _number(value: object) -> str:
    if isinstance(value, float):
        return f"{value:+,.6g}"
    if isinstance(value, int):
        return f"{value:+,}"
    return ""


def _metric_change(m: MetricDiff) -> str:
    if m.before is None:
        return "new"
    if m.after is None:
        return "removed"
    if not m.changed:
        return "unchanged"
    words = _number(m.change)
    if m.change_pct is not None:
        words += f" ({m.change_pct:+.1%})"
    return words or "changed"


def _metric_side(record: dict[str, object] | None) -> str:
    return "—" if record is None else str(record.get("text", ""))


def _rows(n: int | None) -> str:
    return f"{n} row{'' if n == 1 else 's'}"


def _query_words(q: QueryDiff) -> str:
    if q.rows_before is None:
        return f"new query, {_rows(q.rows_after)}"
    if q.rows_after is None:
        return f"query removed (had {_rows(q.rows_before)})"
    parts = [
        f"rows {q.rows_before} → {q.rows_after}"
        if q.rows_before != q.rows_after
        else _rows(q.rows_after)
    ]
    if q.columns_added:
        parts.append("columns added: " + ", ".join(q.columns_added))
    if q.columns_removed:
        parts.append("columns removed: " + ", ".join(q.columns_removed))
    if q.columns_retyped:
        parts.append("types: " + ", ".join(q.columns_retyped))
    if q.cells_changed:
        parts.append(f"{q.cells_changed} cell{'s' if q.cells_changed != 1 else ''} changed")
    parts.append("result changed" if q.result_changed else "same result")
    return "; ".join(parts)


def _chart_words(c: ChartDiff) -> str:
    if c.before is None:
        return "new chart"
    if c.after is None:
        return "chart removed"
    return "changed" if c.changed else "unchanged"


def _title(p: PipelineDiff) -> str:
    words = _STATUS_WORDS.get(p.status, p.status)
    if p.status == "renamed":
        words = f"renamed from {p.old_name}"
    return f"{p.name}: {words}"


def _summary_line(result: DiffResult) -> str:
    changed = len(result.changed)
    touched = len(result.pipelines)
    return (
        f"{changed} of {touched} touched pipeline{'s' if touched != 1 else ''} "
        f"changed; {len(result.untouched)} untouched, not rendered "
        f"({len(result.rendered)} renders). Base {result.base}, head {result.head}, "
        f"as scheduled at {result.at.isoformat(timespec='minutes')}."
    )


# --- text -----------------------------------------------------------------------------


def _text(result: DiffResult) -> str:
    lines = [_summary_line(result)]
    for side, problems in result.problems.items():
        lines.append(f"\ninvalid files at {side}:")
        lines += [f"  {line}" for text in problems for line in text.splitlines()]
    for p in result.pipelines:
        lines.append("")
        lines.append(_title(p))
        if p.touched_by:
            lines.append("  touched by: " + ", ".join(p.touched_by))
        for side, error in p.errors.items():
            what = "invalid" if p.status == "invalid" else "failed"
            lines.append(f"  {side} {what}: {error}")
        if p.schedule is not None and p.schedule.changed and p.status != "added":
            s = p.schedule
            lines.append(f"  schedule: {s.before} → {s.after}")
            lines.append(f"    next before: {_fires(s.next_before)}")
            lines.append(f"    next after:  {_fires(s.next_after)}")
        for m in p.metrics:
            lines.append(
                f"  KPI {m.label}: {_metric_side(m.before)} → {_metric_side(m.after)}"
                f" ({_metric_change(m)})"
            )
        for q in p.queries:
            lines.append(f"  query {q.name}: {_query_words(q)}")
            for c in q.cells:
                lines.append(f"    {c.row}, {c.column}: {c.before} → {c.after}")
            if q.cells_changed > len(q.cells):
                lines.append(f"    … {q.cells_changed - len(q.cells)} more changed cells")
        for chart in p.charts:
            lines.append(f"  chart {chart.name}: {_chart_words(chart)}")
        if p.documents_changed:
            lines.append("  report files changed: " + ", ".join(p.documents_changed))
    # Values come from reports and files: no terminal escape reaches the screen.
    return printable("\n".join(lines)) + "\n"


# --- markdown -------------------------------------------------------------------------


def _cell(value: object) -> str:
    """A value inside a Markdown table cell: pipes and line breaks escaped."""
    text = printable(str(value), keep_newlines=False)
    for char in "\\`*_[]<>|":
        text = text.replace(char, "\\" + char)
    return text


def _markdown(result: DiffResult, limit: int) -> str:
    head = ["# Report diff", "", _summary_line(result), ""]
    if result.pipelines:
        head += [
            "| pipeline | status | KPIs changed | charts changed |",
            "| --- | --- | --- | --- |",
        ]
        for p in result.pipelines:
            kpis = sum(m.changed for m in p.metrics)
            charts = sum(c.changed for c in p.charts)
            head.append(
                f"| {_cell(p.name)} | {_cell(_title(p).split(': ', 1)[1])} | {kpis} | {charts} |"
            )
        head.append("")
    for side, problems in result.problems.items():
        head.append(f"**Invalid files at {side}:**")
        head.append("")
        head += [f"- {_cell(line)}" for text in problems for line in text.splitlines()]
        head.append("")
    out = "\n".join(head) + "\n"
    sections = [_markdown_section(p) for p in result.pipelines if p.changed]
    for index, section in enumerate(sections):
        tail = f"\n_{len(sections) - index} more pipelines left out: run `eil-run diff` locally._\n"
        if len(out) + len(section) + len(tail) > limit:
            out += tail
            break
        out += section
    return out.rstrip("\n") + "\n"


def _markdown_section(p: PipelineDiff) -> str:
    lines = [f"## {_cell(_title(p))}", ""]
    if p.touched_by:
        lines += ["Touched by " + ", ".join(f"`{_cell(f)}`" for f in p.touched_by) + ".", ""]
    for side, error in p.errors.items():
        lines += [f"**{side} failed:** {_cell(error)}", ""]
    s = p.schedule
    if s is not None and s.changed and p.status != "added":
        lines += [
            f"**Schedule:** {_cell(s.before)} → {_cell(s.after)}  ",
            f"next before: {_cell(_fires(s.next_before))}  ",
            f"next after: {_cell(_fires(s.next_after))}",
            "",
        ]
    if p.metrics:
        lines += ["| KPI | before | after | change |", "| --- | ---: | ---: | ---: |"]
        lines += [
            f"| {_cell(m.label)} | {_cell(_metric_side(m.before))} | "
            f"{_cell(_metric_side(m.after))} | {_cell(_metric_change(m))} |"
            for m in p.metrics
        ]
        lines.append("")
    if p.queries:
        lines += ["| query | what changed |", "| --- | --- |"]
        lines += [f"| {_cell(q.name)} | {_cell(_query_words(q))} |" for q in p.queries]
        lines.append("")
    cells = [(q, c) for q in p.queries for c in q.cells]
    if cells:
        lines += ["| query | row | column | before | after |", "| --- | --- | --- | ---: | ---: |"]
        lines += [
            f"| {_cell(q.name)} | {_cell(c.row)} | {_cell(c.column)} | {_cell(c.before)} | "
            f"{_cell(c.after)} |"
            for q, c in cells
        ]
        more = sum(q.cells_changed - len(q.cells) for q in p.queries)
        if more:
            lines.append(f"\n… and {more} more changed cells.")
        lines.append("")
    if p.charts:
        lines.append(
            "Charts: " + ", ".join(f"{_cell(c.name)} {_chart_words(c)}" for c in p.charts) + "."
        )
        lines.append("")
    return "\n".join(lines) + "\n"


# --- html -----------------------------------------------------------------------------

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1d1d1f}
table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;padding:.25rem .5rem;
text-align:left}.changed{color:#a0522d}.same{color:#667}section{border-top:2px solid #ddd;
margin-top:1.5rem}.pair{display:flex;gap:1rem;flex-wrap:wrap}.pair figure{margin:0;flex:1 1 20rem}
.pair img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.85em;color:#556}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _png_uri(png: bytes | None) -> str:
    return "data:image/png;base64," + base64.b64encode(png or b"").decode("ascii")


def _html(result: DiffResult) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Report diff: {_e(result.base)} → {_e(result.head)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Report diff</h1>",
        f"<p>{_e(_summary_line(result))}</p>",
    ]
    if result.pipelines:
        parts.append("<table><tr><th>pipeline</th><th>status</th></tr>")
        for p in result.pipelines:
            cls = "changed" if p.changed else "same"
            status = _e(_title(p).split(": ", 1)[1])
            parts.append(f'<tr><td>{_e(p.name)}</td><td class="{cls}">{status}</td></tr>')
        parts.append("</table>")
    for side, problems in result.problems.items():
        parts.append(f"<h2>Invalid files at {_e(side)}</h2><ul>")
        parts += [f"<li><pre>{_e(text)}</pre></li>" for text in problems]
        parts.append("</ul>")
    for p in result.pipelines:
        parts.append(_html_section(p))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_section(p: PipelineDiff) -> str:
    out = [f"<section><h2>{_e(_title(p))}</h2>"]
    if p.touched_by:
        out.append("<p>Touched by " + ", ".join(f"<code>{_e(f)}</code>" for f in p.touched_by))
        out.append("</p>")
    for side, error in p.errors.items():
        out.append(f"<p><strong>{_e(side)} failed:</strong></p><pre>{_e(error)}</pre>")
    s = p.schedule
    if s is not None and s.changed and p.status != "added":
        out.append(
            f"<p><strong>Schedule:</strong> {_e(s.before)} → {_e(s.after)}<br>"
            f"next before: {_e(_fires(s.next_before))}<br>"
            f"next after: {_e(_fires(s.next_after))}</p>"
        )
    if p.metrics:
        out.append("<table><tr><th>KPI</th><th>before</th><th>after</th><th>change</th></tr>")
        for m in p.metrics:
            cls = "changed" if m.changed else "same"
            out.append(
                f"<tr><td>{_e(m.label)}</td><td>{_e(_metric_side(m.before))}</td>"
                f"<td>{_e(_metric_side(m.after))}</td>"
                f'<td class="{cls}">{_e(_metric_change(m))}</td></tr>'
            )
        out.append("</table>")
    if p.queries:
        out.append("<table><tr><th>query</th><th>what changed</th></tr>")
        out += [f"<tr><td>{_e(q.name)}</td><td>{_e(_query_words(q))}</td></tr>" for q in p.queries]
        out.append("</table>")
    cells = [(q, c) for q in p.queries for c in q.cells]
    if cells:
        out.append(
            "<table><tr><th>query</th><th>row</th><th>column</th><th>before</th><th>after</th></tr>"
        )
        out += [
            f"<tr><td>{_e(q.name)}</td><td>{_e(c.row)}</td><td>{_e(c.column)}</td>"
            f"<td>{_e(c.before)}</td><td>{_e(c.after)}</td></tr>"
            for q, c in cells
        ]
        out.append("</table>")
    for c in p.charts:
        out.append(f"<h3>Chart {_e(c.name)}: {_e(_chart_words(c))}</h3>")
        if c.changed:
            out.append('<div class="pair">')
            for label, png in (("before", c.before), ("after", c.after)):
                if png is not None:
                    out.append(
                        f'<figure><img src="{_png_uri(png)}" alt="{_e(c.name)} {label}">'
                        f"<figcaption>{label}</figcaption></figure>"
                    )
            out.append("</div>")
    out.append("</section>")
    return "\n".join(out)
