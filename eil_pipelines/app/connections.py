"""``eil-run connections``: test every named connection of a project."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..sources.check import ConnectionCheck, check_connections
from ..spec.loader import project_root_for


def check_project_connections(
    path: Path, *, env: Mapping[str, str] | None = None, target: str | None = None
) -> list[ConnectionCheck]:
    """Each connection of the project holding ``path`` (a pipelines folder or file),
    connected to, asked its version and checked read-only; raises ``ConfigError``
    when ``eil.toml`` itself is invalid."""
    return check_connections(project_root_for(path), env=env, target=target)
