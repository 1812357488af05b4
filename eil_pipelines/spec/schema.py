"""The JSON Schema of a pipeline file, for editors and CI.

Generated from the same Pydantic models the loader validates with, so it can
never disagree with them about which keys exist.  On top of
``PipelineSpec.model_json_schema()`` this module:

* adds an ``examples`` list to every key, from :data:`EXAMPLES` (a table keyed
  by dotted key path, kept here so ``models.py`` stays about validation);
* writes descriptions in Markdown (editors render it on hover) instead of the
  docstrings' reST double backticks;
* drops what TOML cannot express or editors only show as noise: ``null``
  branches and ``null`` defaults (TOML has no null: a key is simply left out),
  and the per-key titles Pydantic derives from field names;
* states a few rules the models check in code, where JSON Schema can say them
  too: exactly one of ``cron``/``every``/``daily``, of ``sql``/``file``, of
  ``to``/``webhook``; query and parameter names; single addresses accepted
  where a list is.

TOML dates and times are compared as text, as Taplo does: a local date-time
such as ``2026-01-05T07:00:00`` matches ``"type": "string"`` with a pattern.

``pipelines/pipeline.schema.json`` is this module's output, committed; a test
fails when it is stale (regenerate with ``eil-run schema --output
pipelines/pipeline.schema.json``).
"""

from __future__ import annotations

import copy
import json
import re
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from .models import BUILTIN_PARAMS, EMAIL_PATTERN, PARAM_NAME_PATTERN, PipelineSpec, field_docs

__all__ = ["EXAMPLES", "SCHEMA_FILE_NAME", "iter_properties", "pipeline_schema", "schema_text"]

#: The file name the schema is committed under, beside the pipeline files.
SCHEMA_FILE_NAME = "pipeline.schema.json"

_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_CLOCK = r"^\s*\d{1,2}:\d{2}(:\d{2})?\s*$"
_LOCAL_DATETIME = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$"

#: Examples for every key, by dotted key path as the docs write it
#: (``schedule.cron``, ``queries.<name>.sql``, ``charts.y``).  Table-valued
#: keys get a whole table; together the top-level examples make a valid pipeline
#: (a test checks that, and that each example matches its key's schema).
EXAMPLES: dict[str, list[Any]] = {
    "title": ["Daily Sales"],
    "name": ["daily_sales"],
    "description": ["How did we sell yesterday, by region?"],
    "enabled": [True, False],
    "schedule": [{"cron": "0 7 * * MON-FRI", "timezone": "Europe/Berlin", "period": "day"}],
    "schedule.cron": ["0 7 * * MON-FRI", "*/15 * * * *", "@daily"],
    "schedule.every": ["15m", "1h30m"],
    "schedule.daily": ["07:00", ["08:00", "17:30"]],
    "schedule.days": [["mon", "fri"]],
    "schedule.timezone": ["Europe/Berlin", "America/New_York", "UTC"],
    "schedule.start": ["2026-01-05T07:00:00"],
    "schedule.period": ["day", "week", "interval"],
    "schedule.catch_up": ["latest", "all", "none"],
    "schedule.max_catch_up": [10],
    "schedule.overlap": ["skip", "queue"],
    "schedule.retries": [2],
    "schedule.retry_delay": ["5m"],
    "schedule.timeout": ["10m"],
    "schedule.jitter": ["30s"],
    "schedule.calendar": ["DE-BE", ["US", "GB-ENG"]],
    "schedule.skip_holidays": [True],
    "schedule.roll": ["next"],
    "schedule.business_day": [1, -1],
    "schedule.after": [["daily_sales", "daily_ops"]],
    "schedule.wait_for": ["2h"],
    "schedule.require": [{"query": "fresh", "every": "5m"}],
    "schedule.require.query": ["fresh"],
    "schedule.require.every": ["5m"],
    "source": ["warehouse", {"kind": "duckdb", "path": "data/warehouse.duckdb"}],
    "source.kind": ["duckdb", "sqlite"],
    "source.path": ["data/warehouse.duckdb", "${WAREHOUSE_PATH}"],
    "params": [{"region": "EMEA", "top_products": 10}],
    "queries": [
        {
            "kpis": {
                "sql": "SELECT sum(revenue) AS revenue, 0 AS prev_revenue "
                "FROM 'data/orders.parquet' "
                "WHERE order_ts >= $period_start AND order_ts < $period_end"
            },
            "daily": {"file": "sql/daily_by_region.sql"},
        }
    ],
    "queries.<name>.sql": [
        "SELECT region, sum(revenue) AS revenue FROM 'data/orders.parquet' "
        "WHERE order_ts >= $period_start AND order_ts < $period_end GROUP BY region"
    ],
    "queries.<name>.file": ["sql/daily_by_region.sql"],
    "queries.<name>.show": [False],
    "queries.<name>.columns": [{"change_pct": {"label": "Change", "format": "change"}}],
    "queries.<name>.columns.<name>.label": ["Change"],
    "queries.<name>.columns.<name>.format": ["change", "currency", "id"],
    "queries.<name>.columns.<name>.decimals": [1],
    "metrics": [
        [
            {
                "label": "Revenue",
                "query": "kpis",
                "column": "revenue",
                "compare": "prev_revenue",
                "format": "currency",
            }
        ]
    ],
    "metrics.label": ["Revenue"],
    "metrics.query": ["kpis"],
    "metrics.column": ["revenue"],
    "metrics.compare": ["prev_revenue"],
    "metrics.format": ["currency", "percent"],
    "metrics.good": ["up", "down"],
    "metrics.decimals": [2],
    "charts": [
        [
            {
                "name": "revenue_by_day",
                "query": "daily",
                "type": "line",
                "x": "day",
                "y": "revenue",
                "series": "region",
            }
        ]
    ],
    "charts.name": ["revenue_by_day"],
    "charts.query": ["daily"],
    "charts.type": ["line", "bar"],
    "charts.x": ["day"],
    "charts.y": ["revenue", ["revenue", "cost"]],
    "charts.series": ["region"],
    "charts.title": ["Revenue by day and region"],
    "charts.format": ["compact", "currency"],
    "charts.target": [100000],
    "charts.target_label": ["Plan"],
    "charts.sort": ["desc"],
    "charts.limit": [10],
    "charts.y_zero": [True],
    "report": [{"template": "templates/daily_sales.md.j2", "formats": ["md", "html"]}],
    "report.template": ["templates/daily_sales.md.j2"],
    "report.formats": [["md", "html"], ["md", "html", "pdf"]],
    "report.exports": [["csv", "xlsx"]],
    "report.keep": [30],
    "report.max_rows": [20],
    "report.data": ["summary", "none", "full"],
    "report.currency": ["€", "$"],
    "owner": ["data-team@example.com"],
    "deliver": [[{"to": ["ceo@example.com"], "attach": ["html"], "when": "not_empty"}]],
    "deliver.to": ["ceo@example.com", ["ceo@example.com", "cfo@example.com"]],
    "deliver.webhook": ["${SLACK_WEBHOOK_URL}"],
    "deliver.subject": ["{{ pipeline.title }} – {{ run.date }}"],
    "deliver.attach": [["html", "csv"]],
    "deliver.when": ["always", "not_empty", "changed", "changed_text"],
    "deliver.format": ["slack", "json"],
    "alert": [{"query": "kpis", "notify": "ops@example.com", "mode": "on_change"}],
    "alert.query": ["late_orders"],
    "alert.notify": ["ops@example.com", ["ops@example.com", "cto@example.com"]],
    "alert.mode": ["on_change", "every_run"],
    "alert.subject": ["Alert: {{ pipeline.title }}"],
}

