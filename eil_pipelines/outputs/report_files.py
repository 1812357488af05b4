"""Laying out a run's files: ``reports/<pipeline>/<stamp>.md|.html|.pdf``, charts,
data exports, the manifest ``<stamp>.json``, and the ``latest`` copies.

Everything is first written into a staging folder beside the reports; only
when every file is complete are they renamed into place.  A failure at any
point before that leaves the reports folder exactly as it was.

The names this module writes are the only ones retention ever deletes
(:func:`owned_files`): ``<stamp>.md|html|pdf|json``, ``<stamp>_charts/*.png``
and ``<stamp>_data/*.csv|xlsx|parquet``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OutputError
from .atomic import atomic_write_bytes
from .exports import data_dir_name
from .manifest import manifest_bytes, sha256_bytes
from .stamps import is_stamp

#: Report formats, in the order they are written (the PDF is made from the HTML).
DOCUMENT_FORMATS = ("md", "html", "pdf")

# The files a report owns: <stamp>.<ext> documents, and these files in <stamp>_<kind>/.
_DOCUMENT_SUFFIXES = frozenset({"md", "html", "pdf", "json"})
_FOLDER_FILES = {"charts": (".png",), "data": (".csv", ".xlsx", ".parquet")}


@dataclass
class ReportFiles:
    """The rendered contents of one run, before they are written."""

    stamp: str
    """The file stamp, such as ``2026-11-27``."""
    documents: dict[str, str | bytes] = field(default_factory=dict)
    """Rendered reports by format: ``md`` and ``html`` text, ``pdf`` bytes."""
    images: dict[str, bytes] = field(default_factory=dict)
    """Chart images by file name (``revenue.png``), stored in :meth:`charts_dir_name`."""
    data: dict[str, bytes] = field(default_factory=dict)
    """Data exports by file name (``orders.csv``), stored in :meth:`data_dir_name`."""
    manifest: dict[str, Any] | None = None
    """The run manifest; the writer fills in ``files`` and writes it as ``<stamp>.json``."""

    @property
    def charts_dir_name(self) -> str:
        """The folder beside the report that holds its images."""
        return charts_dir_name(self.stamp)

    @property
    def data_dir_name(self) -> str:
        """The folder beside the report that holds its data exports."""
        return data_dir_name(self.stamp)


def charts_dir_name(stamp: str) -> str:
    """``2026-11-27`` → ``2026-11-27_charts``."""
    return f"{stamp}_charts"


def write_report(pipeline_dir: Path, files: ReportFiles) -> list[Path]:
    """Write a run's files into ``pipeline_dir`` atomically; return the paths written.

    Order: images and data exports, then each dated report, then the
    manifest, then the ``latest`` copies, so a report never links to an
    image that is not there yet and a manifest never names a missing file.
    Files of the same stamp that an earlier run wrote and this one does not
    (a format or export since removed) are deleted, so the folder matches
    the manifest.
    """
    try:
        pipeline_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create the reports folder {pipeline_dir}: {exc.strerror}"
        ) from None
    staging = pipeline_dir / f".staging-{uuid.uuid4().hex}"
    written: list[Path] = []
    folders = [(files.charts_dir_name, files.images), (files.data_dir_name, files.data)]
    documents = {
        fmt: _as_bytes(files.documents[fmt]) for fmt in DOCUMENT_FORMATS if fmt in files.documents
    }
    try:
        staging.mkdir()
        records = []
        for folder, contents in folders:
            for name, data in sorted(contents.items()):
                atomic_write_bytes(staging / folder / name, data)
                records.append(_record(f"{folder}/{name}", data))
        for fmt, data in documents.items():
            atomic_write_bytes(staging / f"{files.stamp}.{fmt}", data)
            records.append(_record(f"{files.stamp}.{fmt}", data))
        manifest_name = f"{files.stamp}.json"
        if files.manifest is not None:
            manifest = {**files.manifest, "files": records}
            atomic_write_bytes(staging / manifest_name, manifest_bytes(manifest))

        # Commit: everything is complete on disk; from here on only renames.
        for folder, contents in folders:
            if contents:
                target = pipeline_dir / folder
                _replace_dir(staging / folder, target)
                written.extend(target / name for name in sorted(contents))
        for fmt in documents:
            target = pipeline_dir / f"{files.stamp}.{fmt}"
            os.replace(staging / target.name, target)
            written.append(target)
        if files.manifest is not None:
            os.replace(staging / manifest_name, pipeline_dir / manifest_name)
            written.append(pipeline_dir / manifest_name)
        newest = _newest_stamps(pipeline_dir)
        for fmt, data in documents.items():
            # A backfilled or re-rendered past report must not replace a newer "latest".
            if files.stamp >= newest.get(fmt, ""):
                written.append(atomic_write_bytes(pipeline_dir / f"latest.{fmt}", data))
        _remove_stale(pipeline_dir, files.stamp, set(written))
    except OSError as exc:
        raise OutputError(f"cannot write the report into {pipeline_dir}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


def _newest_stamps(pipeline_dir: Path) -> dict[str, str]:
    """The newest stamp of each dated document format in the folder (stamps sort by time)."""
    newest: dict[str, str] = {}
    for path in pipeline_dir.iterdir():
        stamp, dot, ext = path.name.rpartition(".")
        if dot and ext.isascii() and ext.isalpha() and ext.islower() and is_stamp(stamp):
            newest[ext] = max(newest.get(ext, ""), stamp)
    return newest


def _as_bytes(document: str | bytes) -> bytes:
    return document.encode("utf-8") if isinstance(document, str) else document


def _record(path: str, data: bytes) -> dict[str, Any]:
    return {"path": path, "sha256": sha256_bytes(data), "bytes": len(data)}


def _remove_stale(pipeline_dir: Path, stamp: str, written: set[Path]) -> None:
    """Delete this stamp's files from an earlier run that this run did not write."""
    for path in owned_files(pipeline_dir).get(stamp, []):
        if path not in written:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    for kind in _FOLDER_FILES:
        with contextlib.suppress(OSError):  # not there, or holds a file we did not write
            (pipeline_dir / f"{stamp}_{kind}").rmdir()


def owned_files(pipeline_dir: Path) -> dict[str, list[Path]]:
    """The files in ``pipeline_dir`` that reports write, by stamp.

    Only names this module produces count: ``<stamp>.md|html|pdf|json`` and
    the ``.png`` in ``<stamp>_charts/`` and ``.csv|.xlsx|.parquet`` in
    ``<stamp>_data/``.  Anything else (a README, notes, a file dropped into a
    charts folder by hand) is never listed, so never deleted.
    """
    found: dict[str, list[Path]] = {}
    try:
        entries = sorted(os.scandir(pipeline_dir), key=lambda e: e.name)
    except OSError:
        return found
    for entry in entries:
        stamp, dot, ext = entry.name.rpartition(".")
        if dot and ext in _DOCUMENT_SUFFIXES and is_stamp(stamp):
            if entry.is_file(follow_symlinks=False):
                found.setdefault(stamp, []).append(Path(entry.path))
            continue
        stamp, underscore, kind = entry.name.rpartition("_")
        if underscore and kind in _FOLDER_FILES and is_stamp(stamp):
            if not entry.is_dir(follow_symlinks=False):
                continue
            suffixes = _FOLDER_FILES[kind]
            with contextlib.suppress(OSError):
                for inner in sorted(os.scandir(entry.path), key=lambda e: e.name):
                    if inner.name.endswith(suffixes) and inner.is_file(follow_symlinks=False):
                        found.setdefault(stamp, []).append(Path(inner.path))
    return found


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
