"""Laying out a run's files: ``reports/<pipeline>/<stamp>.md|.html``, charts, ``latest``.

Everything is first written into a staging folder beside the reports; only
when every file is complete are they renamed into place.  A failure at any
point before that leaves the reports folder exactly as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OutputError
from .atomic import atomic_write_bytes, atomic_write_text


@dataclass
class ReportFiles:
    """The rendered contents of one run, before they are written."""

    stamp: str
    """The file stamp, such as ``2026-11-27``."""
    documents: dict[str, str] = field(default_factory=dict)
    """Rendered reports by format (``md``, ``html``)."""
    images: dict[str, bytes] = field(default_factory=dict)
    """Chart images by file name (``revenue.png``), stored in :meth:`charts_dir_name`."""

    @property
    def charts_dir_name(self) -> str:
        """The folder beside the report that holds its images."""
        return charts_dir_name(self.stamp)


def charts_dir_name(stamp: str) -> str:
    """``2026-11-27`` → ``2026-11-27_charts``."""
    return f"{stamp}_charts"


def write_report(pipeline_dir: Path, files: ReportFiles) -> list[Path]:
    """Write a run's files into ``pipeline_dir`` atomically; return the paths written.

    Order: images, then each dated report, then the ``latest`` copies, so a
    report never links to an image that is not there yet.
    """
    try:
        pipeline_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create the reports folder {pipeline_dir}: {exc.strerror}"
        ) from None
    staging = pipeline_dir / f".staging-{uuid.uuid4().hex}"
    written: list[Path] = []
    try:
        staging.mkdir()
        staged_docs = {}
        if files.images:
            staged_charts = staging / files.charts_dir_name
            for name, data in sorted(files.images.items()):
                atomic_write_bytes(staged_charts / name, data)
        for fmt, text in files.documents.items():
            staged_docs[fmt] = atomic_write_text(staging / f"{files.stamp}.{fmt}", text)

        # Commit: everything is complete on disk; from here on only renames.
        if files.images:
            target = pipeline_dir / files.charts_dir_name
            _replace_dir(staging / files.charts_dir_name, target)
            written.extend(target / name for name in sorted(files.images))
        for fmt, staged in staged_docs.items():
            target = pipeline_dir / f"{files.stamp}.{fmt}"
            os.replace(staged, target)
            written.append(target)
        for fmt, text in files.documents.items():
            written.append(atomic_write_text(pipeline_dir / f"latest.{fmt}", text))
    except OSError as exc:
        raise OutputError(f"cannot write the report into {pipeline_dir}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


def _replace_dir(new: Path, target: Path) -> None:
    if not target.exists():
        os.replace(new, target)
        return
    # A folder cannot be renamed over a non-empty one: move the old aside first,
    # then swap, then delete it, so the target is never missing for long.
    trash = target.with_name(f".old-{uuid.uuid4().hex}")
    os.replace(target, trash)
    try:
        os.replace(new, target)
    except OSError:
        with contextlib.suppress(OSError):
            os.replace(trash, target)
        raise
    shutil.rmtree(trash, ignore_errors=True)
