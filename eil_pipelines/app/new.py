"""``eil-run new NAME``: a new pipeline file and starter template that run at once.

The scaffold, as a use case: :func:`create_pipeline` writes the files, the
CLI says what to edit next.

The pipeline file is built as a :class:`~eil_pipelines.spec.models.PipelineSpec`
and written with tomli-w, so the scaffold is valid by construction (and it
is parsed and validated again before anything is written).  tomli-w cannot
write comments, so the few comments that guide a first edit are put between
the sections it writes.

With the sample data (``data/orders.parquet`` in the project root) the
queries read it; without it they make up a few numbers in SQL, so the
scaffold renders a report straight away in any project.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import time, timedelta
from pathlib import Path
from typing import Any

import tomli_w

from ..errors import UsageError
from ..outputs.atomic import atomic_write_text
from ..render import TemplateSource, compile_template
from ..schedule.build import build_trigger
from ..schedule.cron import validate_cron
from ..schedule.durations import format_duration
from ..schedule.zones import local_zone_name
from ..spec.loader import display_path
from ..spec.models import NAME_PATTERN, PipelineSpec

SAMPLE_DATA = "data/orders.parquet"

_KPIS_SAMPLE = """\
-- This period's figures and the previous period's, for the change shown beside each KPI.
SELECT
    coalesce(sum(revenue) FILTER (WHERE order_ts >= $period_start AND status = 'completed'), 0)
        AS revenue,
    coalesce(sum(revenue) FILTER (WHERE order_ts < $prev_period_end AND status = 'completed'), 0)
        AS prev_revenue,
    count(*) FILTER (WHERE order_ts >= $period_start AND status = 'completed') AS orders,
    count(*) FILTER (WHERE order_ts < $prev_period_end AND status = 'completed') AS prev_orders
FROM 'data/orders.parquet'
WHERE order_ts >= $prev_period_start AND order_ts < $period_end
"""

_TREND_SAMPLE = """\
-- One row per day, for the 30 days up to the end of the period.
SELECT order_date AS day, sum(revenue) AS revenue
FROM 'data/orders.parquet'
WHERE status = 'completed'
  AND order_ts >= $period_end - INTERVAL 30 DAY
  AND order_ts < $period_end
