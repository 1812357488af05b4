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


def lazy_exports(package: str, exports: dict[str, str], namespace: dict[str, Any]) -> Any:
    """A module ``__getattr__`` that imports each exported name from its module on first use.

    ``exports`` maps a name to the module defining it; the value is cached in
    ``namespace`` (the package's globals) so the next access is a plain lookup.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