# Rules the models check in code that JSON Schema can state too, by model name.
_ONE_OF_REQUIRED = {
    "ScheduleSpec": ("cron", "every", "daily"),
    "QuerySpec": ("sql", "file"),
    "DeliverSpec": ("to", "webhook"),
}

# What the models check in validators, stated for editors, by key path.
_EXTRA: dict[str, dict[str, Any]] = {
    "queries": {"propertyNames": {"pattern": PARAM_NAME_PATTERN}},
    "params": {
        "propertyNames": {"pattern": PARAM_NAME_PATTERN, "not": {"enum": [*BUILTIN_PARAMS]}}
    },
    "schedule.start": {"type": "string", "pattern": _LOCAL_DATETIME},
    # The model reads "HH:MM" and "HH:MM:SS"; the type's own schema names only the first.
    "schedule.daily": {
        "anyOf": [
            {"type": "string", "pattern": _CLOCK},
            {"type": "array", "items": {"type": "string", "pattern": _CLOCK}, "minItems": 1},
        ]
    },
}

# Keys whose validator turns a single value into a list: the schema accepts both.
_ONE_OR_LIST = ("deliver.to", "alert.notify")


def pipeline_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a pipeline file, as a dict."""
    raw = PipelineSpec.model_json_schema()
    defs: dict[str, Any] = raw.pop("$defs", {})
    # Field descriptions are the docstrings under each field in models.py.
    for model in _models(PipelineSpec):
        node = raw if model is PipelineSpec else defs.get(model.__name__, {})
        docs = field_docs(model)
        for name, prop in node.get("properties", {}).items():
            if name in docs:
                prop["description"] = docs[name]
    schema: dict[str, Any] = {
        "$schema": _SCHEMA_DIALECT,
        "title": "eil-pipelines pipeline file",
        "description": _markdown(
            (raw.get("description") or "")
            + "  One TOML file per report in a `pipelines/` folder; see docs/pipeline-file.md."
        ),
        **{k: v for k, v in raw.items() if k not in ("title", "description")},
        "$defs": defs,
    }
    for name, definition in defs.items():
        definition.pop("title", None)
        if "description" in definition:
            definition["description"] = _markdown(definition["description"])
        keys = _ONE_OF_REQUIRED.get(name)
        if keys:
            definition["oneOf"] = [{"required": [k]} for k in keys]
    for path, prop in iter_properties(schema):
        _tidy(prop)
        if path in _ONE_OR_LIST:
            _accept_one_or_list(prop)
        # A key without an entry gets none (tests/spec/test_schema.py fails until it has one).
        if path in EXAMPLES:
            prop["examples"] = copy.deepcopy(EXAMPLES[path])
        prop.update(copy.deepcopy(_EXTRA.get(path, {})))
    return schema


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    """``root`` and every model its fields reach, each once."""
    found: list[type[BaseModel]] = []
    stack: list[Any] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, type) and issubclass(item, BaseModel):
            if item in found:
                continue
            found.append(item)
            stack.extend(info.annotation for info in item.model_fields.values())
        else:
            stack.extend(typing.get_args(item))
    return found


def schema_text() -> str:
    """The schema as the committed file holds it: indented JSON ending in a newline."""
    return json.dumps(pipeline_schema(), indent=2, ensure_ascii=False) + "\n"


def iter_properties(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every key of the schema as ``(dotted key path, the key's schema)``, parents first.

    Follows ``$ref`` into ``$defs`` (so the yielded dicts are the ones in
    ``$defs``, and changing them changes the schema); a table of tables
    (``queries``) adds ``.<name>`` to the path.  A definition reached from two
    key paths would get one path's examples: that raises, so a model change
    that does it is noticed.
    """
    seen: dict[str, str] = {}
    yield from _walk(schema, schema, "", seen)


