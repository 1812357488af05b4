"""Dependencies between pipelines (``[schedule] after``): names that exist, and no cycles.

These checks need every file of the folder, so the loader makes them after
loading each file on its own.  A pipeline whose ``after`` names an unknown
pipeline, or that is part of a cycle, is invalid; the message prints the cycle.
"""

from __future__ import annotations

import graphlib
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .models import _did_you_mean

if TYPE_CHECKING:
    from .loader import Pipeline

__all__ = ["dependency_problems", "upstream_names"]


def upstream_names(pipeline: Pipeline) -> list[str]:
    """The pipelines ``pipeline`` waits for, as written (empty without a schedule)."""
    schedule = pipeline.spec.schedule
    return list(schedule.after) if schedule is not None else []


def dependency_problems(
    pipelines: Iterable[Pipeline], broken: Collection[str] = ()
) -> dict[Path, list[tuple[str, str]]]:
    """Problems of ``after`` per pipeline file: unknown names, itself, cycles.

    ``broken`` are the names of pipeline files that did not validate: naming
    one is not an error here (its own file says what is wrong), and the waiting
    run will name it when it fails.
    """
    listed = list(pipelines)
    by_name = {p.name: p for p in listed}
    known = sorted(set(by_name) | set(broken))
    problems: dict[Path, list[tuple[str, str]]] = {}
    graph: dict[str, list[str]] = {}
    for pipeline in listed:
        ups = upstream_names(pipeline)
        for i, name in enumerate(ups):
            key = f"schedule.after[{i}]"
            if name == pipeline.name:
                problems.setdefault(pipeline.file, []).append(
                    (key, f'"{name}" is this pipeline: a pipeline cannot wait for itself')
                )
            elif name not in by_name and name not in broken:
                others = [k for k in known if k != pipeline.name]
                problems.setdefault(pipeline.file, []).append(
                    (
                        key,
                        f'no pipeline named "{name}"{_did_you_mean(name, others)} '
                        f"(pipelines: {', '.join(others) or 'none'})",
                    )
                )
            if ups.count(name) > 1 and ups.index(name) != i:
                problems.setdefault(pipeline.file, []).append((key, f'"{name}" is listed twice'))
        graph[pipeline.name] = [n for n in ups if n in by_name and n != pipeline.name]
    for cycle in _cycles(graph):
        shown = " → ".join([*cycle, cycle[0]])
        for name in cycle:
            problems.setdefault(by_name[name].file, []).append(
                ("schedule.after", f"a dependency cycle: {shown} (each waits for the next)")
            )
    return problems


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Each cycle once (in the order the sorter finds them), until none is left."""
    found: list[list[str]] = []
    remaining = {k: list(v) for k, v in graph.items()}
    while True:
        try:
            graphlib.TopologicalSorter(remaining).prepare()
            return found
        except graphlib.CycleError as exc:
            # The sorter reports a cycle as [a, b, …, a]; drop the repeat and break
            # one of its edges so the next cycle (if any) shows up too.
            cycle = list(exc.args[1])[:-1][::-1]
            start = cycle.index(min(cycle))
            cycle = cycle[start:] + cycle[:start]
            found.append(cycle)
            first, second = cycle[0], cycle[1 % len(cycle)]
            remaining[first] = [n for n in remaining[first] if n != second]
