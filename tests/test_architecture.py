"""The layers of docs/architecture.md, checked by reading every module's imports.

Imports are read with ``ast`` (at module level and inside functions, type-only
ones included), so a lazy import cannot hide a cycle.  The package tree is
walked, so a module that becomes a package (``ledger.py`` -> ``ledger/``) is
checked the same way.
"""

from __future__ import annotations

import ast
import itertools
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "eil_pipelines"
PACKAGE = "eil_pipelines"

#: Top-level modules that are the public API's edge: they may call the use cases.
EDGE_MODULES = {"__init__", "__main__", "jobs"}
#: The layers above the use cases, and the use cases themselves.
TOP = {"app", "cli", "web"}
#: A command module stays a few screens long: parse, call app, print.
CLI_MODULE_MAX_LINES = 150


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


ALL = modules()


def imported(name: str, path: Path) -> list[str]:
    """Every module of the package that ``name`` imports, anywhere in its body."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            out.append(target)
            # `from pkg import module` imports that module.
            out.extend(
                f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in ALL
            )
    return [t for t in out if t == PACKAGE or t.startswith(PACKAGE + ".")]


def layer(module: str) -> str:
    """The package a module belongs to (``run``, ``spec``), or a top-level module's name."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def package_graph() -> dict[str, dict[str, set[str]]]:
    """layer -> imported layer -> the modules that make the edge."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for name, path in ALL.items():
        for target in imported(name, path):
            if layer(target) != layer(name):
                graph[layer(name)][layer(target)].add(f"{name} -> {target}")
    return graph


def find_cycle(graph: dict[str, dict[str, set[str]]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_reader_sees_the_imports_it_must():
    # The checks below are only as good as the import reader: it must see lazy,
    # relative and `from pkg import module` imports.
    graph = package_graph()
    assert "eil_pipelines.app.service -> eil_pipelines.app" not in str(graph)  # same package
    assert any("-> eil_pipelines.app.once" in e for e in graph["cli"]["app"])  # a lazy import
    assert "run" in graph["app"] and "spec" in graph["run"]


def test_no_import_cycle_between_packages():
    graph = package_graph()
    cycle = find_cycle(graph)
    if cycle:
        edges = [sorted(graph[a][b])[0] for a, b in itertools.pairwise(cycle)]
        pytest.fail("import cycle " + " -> ".join(cycle) + ":\n  " + "\n  ".join(edges))


def test_schedule_imports_only_errors_and_the_standard_library():
    bad = []
    for name, path in ALL.items():
        if layer(name) != "schedule":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                roots = [(node.module or "").split(".")[0]]
            else:
                continue
            bad += [f"{name}: {r}" for r in roots if r not in sys.stdlib_module_names]
        bad += [
            f"{name} -> {t}" for t in imported(name, path) if layer(t) not in ("schedule", "errors")
        ]
    assert bad == []


def test_nothing_below_the_use_cases_imports_them_or_the_edges():
    graph = package_graph()
    bad = [
        edge
        for source, targets in graph.items()
        if source not in TOP and source not in EDGE_MODULES
        for target, edges in targets.items()
        if target in TOP
        for edge in edges
    ]
    # The use cases never reach up to the CLI or the web server either.
    bad += sorted(graph["app"].get("cli", set()) | graph["app"].get("web", set()))
    assert bad == []


def test_delivery_never_runs_pipelines_and_run_never_delivers():
    graph = package_graph()
    assert not graph["run"].get("deliver")
    assert not any(
        ".run.pipeline" in e or ".run.batch" in e for e in graph["deliver"].get("run", ())
    )


@pytest.mark.parametrize(
    "name", sorted(n for n in ALL if layer(n) == "cli"), ids=lambda n: n.split(".")[-1]
)
def test_a_cli_module_is_short_and_holds_no_ledger_access(name):
    path = ALL[name]
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines < CLI_MODULE_MAX_LINES, f"{path.name} has {lines} lines"
    targets = imported(name, path)
    assert [t for t in targets if layer(t) == "ledger"] == []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    plain = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    froms = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level]
    assert "sqlite3" not in plain + froms


# --- lazy imports only at the edges ------------------------------------------------------

#: Third-party (and platform-only standard) modules that cost start-up time or exist
#: only on some machines: importing them inside the function that needs them keeps
#: ``eil-run --help`` and ``validate`` fast and optional extras optional.
HEAVY = {
    "duckdb",
    "pandas",
    "numpy",
    "matplotlib",
    "sqlglot",
    "pyarrow",
    "openpyxl",
    "weasyprint",
    "markdown_it",
    "psycopg",
    "adbc_driver_postgresql",
    "adbc_driver_manager",
    "pymysql",
    "sqlalchemy",
    "multiprocessing",
    "ctypes",
    "fcntl",
    "boto3",  # the s3 extra: only a project whose reports go to an object store needs it
    "botocore",
    "holidays",  # most of a second to import; only schedules with a calendar need it
}

#: Function-level imports of the package's own modules outside ``cli/``, each with
#: its reason.  Anything else belongs at the top of its module.
LAZY_SEAMS = {
    # matplotlib loads only when a pipeline has charts (the scheduler, --once)
    ("eil_pipelines.run.pipeline", "eil_pipelines.charts.style"),
    ("eil_pipelines.run.pipeline", "eil_pipelines.charts.work"),
    ("eil_pipelines.app.once", "eil_pipelines.charts.processes"),
    ("eil_pipelines.app.service", "eil_pipelines.charts.processes"),
    # a server engine loads (and its driver with it) only when a connection uses it
    ("eil_pipelines.sources", "eil_pipelines.sources.named"),
    ("eil_pipelines.sources.check", "eil_pipelines.sources.named"),
    ("eil_pipelines.sources.named", "eil_pipelines.sources"),
    ("eil_pipelines.sources.named", "eil_pipelines.sources.postgres"),
    ("eil_pipelines.sources.named", "eil_pipelines.sources.mysql"),
    ("eil_pipelines.sources.named", "eil_pipelines.sources.alchemy"),
    # eil.toml and pipeline files check each other's references (one package, one cycle)
    ("eil_pipelines.spec.loader", "eil_pipelines.spec.project"),
    ("eil_pipelines.spec.project", "eil_pipelines.spec.loader"),
    ("eil_pipelines.spec.project", "eil_pipelines.spec.models"),
    ("eil_pipelines.spec.project", "eil_pipelines.spec.toml_files"),
    # templates are compiled only when a file names one (validate without templates
    # stays free of Jinja)
    ("eil_pipelines.spec.loader", "eil_pipelines.render"),
    ("eil_pipelines.spec.project", "eil_pipelines.render"),
    ("eil_pipelines.spec.loader", "eil_pipelines.errors"),
    ("eil_pipelines.spec.project", "eil_pipelines.errors"),
    # validate prepares queries only with --deep: the sources (and sqlite3) load then,
    # not for every validate
    ("eil_pipelines.run.deep", "eil_pipelines.sources"),
    # the cron parser checks a cron string only when a file has one
    ("eil_pipelines.spec.models", "eil_pipelines.schedule.cron"),
}


def function_level_imports(name: str, path: Path) -> list[tuple[str, int]]:
    """``(module, line)`` of every import inside a function of ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    found = []
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Import):
                found.extend((alias.name, node.lineno) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    if not is_package:
                        base = base[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                found.append((target, node.lineno))
    return found


def test_lazy_imports_are_only_at_the_edges():
    """Issue 10, item 9: imports inside functions only where they buy start-up time.

    Allowed: the CLI's lazy dispatch (``cli/``), heavy or optional libraries, the
    standard library's rarely needed corners, and the listed seams of our own.
    """
    stdlib = set(sys.stdlib_module_names)
    wrong = []
    for name, path in ALL.items():
        if name.startswith(f"{PACKAGE}.cli"):
            continue
        for target, line in function_level_imports(name, path):
            top = target.split(".")[0]
            if top in HEAVY:
                continue
            if top == PACKAGE:
                if (name, target) not in LAZY_SEAMS:
                    wrong.append(f"{path.relative_to(ROOT.parent)}:{line}: {target}")
            elif top not in stdlib:
                wrong.append(f"{path.relative_to(ROOT.parent)}:{line}: {target} (third party)")
    assert not wrong, "move these imports to the top of their module:\n" + "\n".join(wrong)
