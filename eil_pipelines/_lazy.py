"""Deferred imports of heavy libraries.

``eil-run --help`` and ``eil-run validate`` must not pay about a second for
pandas; modules they load use a :class:`LazyModule` in its place, which
imports the real module on first attribute access (first real use).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands in for a module until an attribute of it is first used."""

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)
