"""``schedule/`` depends only on ``errors`` and the standard library, and its modules form no cycle.

Read from the source with :mod:`ast`, so a lazy import inside a function
counts as much as one at the top.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import eil_pipelines.schedule

ROOT = Path(eil_pipelines.schedule.__file__).parent
PACKAGE = "eil_pipelines.schedule"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


def imports_of(path: Path) -> set[str]:
    """The absolute names of the modules ``path`` imports (``from . import x`` as ``pkg.x``)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            # "from . import x" names a submodule when there is one.
            found.update(
                f"{target}.{alias.name}"
                for alias in node.names
                if f"{target}.{alias.name}" in MODULES
            )
    return found


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def test_the_cron_package_and_the_helpers_are_seen() -> None:
    # A renamed folder would otherwise make the checks below pass on nothing.
    for name in ("cron", "cron.parse", "cron.match", "cron.describe", "cron.trigger"):
        assert f"{PACKAGE}.{name}" in MODULES
    assert {f"{PACKAGE}.triggers", f"{PACKAGE}.wallclock", f"{PACKAGE}.build"} <= set(MODULES)


def test_schedule_imports_only_errors_and_the_standard_library() -> None:
    outside = {}
    for name, path in MODULES.items():
        for target in imports_of(path):
            top = target.partition(".")[0]
            ours = target == "eil_pipelines.errors" or target.startswith(PACKAGE)
            if not ours and (top == "eil_pipelines" or top not in sys.stdlib_module_names):
                outside.setdefault(name, []).append(target)
    assert outside == {}


def test_no_module_of_schedule_imports_itself_back() -> None:
    graph = {
        name: {t for t in imports_of(path) if t in MODULES and t != name}
        for name, path in MODULES.items()
    }
    # cron.trigger builds on triggers, so triggers must not reach cron.
    assert f"{PACKAGE}.triggers" in graph[f"{PACKAGE}.cron.trigger"]

    def cycle_from(start: str) -> list[str] | None:
        path: list[str] = []

        def visit(node: str) -> list[str] | None:
            if node in path:
                return [*path[path.index(node) :], node]
            path.append(node)
            for nxt in sorted(graph[node]):
                found = visit(nxt)
                if found:
                    return found
            path.pop()
            return None

        return visit(start)

    cycles = [c for c in (cycle_from(n) for n in graph) if c]
    assert cycles == []
