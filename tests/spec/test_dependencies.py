"""``[schedule] after`` across files: unknown names, itself, cycles; and ``eil-run graph``."""

from __future__ import annotations

import json
import subprocess
import sys

from eil_pipelines.app.graph import dependency_graph, graph_mermaid, graph_text
from eil_pipelines.spec.loader import load_pipelines_lenient


def pipe(project, name: str, after: list[str] | None = None, extra: str = "") -> None:
    listed = "" if after is None else f"after = {json.dumps(after)}\n"
    project.pipeline(
        name,
        f'title = "{name}"\n[schedule]\ndaily = "07:00"\ntimezone = "UTC"\n{listed}{extra}'
        '[queries.q]\nsql = "SELECT 1 AS x"\n',
    )


def problems_of(errors) -> dict[str, list[tuple[str, str]]]:
    return {e.file.stem: e.problems for e in errors}


def test_a_cycle_is_printed_and_makes_each_member_invalid(project):
    pipe(project, "a", ["b"])
    pipe(project, "b", ["c"])
    pipe(project, "c", ["a"])
    pipe(project, "d", ["a"])
    pipe(project, "e")
    valid, errors = load_pipelines_lenient(project.pipelines)
    assert sorted(p.name for p in valid) == ["d", "e"]
    cycle = "a dependency cycle: a → b → c → a (each waits for the next)"
    assert problems_of(errors) == {
        "a": [("schedule.after", cycle)],
        "b": [("schedule.after", cycle)],
        "c": [("schedule.after", cycle)],
    }


def test_unknown_names_itself_and_repeats_are_explained(project):
    pipe(project, "daily_sales")
    pipe(project, "weekly", ["daily_sale", "weekly", "daily_sales", "daily_sales"])
    _, errors = load_pipelines_lenient(project.pipelines)
    assert problems_of(errors)["weekly"] == [
        (
            "schedule.after[0]",
            'no pipeline named "daily_sale"; did you mean "daily_sales"? (pipelines: daily_sales)',
        ),
        ("schedule.after[1]", '"weekly" is this pipeline: a pipeline cannot wait for itself'),
        ("schedule.after[3]", '"daily_sales" is listed twice'),
    ]


def test_naming_an_invalid_file_is_not_an_error_of_the_dependent(project):
    project.pipeline("broken", 'title = "x"\n[schedule]\nevery = "nope"\n')
    pipe(project, "weekly", ["broken"])
    valid, errors = load_pipelines_lenient(project.pipelines)
    assert [p.name for p in valid] == ["weekly"]
    assert [e.file.stem for e in errors] == ["broken"]


def test_a_gate_must_name_a_query(project):
    pipe(project, "gated", extra='[schedule.require]\nquery = "fresh"\n')
    _, errors = load_pipelines_lenient(project.pipelines)
    assert problems_of(errors)["gated"] == [
        ("schedule.require.query", 'no query named "fresh" (queries defined: q)')
    ]


def test_the_graph_in_text_mermaid_and_json(project):
    pipe(project, "daily_sales")
    pipe(project, "daily_ops")
    pipe(project, "weekly", ["daily_sales", "daily_ops"])
    pipe(project, "monthly", ["weekly"])
    graph = dependency_graph(project.pipelines)
    order = [n["pipeline"] for n in graph["pipelines"]]
    assert order.index("weekly") > order.index("daily_sales")
    assert order.index("monthly") > order.index("weekly")
    weekly = next(n for n in graph["pipelines"] if n["pipeline"] == "weekly")
    assert weekly == {
        "pipeline": "weekly",
        "after": ["daily_sales", "daily_ops"],
        "before": ["monthly"],
        "valid": True,
    }
    assert "weekly ← daily_sales, daily_ops" in graph_text(graph).splitlines()
    mermaid = graph_mermaid(graph).splitlines()
    assert mermaid[0] == "flowchart LR"
    assert "  p_daily_sales --> p_weekly" in mermaid
    assert "  p_weekly --> p_monthly" in mermaid


def test_eil_run_graph_exits_2_and_names_invalid_files(project):
    pipe(project, "a")
    project.pipeline("broken", 'title = "x"\n')
    done = subprocess.run(
        [sys.executable, "-m", "eil_pipelines", "graph", str(project.pipelines)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "no pipeline waits for another" in done.stdout
    assert "broken.toml is invalid and left out" in done.stdout
    assert "Traceback" not in done.stderr


def test_new_points_to_calendars_and_dependencies(tmp_path):
    from eil_pipelines.app.new import scaffold_spec, scaffold_toml

    text = scaffold_toml(scaffold_spec("x", timezone="UTC"), "x")
    assert 'calendar = "DE-BE"' in text
    assert "after, wait_for, [schedule.require]" in text
    assert "docs/calendars.md and docs/dependencies.md" in text
