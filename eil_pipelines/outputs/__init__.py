"""Writing report files: atomic writes, dated paths, ``latest`` copies, data exports,
the run manifest, retention, the report stamp and the report site.

Names are imported lazily: ``eil-run validate`` needs the report stamp (through
the run context) but not the writers, and pays only for what it uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .atomic import atomic_write_bytes, atomic_write_text
    from .report_files import ReportFiles, owned_files, write_report

_EXPORTS = {
    "atomic_write_bytes": "eil_pipelines.outputs.atomic",
    "atomic_write_text": "eil_pipelines.outputs.atomic",
    "ReportFiles": "eil_pipelines.outputs.report_files",
    "owned_files": "eil_pipelines.outputs.report_files",
    "write_report": "eil_pipelines.outputs.report_files",
}

__all__ = ["ReportFiles", "atomic_write_bytes", "atomic_write_text", "owned_files", "write_report"]


__getattr__ = lazy_exports("eil_pipelines.outputs", _EXPORTS, globals())
