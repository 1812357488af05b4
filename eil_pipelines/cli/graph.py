"""``eil-run graph [PATH]``: which pipelines wait for which, as text, Mermaid or JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import Parser as _Parser
from .common import add_debug, add_path
from .exitcodes import EXIT_CONFIG, EXIT_OK


def build_graph_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run graph``."""
    parser = _Parser(
        prog="eil-run graph",
        description="Print the dependency graph of the pipelines ([schedule] after): each "
        "pipeline with the pipelines it waits for, upstream first.",
    )
    add_path(parser)
    parser.add_argument(
        "--format",
        choices=("text", "mermaid", "json"),
        default="text",
        help="text (default), a Mermaid flowchart for docs and pull requests, or JSON",
    )
    add_debug(parser)
    return parser


def cmd_graph(options: argparse.Namespace) -> int:
    """Print the graph; exit 2 when a pipeline file is invalid (it is left out)."""
    from ..app.graph import dependency_graph, graph_mermaid, graph_text
    from ..text import printable

    graph = dependency_graph(Path(options.path))
    if options.format == "json":
        print(json.dumps(graph, indent=2))
    else:
        text = graph_mermaid(graph) if options.format == "mermaid" else graph_text(graph)
        print(printable(text))
    for shown in graph["invalid"]:
        print(f"eil-run graph: {shown} is invalid and left out (eil-run validate says why)")
    return EXIT_CONFIG if graph["invalid"] else EXIT_OK
