"""Writing report files: atomic writes, dated paths, ``latest`` copies, data exports,
the run manifest, retention and the report site."""

from .atomic import atomic_write_bytes, atomic_write_text
from .report_files import ReportFiles, owned_files, write_report

__all__ = ["ReportFiles", "atomic_write_bytes", "atomic_write_text", "owned_files", "write_report"]