def _walk(
    root: dict[str, Any], node: dict[str, Any], prefix: str, seen: dict[str, str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    for key, prop in node.get("properties", {}).items():
        path = f"{prefix}{key}"
        yield path, prop
        for ref, suffix in _object_refs(prop):
            name = ref.rsplit("/", 1)[-1]
            child_prefix = f"{path}{suffix}."
            if seen.setdefault(name, child_prefix) != child_prefix:
                raise ValueError(
                    f"$defs/{name} is used at {seen[name]!r} and {child_prefix!r}: "
                    "give the examples table a way to tell them apart"
                )
            yield from _walk(root, root["$defs"][name], child_prefix, seen)


def _object_refs(prop: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The ``$ref``s a key's value may follow, with ``".<name>"`` for a table of tables."""
    stack: list[tuple[dict[str, Any], str]] = [(prop, "")]
    while stack:
        node, suffix = stack.pop()
        if "$ref" in node:
            yield node["$ref"], suffix
        for member in [*node.get("anyOf", []), *node.get("oneOf", [])]:
            stack.append((member, suffix))
        if isinstance(node.get("items"), dict):
            stack.append((node["items"], suffix))
        if isinstance(node.get("additionalProperties"), dict):
            stack.append((node["additionalProperties"], suffix + ".<name>"))


def _tidy(prop: dict[str, Any]) -> None:
    prop.pop("title", None)
    if "description" in prop:
        prop["description"] = _markdown(prop["description"])
    if prop.get("default", 0) is None:
        del prop["default"]
    elif "default" in prop:
        prop["default"] = _without_nulls(prop["default"])
    _simplify(prop)


def _simplify(node: Any) -> None:
    """Drop ``null`` branches and repeated ``anyOf`` members, and date formats, throughout.

    Date formats go because editors hand TOML dates to the validator as text,
    and a ``format`` would make it insist on RFC 3339 offsets.
    """
    if isinstance(node, list):
        for value in node:
            _simplify(value)
        return
    if not isinstance(node, dict):
        return
    if node.get("format") in ("date", "date-time"):
        del node["format"]
    for value in node.values():
        _simplify(value)
    members = node.get("anyOf")
    if members is not None:
        unique: dict[str, Any] = {}
        for member in members:
            if member.get("type") != "null":
                unique.setdefault(json.dumps(member, sort_keys=True), member)
        del node["anyOf"]
        if len(unique) == 1:
            node.update(next(iter(unique.values())))
        else:
            node["anyOf"] = list(unique.values())


def _without_nulls(value: Any) -> Any:
    """A default with its ``None`` entries left out, as the TOML would be written."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def _accept_one_or_list(prop: dict[str, Any]) -> None:
    one = {"type": "string", "pattern": EMAIL_PATTERN}
    many = {k: prop.pop(k) for k in ("type", "items", "minItems") if k in prop}
    prop["anyOf"] = [one, many]


def _markdown(text: str) -> str:
    """reST ````code```` → Markdown ```code```, and the docstrings' line breaks joined."""
    text = re.sub(r"``(.+?)``", r"`\1`", text, flags=re.DOTALL)
    return re.sub(r"(?<!\n)\n(?!\n)", " ", text).strip()
