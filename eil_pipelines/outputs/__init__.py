"""Writing report files: atomic writes, dated paths, ``latest`` copies."""

from .atomic import atomic_write_bytes, atomic_write_text
from .report_files import ReportFiles, write_report

__all__ = ["ReportFiles", "atomic_write_bytes", "atomic_write_text", "write_report"]
