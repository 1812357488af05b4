"""The pipeline file's JSON Schema: complete, current, and in step with the models.

The schema is checked with an independent validator (the ``jsonschema``
library), against the example pipelines and against files the loader rejects.
"""

from __future__ import annotations

import tomllib
import typing
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel

from eil_pipelines.spec.models import PipelineSpec
from eil_pipelines.spec.schema import EXAMPLES, iter_properties, pipeline_schema, schema_text

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "pipelines" / "pipeline.schema.json"
EXAMPLE_PIPELINES = sorted((REPO / "pipelines").glob("*.toml"))


def as_json(value: Any) -> Any:
    """TOML values as editors hand them to a JSON Schema validator: dates and times as text."""
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def validator() -> jsonschema.protocols.Validator:
    schema = pipeline_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors_for(document: dict[str, Any]) -> list[str]:
    return [e.message for e in validator().iter_errors(as_json(document))]


def model_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every key of the models, as the schema's examples table writes it."""
    paths = set()
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.add(path)
        for arg in [info.annotation, *typing.get_args(info.annotation)]:
            for candidate in [arg, *typing.get_args(arg)]:
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    table_of_tables = dict in (
                        typing.get_origin(info.annotation),
                        typing.get_origin(arg),
                    )
                    paths |= model_paths(
                        candidate, f"{path}.<name>." if table_of_tables else f"{path}."
                    )
    return paths


def test_the_committed_schema_is_current():
    assert COMMITTED.read_text(encoding="utf-8") == schema_text(), (
        "pipelines/pipeline.schema.json is stale: regenerate it with "
        "eil-run schema --output pipelines/pipeline.schema.json"
    )


def test_the_schema_is_valid_draft_2020_12():
    schema = pipeline_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_every_key_has_a_description_and_an_example():
    missing = [
        path
        for path, prop in iter_properties(pipeline_schema())
        if not prop.get("description") or not prop.get("examples")
    ]
    assert missing == []


def test_the_schema_has_every_key_of_the_models_and_no_other():
    schema_paths = {path for path, _ in iter_properties(pipeline_schema())}
    assert schema_paths == model_paths(PipelineSpec)
    assert set(EXAMPLES) == schema_paths  # no example for a key that is gone


def test_descriptions_are_markdown_not_rest():
    for path, prop in iter_properties(pipeline_schema()):
        assert "``" not in prop["description"], path


def test_each_example_matches_its_keys_schema():
    schema = pipeline_schema()
    for path, prop in iter_properties(schema):
        check = jsonschema.Draft202012Validator({**prop, "$defs": schema["$defs"]})
        for example in prop["examples"]:
            problems = [e.message for e in check.iter_errors(example)]
            assert problems == [], f"{path}: example {example!r}: {problems}"


def test_the_top_level_examples_make_a_valid_pipeline():
    top = {key: EXAMPLES[key][0] for key in PipelineSpec.model_fields}
    PipelineSpec.model_validate(top)
    assert errors_for(top) == []


@pytest.mark.parametrize("path", EXAMPLE_PIPELINES, ids=lambda p: p.name)
def test_every_example_pipeline_is_valid_against_the_schema(path):
    assert EXAMPLE_PIPELINES, "no example pipelines found"
    assert errors_for(tomllib.loads(path.read_text(encoding="utf-8"))) == []


def test_a_scaffold_from_eil_run_new_is_valid_against_the_schema():
    from eil_pipelines.app.new import scaffold_spec, scaffold_toml

    for spec in (
        scaffold_spec("x", timezone="UTC"),
        scaffold_spec("x", cron="*/15 * * * *", query_file="sql/x.sql", timezone="UTC"),
    ):
        assert errors_for(tomllib.loads(scaffold_toml(spec, "x"))) == []


BASE = {"title": "T", "queries": {"q": {"sql": "SELECT 1"}}}


@pytest.mark.parametrize(
    "change",
    [
        {"titel": "typo"},
        {"enabled": "yes"},
        {"schedule": {"cron": "0 7 * * *", "every": "1h"}},
        {"schedule": {"timezone": "UTC"}},
        {"schedule": {"every": "soon"}},
        {"schedule": {"daily": "7am"}},
        {"queries": {}},
        {"queries": {"bad-name": {"sql": "SELECT 1"}}},
        {"queries": {"q": {"sql": "SELECT 1", "file": "q.sql"}}},
        {"params": {"period_start": 1}},
        {"charts": [{"name": "Bad Name", "query": "q", "y": "v"}]},
        {"metrics": [{"label": "x", "query": "q", "column": "v", "format": "money"}]},
        {"deliver": [{"to": "not an address"}]},
        {"report": {"formats": []}},
    ],
    ids=repr,
)
def test_the_schema_rejects_what_the_models_reject(change):
    document = {**BASE, **change}
    assert errors_for(document) != []
    with pytest.raises(ValueError):
        PipelineSpec.model_validate(document)


@pytest.mark.parametrize(
    "change",
    [
        {"schedule": {"daily": ["08:00", "17:30:15"], "days": ["mon"]}},
        {"schedule": {"every": "1h30m", "start": datetime(2026, 1, 5, 7)}},
        {"params": {"since": date(2026, 1, 1), "n": 3, "share": 0.5, "on": True}},
        {"deliver": [{"to": "ceo@example.com"}, {"webhook": "https://example.com/h"}]},
        {"alert": {"query": "q", "notify": ["a@example.com", "b@example.com"]}},
    ],
    ids=repr,
)
def test_the_schema_accepts_what_the_models_accept(change):
    document = {**BASE, **change}
    PipelineSpec.model_validate(document)
    assert errors_for(document) == []
