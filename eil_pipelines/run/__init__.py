"""Running pipelines: the run context, one run, metrics and insights, batches.

Names are imported lazily: ``eil-run validate`` needs the run context but
not the run machinery (outputs, charts), and pays only for what it uses.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "RunContext": "eil_pipelines.run.context",
    "make_context": "eil_pipelines.run.context",
    "RunResult": "eil_pipelines.run.pipeline",
    "run_pipeline": "eil_pipelines.run.pipeline",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports("eil_pipelines.run", _EXPORTS, globals())
