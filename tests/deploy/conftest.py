"""Fixtures of the deployment-kit tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from deploykit import REPO


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A copy of the repository's example project: pipelines, SQL, templates, data."""
    root = tmp_path / "project"
    for name in ("pipelines", "sql", "templates", "data"):
        shutil.copytree(REPO / name, root / name)
    return root