GROUP BY ALL
ORDER BY day
"""

_KPIS_PLACEHOLDER = """\
-- Placeholder figures, so the report runs before you have written any SQL.
-- Replace them with a query on your data: a file (FROM 'data/orders.parquet')
-- or a table of the database in [source].
SELECT 1250.0 AS revenue, 1100.0 AS prev_revenue, 42 AS orders, 40 AS prev_orders
"""

_TREND_PLACEHOLDER = """\
-- Placeholder series: one row per day for the 30 days up to the end of the period.
SELECT CAST(t.day AS DATE) AS day, 1000 + 10 * row_number() OVER (ORDER BY t.day) AS revenue
FROM range($period_end - INTERVAL 30 DAY, $period_end, INTERVAL 1 DAY) AS t(day)
ORDER BY day
"""

_TEMPLATE_HEAD = """\
{#- Starter template for %(name)s: Markdown with Jinja.  One template makes every
    format (Markdown and HTML).  What you can use is in docs/templates.md:
    pipeline, run, params, data.<query>, charts.<chart>, metrics, insights. -#}
# {{ pipeline.title }}

{{ pipeline.description }}

*{{ run.period_start | period(run.period_end) }}*
"""

_TEMPLATE_METRICS = """
{% for m in metrics -%}
- **{{ m.label }}:** {{ m.text }}{% if m.previous is not none %} ({{ m | delta }} vs {{ m.previous_text }}){% endif %}
{% endfor %}
{% for sentence in insights -%}
- {{ sentence }}
{% endfor %}
"""


@dataclass(frozen=True)
class Created:
    """What :func:`create_pipeline` wrote."""

    pipeline_file: Path
    """The new pipeline file."""
    template_file: Path
    """The new starter template."""
    query_file: str | None
    """The ``--query-file`` the pipeline reads, or ``None`` for the example queries."""
    sample_data: bool
    """Whether the example queries read the sample data (else placeholder numbers)."""
    schema_beside: bool
    """Whether the folder has ``pipeline.schema.json`` (editor completion)."""


def create_pipeline(
    name: str, folder: Path, *, cron: str | None = None, query_file: str | None = None
) -> Created:
    """Write ``folder/NAME.toml`` and ``templates/NAME.md.j2`` in the project root.

    Never overwrites a file; raises :class:`UsageError` for a bad or taken name.
    """
    if not re.fullmatch(NAME_PATTERN, name):
        raise UsageError(
            f'eil-run new: invalid name "{name}": use lowercase letters, digits, "_" and "-", '
            "starting with a letter or digit (such as daily_sales)"
        )
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"eil-run new: --dir {folder} is not a folder")
    root = folder.resolve().parent
    pipeline_file = folder / f"{name}.toml"
    template_rel = f"templates/{name}.md.j2"
    template_file = root / template_rel
    for existing in (pipeline_file, template_file):
        if existing.exists():
            raise UsageError(
                f"eil-run new: {display_path(existing.resolve())} already exists; "
                "pick another name, or edit that file"
            )
    _check_name_unused(folder, name)

    query_rel = _query_file(query_file, root) if query_file else None
    has_sample = (root / SAMPLE_DATA).is_file()
    spec = scaffold_spec(
        name,
        cron=cron,
        query_file=query_rel,
        sample_data=has_sample,
        template=template_rel,
    )
    schema_beside = (folder / "pipeline.schema.json").is_file()
    toml_text = scaffold_toml(spec, name, schema_beside=schema_beside)
    template_text = scaffold_template(spec, name)
    _check_before_writing(toml_text, template_text, template_rel)
    atomic_write_text(pipeline_file, toml_text)
    atomic_write_text(template_file, template_text)
    return Created(pipeline_file, template_file, query_rel, has_sample, schema_beside)


def _check_name_unused(folder: Path, name: str) -> None:
    """Refuse a name another file in the folder already claims with a ``name`` key."""
    if not folder.is_dir():
        return
    for other in sorted(folder.glob("*.toml")):
        try:
            claimed = tomllib.loads(other.read_text(encoding="utf-8")).get("name")
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue  # validate reports broken files; they don't decide this
        if claimed == name:
            raise UsageError(
                f'eil-run new: the pipeline name "{name}" is already used by {other} '
                "(its name key); pick another name"
            )


def _query_file(given: str, root: Path) -> str:
    """The ``--query-file`` as the pipeline file writes it: relative to the project root."""
    path = Path(given).expanduser()
    if not path.is_file():
        raise UsageError(f"eil-run new: --query-file: no such file: {given}")
    path = path.resolve()
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)  # outside the project: an absolute path still works


def scaffold_spec(
    name: str,
    *,
    cron: str | None = None,
    query_file: str | None = None,
    sample_data: bool = True,
    template: str | None = None,
    timezone: str | None = None,
) -> Any:
    """The scaffold's :class:`PipelineSpec` (validated; raises UsageError for a bad ``cron``).

    ``timezone`` defaults to the machine's zone, written out so the file means
    the same on a server in another zone.
    """

    zone = timezone or local_zone_name()
    if cron is not None:
        try:
            validate_cron(cron)
        except ValueError as exc:
            raise UsageError(f"eil-run new: --cron: {exc}") from None
        schedule: dict[str, Any] = {"cron": cron, "timezone": zone}
        schedule["period"] = _period_for(build_trigger(cron=cron, timezone=zone).min_interval)
    else:
        schedule = {"daily": "07:00", "timezone": zone, "period": "day"}
    raw: dict[str, Any] = {
        "title": _words(name),
        "description": "What does this report tell its reader? Say it here, in one sentence.",
        "schedule": schedule,
    }
    if query_file is not None:
        raw["queries"] = {"main": {"file": query_file}}
    else:
        kpis, trend = (
            (_KPIS_SAMPLE, _TREND_SAMPLE)
            if sample_data
            else (_KPIS_PLACEHOLDER, _TREND_PLACEHOLDER)
        )
        raw["queries"] = {"kpis": {"sql": kpis}, "trend": {"sql": trend}}
        raw["metrics"] = [
            {
                "label": "Revenue",
                "query": "kpis",
                "column": "revenue",
                "compare": "prev_revenue",
                "format": "currency",
            },
            {"label": "Orders", "query": "kpis", "column": "orders", "compare": "prev_orders"},
        ]
        raw["charts"] = [
            {
                "name": "revenue_trend",
                "query": "trend",
                "type": "line",
                "x": "day",
                "y": "revenue",
                "title": "Revenue per day, last 30 days",
                "format": "currency",
            }
        ]
    if template is not None:
        raw["report"] = {"template": template}
    return PipelineSpec.model_validate(raw)


def _period_for(interval: timedelta) -> str:
    """What a run of a schedule this frequent should cover: a calendar unit, or the interval."""
    if interval >= timedelta(days=28):
        return "month"
    if interval >= timedelta(days=7):
        return "week"
    if interval >= timedelta(days=1):
        return "day"
    return "interval"


def _words(name: str) -> str:
    return " ".join(part.capitalize() for part in re.split(r"[_-]+", name) if part) or name


def _toml_values(value: Any, key: str = "") -> Any:
    """Model values → what the pipeline file spells: times as "HH:MM", durations as "15m"."""

    if isinstance(value, dict):
        return {k: _toml_values(v, k) for k, v in value.items()}
    if isinstance(value, list):
        items = [_toml_values(v, key) for v in value]
        return items[0] if key == "daily" and len(items) == 1 else items
    if isinstance(value, time):
        return value.strftime("%H:%M:%S" if value.second else "%H:%M")
    if isinstance(value, timedelta):
        return format_duration(value)
    return value


_COMMENTS = {
    "[schedule]": [
        "# When it runs.  `eil-run explain` lists the next fire times and the period each covers.",
        '# A business calendar (calendar = "DE-BE", skip_holidays, roll, business_day) and',
        "# waiting for other pipelines or fresh data (after, wait_for, [schedule.require]):",
        "# docs/calendars.md and docs/dependencies.md.",
    ],
    "[queries.": [
        "# Each query's result is data.<name> in the template.  $period_start and $period_end",
        "# bound the period a run covers; $prev_period_start/$prev_period_end the one before.",
    ],
    "[[metrics]]": [
        "# KPI figures at the top of the report: a column of a one-row query, compared with",
        "# the previous period's value (compare).",
    ],
    "[[charts]]": ["# Charts, drawn from a query's result; in the template: charts.<name>."],
    "[report]": ["# The report's layout: a Markdown + Jinja template (see docs/templates.md)."],
}


def scaffold_toml(spec: Any, name: str, *, schema_beside: bool = False) -> str:
    """The pipeline file's text: the spec through tomli-w, with guiding comments.

    Metrics and charts are written as ``[[metrics]]`` tables one by one, since
    tomli-w writes short arrays of tables inline, which is harder to edit.
    """

    data = _toml_values(spec.model_dump(exclude_defaults=True))
    if "schedule" in data:
        # Written out even at its default: what a run covers is the first thing to decide.
        data["schedule"].setdefault("period", spec.schedule.period)
    tail = {key: data.pop(key) for key in ("metrics", "charts", "report") if key in data}
    chunks = [tomli_w.dumps(data, multiline_strings=True)]
    for key in ("metrics", "charts"):
        for item in tail.get(key, []):
            chunks.append(f"[[{key}]]\n" + tomli_w.dumps(item, multiline_strings=True))
    if "report" in tail:
        chunks.append(tomli_w.dumps({"report": tail["report"]}, multiline_strings=True))
    body = "\n".join(chunk.rstrip("\n") + "\n" for chunk in chunks)

    lines: list[str] = []
    commented: set[str] = set()
    for line in body.splitlines():
        for prefix, comment in _COMMENTS.items():
            if line.startswith(prefix) and prefix not in commented:
                commented.add(prefix)
                lines.extend(comment)
        lines.append(line)
    header = []
    if schema_beside:
        # Taplo / Even Better TOML read this directive: completion and checks in the editor.
        header.append("#:schema ./pipeline.schema.json")
    header += [
        f"# {name}: made by `eil-run new`.  Every key is explained in docs/pipeline-file.md.",
        "",
    ]
    return "\n".join(header + lines) + "\n"


def scaffold_template(spec: Any, name: str) -> str:
    """The starter template: title, period, KPIs and insights, each chart, each query's table."""
    parts = [_TEMPLATE_HEAD % {"name": name}]
    if spec.metrics:
        parts.append(_TEMPLATE_METRICS)
    for chart in spec.charts:
        parts.append(f"\n{{{{ charts.{chart.name} }}}}\n")
    for query in spec.queries:
        parts.append(f"\n## {_words(query)}\n\n{{{{ data.{query} | table(max_rows=10) }}}}\n")
    return "".join(parts)


def _check_before_writing(toml_text: str, template_text: str, template_name: str) -> None:
    """Parse and validate what is about to be written: a scaffold that fails is a bug here."""

    PipelineSpec.model_validate(tomllib.loads(toml_text))
    compile_template(TemplateSource(template_name, template_text))
