"""``eil-run connections``: test every named connection of a project."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..errors import UsageError
from ..sources.check import ConnectionCheck, check_connections
from ..spec.loader import project_root_for
from ..spec.project import PROJECT_FILE, load_project_settings


def check_project_connections(
    path: Path, *, env: Mapping[str, str] | None = None, target: str | None = None
) -> list[ConnectionCheck]:
    """Each connection of the project holding ``path`` (a pipelines folder or file),
    connected to, asked its version and checked read-only; raises ``ConfigError``
    when ``eil.toml`` itself is invalid."""
    return check_connections(project_root_for(path), env=env, target=target)


def selected_target(path: Path, target: str) -> contextlib.AbstractContextManager[None]:
    """Check that ``eil.toml`` of the project holding ``path`` defines ``target``, then give
    a context in which ``EIL_TARGET`` is ``target`` (``--target NAME`` on the commands).

    An unknown target raises ``ConfigError`` naming ``eil.toml`` and the targets it
    defines; no ``eil.toml`` at all is a ``UsageError``.  The variable is set in this
    process's environment, where every reader of ``eil.toml`` (the runs, the
    scheduler, ``validate --deep``, chart processes) looks, and restored afterwards.
    """
    root = project_root_for(path)
    if not (root / PROJECT_FILE).is_file():
        raise UsageError(
            f"eil-run: --target {target}: there is no {root / PROJECT_FILE} to define targets in"
        )
    load_project_settings(root, target=target)
    return _environment("EIL_TARGET", target)


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
