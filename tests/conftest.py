"""Shared fixtures: a throw-away project folder with a pipelines/ directory; the
``external`` marker on tests that need a tool from outside Python."""

from __future__ import annotations

import textwrap
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


class Project:
    """A temporary project root: ``pipelines/``, ``reports/``, data files."""

    def __init__(self, root: Path):
        self.root = root
        self.pipelines = root / "pipelines"
        self.pipelines.mkdir()
        self.reports = root / "reports"

    def write(self, relative: str, text: str) -> Path:
        """Write a file (dedented) under the project root."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def pipeline(self, name: str, text: str) -> Path:
        """Write ``pipelines/<name>.toml``."""
        return self.write(f"pipelines/{name}.toml", text)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """An empty project folder."""
    return Project(tmp_path)


MINIMAL = """
title = "Minimal"
[queries.one]
sql = "SELECT 1 AS x"
"""


# --- the "external" marker ---------------------------------------------------------

#: Fixtures that start a database server from the machine's packages.
EXTERNAL_FIXTURES = frozenset({"postgres_server", "mariadb_server"})
#: Modules whose use means Chromium, Java or Node: tests/e2e/toolchain.py and Playwright.
EXTERNAL_MODULES = ("toolchain", "playwright")


def _needs_external_module(module: types.ModuleType | None) -> bool:
    if module is None:
        return False
    for value in vars(module).values():
        if isinstance(value, types.ModuleType):
            name = value.__name__
        else:
            name = getattr(value, "__module__", None)
            if not isinstance(name, str):
                continue
        if name.split(".")[0] in EXTERNAL_MODULES:
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``external`` every test that needs Chromium, Java, Node, PostgreSQL or
    MariaDB, found by the fixtures it uses and the modules its file imports, so
    ``pytest -m "not external"`` runs the rest on a machine without them."""
    modules: dict[object, bool] = {}
    for item in items:
        if item.get_closest_marker("external"):
            continue
        module = getattr(item, "module", None)
        if module not in modules:
            modules[module] = _needs_external_module(module)
        fixtures = set(getattr(item, "fixturenames", ()))
        if modules[module] or fixtures & EXTERNAL_FIXTURES:
            item.add_marker(pytest.mark.external)
