"""Shared fixtures: a throw-away project folder with a pipelines/ directory."""

from __future__ import annotations

import textwrap
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
