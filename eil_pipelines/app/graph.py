"""The dependency graph between pipelines (``[schedule] after``), as data, text and Mermaid."""

from __future__ import annotations

import graphlib
import re
from pathlib import Path
from typing import Any

from ..spec.dependencies import upstream_names
from ..spec.loader import load_pipelines_lenient

__all__ = ["dependency_graph", "graph_mermaid", "graph_text"]


def dependency_graph(path: Path) -> dict[str, Any]:
    """Every valid pipeline with what it waits for (``after``) and what waits for it
    (``before``), upstream first; and the invalid files, which are not in the graph."""
    pipelines, errors = load_pipelines_lenient(path, check_templates=False)
    after = {p.name: upstream_names(p) for p in pipelines}
    before: dict[str, list[str]] = {name: [] for name in after}
    for name, ups in after.items():
        for up in ups:
            before.setdefault(up, []).append(name)
    # Valid pipelines have no cycles (the loader refuses them); names of invalid
    # files may still appear as upstreams.
    order = list(graphlib.TopologicalSorter({n: after.get(n, []) for n in before}).static_order())
    return {
        "pipelines": [
            {
                "pipeline": name,
                "after": after.get(name, []),
                "before": sorted(before.get(name, [])),
                "valid": name in after,
            }
            for name in order
        ],
        "invalid": [e.shown for e in errors],
    }


def graph_text(graph: dict[str, Any]) -> str:
    """One line per pipeline, upstream first: ``weekly ← daily_sales, daily_ops``."""
    lines = []
    for node in graph["pipelines"]:
        mark = "" if node["valid"] else " (invalid)"
        ups = f" ← {', '.join(node['after'])}" if node["after"] else ""
        lines.append(f"{node['pipeline']}{mark}{ups}")
    if not any(node["after"] for node in graph["pipelines"]):
        lines.append("(no pipeline waits for another: none has [schedule] after)")
    return "\n".join(lines)


def _node_id(name: str) -> str:
    return "p_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def graph_mermaid(graph: dict[str, Any]) -> str:
    """A Mermaid flowchart, upstream on the left, for the docs or a pull request."""
    lines = ["flowchart LR"]
    for node in graph["pipelines"]:
        label = node["pipeline"].replace('"', "'")
        lines.append(f'  {_node_id(node["pipeline"])}["{label}"]')
    for node in graph["pipelines"]:
        for up in node["after"]:
            lines.append(f"  {_node_id(up)} --> {_node_id(node['pipeline'])}")
    return "\n".join(lines)
