"""The docs are the contract's reference: a test fails when a key, variable, filter or flag is missing."""

from __future__ import annotations

import dataclasses
import re
import typing
from datetime import datetime
from pathlib import Path

import pytest
from pydantic import BaseModel

from eil_pipelines.cli.commands import COMMANDS
from eil_pipelines.cli.help_text import DESCRIPTION
from eil_pipelines.cli.once import build_main_parser
from eil_pipelines.render.filters import make_filters
from eil_pipelines.run.context import RunContext
from eil_pipelines.run.metrics import MetricResult
from eil_pipelines.spec.models import PipelineSpec, field_docs

DOCS = Path(__file__).resolve().parent.parent / "docs"


def model_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key of the contract as the docs write it: ``schedule.cron``, ``queries.<name>.sql``."""
    keys = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        keys.append(key)
        for arg in [info.annotation, *typing.get_args(info.annotation)]:
            inner = [arg, *typing.get_args(arg)]
            for candidate in inner:
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    is_table_of_tables = (
                        typing.get_origin(info.annotation) is dict or typing.get_origin(arg) is dict
                    )
                    sub = f"{key}.<name>." if is_table_of_tables else f"{key}."
                    keys.extend(model_keys(candidate, sub))
    return sorted(set(keys))


def test_every_pipeline_key_is_documented():
    text = (DOCS / "pipeline-file.md").read_text()
    missing = [k for k in model_keys(PipelineSpec) if f"`{k}`" not in text]
    assert missing == []


def test_every_model_field_has_a_docstring():
    def walk(model):
        docs = field_docs(model)
        for name, info in model.model_fields.items():
            yield model.__name__, name, docs.get(name)
            for arg in [info.annotation, *typing.get_args(info.annotation)]:
                for candidate in [arg, *typing.get_args(arg)]:
                    if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                        yield from walk(candidate)

    assert [(m, f) for m, f, d in walk(PipelineSpec) if not d] == []


def test_the_key_finder_sees_nested_keys():
    keys = model_keys(PipelineSpec)
    assert {"schedule.cron", "queries.<name>.sql", "charts.series", "report.max_rows"} <= set(keys)


def test_every_filter_is_documented():
    text = (DOCS / "templates.md").read_text()
    names = sorted(make_filters("md", max_rows=5, currency="$"))
    assert len(names) >= 9
    assert [n for n in names if f"`{n}" not in text] == []


def test_every_template_variable_is_documented():
    from zoneinfo import ZoneInfo

    text = (DOCS / "templates.md").read_text()
    zone = ZoneInfo("UTC")
    moment = datetime(2026, 11, 28, tzinfo=zone)
    ctx = RunContext("p", moment, zone, moment, moment, moment, moment, "day", "2026-11-28")
    run_keys = [f"run.{k}" for k in ctx.template_run()]
    metric_keys = [f.name for f in dataclasses.fields(MetricResult)]
    top = [
        "pipeline.name",
        "pipeline.title",
        "pipeline.description",
        "params.<name>",
        "data.<query>",
        "charts.<name>",
        "metrics",
        "insights",
        "sql.<query>",
        "format",
    ]
    missing = [k for k in run_keys + top if f"`{k}`" not in text]
    missing += [k for k in metric_keys if f"`{k}`" not in text]
    assert missing == []


def all_parsers():
    """The main parser and every subcommand's, from the CLI's own dispatch table."""
    import importlib

    from eil_pipelines.cli import COMMANDS

    builders = [build_main_parser]
    for target in COMMANDS.values():
        module, builder, _ = target.split(":")
        builders.append(getattr(importlib.import_module(module), builder))
    return builders


@pytest.mark.parametrize("parser", all_parsers())
def test_every_cli_option_is_documented(parser):
    text = (DOCS / "cli.md").read_text()
    command = parser().prog
    assert f"`{command}" in text, f"{command} has no section in docs/cli.md"
    options = [
        opt
        for action in parser()._actions
        for opt in action.option_strings
        if opt not in ("-h", "--help")
    ]
    assert options
    assert [o for o in options if not re.search(rf"`{re.escape(o)}[` ]", text)] == []


def test_the_main_help_names_every_subcommand():
    missing = [name for name in COMMANDS if f"eil-run {name} " not in DESCRIPTION]
    assert missing == []
