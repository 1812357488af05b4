"""Running pipelines: the run context, one run, metrics and insights, batches.

Names are imported lazily: ``eil-run validate`` needs the run context but
not the run machinery (outputs, charts), and pays only for what it uses.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RunContext": "eil_pipelines.run.context",
    "make_context": "eil_pipelines.run.context",
    "RunResult": "eil_pipelines.run.pipeline",
    "run_pipeline": "eil_pipelines.run.pipeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'eil_pipelines.run' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
