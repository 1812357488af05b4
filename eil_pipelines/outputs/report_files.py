"""Laying out a run's files: ``reports/<pipeline>/<stamp>.md|.html|.pdf``, charts,
data exports, the manifest ``<stamp>.json``, and the ``latest`` copies.

Everything is first written into a staging folder beside the reports; only
when every file is complete are they renamed into place.  A failure at any
point before that leaves the reports folder exactly as it was.

The names this module writes are the only ones retention ever deletes
(:func:`owned_files`): ``<stamp>.md|html|pdf|json``, ``<stamp>_charts/*.png``
and ``<stamp>_data/*.csv|xlsx|parquet``.

Staging folders, swapped-out folders and temp files carry their process's
``<pid>-<start time>`` (:data:`~.atomic.OWNER`).  A process killed mid-write
(``kill -9``) leaves them behind; the first write of a process into a
pipeline folder (the next ``--once``, the restarted scheduler's first run of
that pipeline) removes those whose process is dead (:func:`remove_leftovers`),
and never another live process's.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CouldNotRun, OutputError
from .atomic import OWNER, atomic_link, owner_is_alive, write_new_file
from .exports import data_dir_name
from .manifest import manifest_bytes, sha256_bytes
from .site_index import newest_indexed_stamp
from .stamps import is_stamp

#: Report formats, in the order they are written (the PDF is made from the HTML).
DOCUMENT_FORMATS = ("md", "html", "pdf")

# The files a report owns: <stamp>.<ext> documents, and these files in <stamp>_<kind>/.
_DOCUMENT_SUFFIXES = frozenset({"md", "html", "pdf", "json"})
_FOLDER_FILES = {"charts": (".png",), "data": (".csv", ".xlsx", ".parquet")}


class WriteRefused(OutputError, CouldNotRun):
    """The machine refused to write a report: a full disk, a read-only folder,
    no permission, a file where a folder must be.  Every file is written
    whole or not at all, so no report is half-written and the earlier ones
    stay.  A "could not run" kind (exit 3)."""


#: What each refusal means, in words a person acts on.
_REFUSALS = {
    getattr(errno, name): meaning
    for name, meaning in (
        ("ENOSPC", "the disk is full"),
        ("EDQUOT", "the disk quota is used up"),
        ("EFBIG", "the file is larger than this process may write (the disk is full for it)"),
        ("EROFS", "the file system is read-only"),
        ("EACCES", "no permission to write there"),
        ("EPERM", "no permission to write there"),
        ("ENOTDIR", "a file stands where a folder must be"),
        ("EEXIST", "a file stands where a folder must be"),
    )
    if hasattr(errno, name)
}


def _refused(action: str, exc: OSError) -> OutputError:
    """An :class:`OSError` of a report write as a message; a refusal by the machine
    as :class:`WriteRefused`."""
    meaning = _REFUSALS.get(exc.errno or 0)
    if meaning is None:
        return OutputError(f"{action}: {exc.strerror or exc}")
    cause = f"{meaning} ({exc.strerror})" if exc.strerror else meaning
    return WriteRefused(f"{action}: {cause}; no file was left half-written")


def check_state_folder(reports_dir: Path) -> None:
    """Refuse to write when ``reports/.eil`` (the run ledger, status records, the
    site's state) exists but is not a folder: every run would then publish
    nothing, and say so only in a log line."""
    state = reports_dir / ".eil"
    if state.exists() and not state.is_dir():
        raise WriteRefused(
            f"{state} is a file, but it must be a folder (it holds the run ledger and "
            "the report site's state): move the file away"
        )


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
    check_state_folder(pipeline_dir.parent)
    try:
        pipeline_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _refused(f"cannot create the reports folder {pipeline_dir}", exc) from None
    _remove_leftovers_once(pipeline_dir)
    staging = pipeline_dir / f".staging-{OWNER}-{uuid.uuid4().hex}"
    written: list[Path] = []
    folders = [(files.charts_dir_name, files.images), (files.data_dir_name, files.data)]
    documents = {
        fmt: _as_bytes(files.documents[fmt]) for fmt in DOCUMENT_FORMATS if fmt in files.documents
    }
    try:
        staging.mkdir()
        records = []
        # The staging folder is this run's alone: each file is written once, in
        # place, and flushed; the renames below publish them.
        for folder, contents in folders:
            if contents:
                (staging / folder).mkdir()
            for name, data in sorted(contents.items()):
                write_new_file(staging / folder / name, data)
                records.append(_record(f"{folder}/{name}", data))
        for fmt, data in documents.items():
            write_new_file(staging / f"{files.stamp}.{fmt}", data)
            records.append(_record(f"{files.stamp}.{fmt}", data))
        manifest_name = f"{files.stamp}.json"
        if files.manifest is not None:
            manifest = {**files.manifest, "files": records}
            write_new_file(staging / manifest_name, manifest_bytes(manifest))

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
        newest = _newest_stamps(pipeline_dir, files.stamp)
        for fmt, data in documents.items():
            # A backfilled or re-rendered past report must not replace a newer "latest".
            if files.stamp >= newest.get(fmt, ""):
                # Another name for the dated report: no second copy to write and flush.
                dated = pipeline_dir / f"{files.stamp}.{fmt}"
                written.append(atomic_link(dated, pipeline_dir / f"latest.{fmt}", data))
        _remove_stale(pipeline_dir, files.stamp, set(written))
    except OSError as exc:
        raise _refused(f"cannot write the report into {pipeline_dir}", exc) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


# What a killed process leaves: its staging folder, a folder swapped out by
# _replace_dir, a temp file of atomic_write_bytes; each names its owner.
_LEFTOVER = re.compile(
    r"^(?:\.staging-(?P<dir_owner>\d+-\d+)-[0-9a-f]{32}"
    r"|\.old-(?P<old_owner>\d+-\d+)-[0-9a-f]{32}\.(?P<target>.+)"
    r"|\..+\.(?P<file_owner>\d+-\d+)\.[A-Za-z0-9_]+\.tmp)$"
)
# A staging folder of the version before owners were named: its process is
# long gone once it is this old (a run that still writes after an hour has
# timed out).
_UNOWNED_STAGING = re.compile(r"^\.(?:staging|old)-[0-9a-f]{32}$")
_UNOWNED_AGE_S = 3600.0


def remove_leftovers(pipeline_dir: Path, *, now: float | None = None) -> list[Path]:
    """Delete the staging folders and temp files of dead processes in ``pipeline_dir``.

    Only names this module and :mod:`.atomic` make are considered, and only
    when their owner process is dead (or, for unowned staging folders of the
    previous version, when older than an hour).  Returns what was removed.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(pipeline_dir))
    except OSError:
        return removed
    clock = time.time() if now is None else now
    for entry in entries:
        if not entry.name.startswith("."):
            continue
        match = _LEFTOVER.match(entry.name)
        if match:
            owner = (
                match.group("dir_owner") or match.group("old_owner") or match.group("file_owner")
            )
            if owner_is_alive(owner):
                continue
            target = match.group("target")
            if target and _restore(Path(entry.path), pipeline_dir / target):
                removed.append(Path(entry.path))
                continue
        elif _UNOWNED_STAGING.match(entry.name):
            with contextlib.suppress(OSError):
                if clock - entry.stat(follow_symlinks=False).st_mtime < _UNOWNED_AGE_S:
                    continue
        else:
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
        removed.append(path)
    return removed


# Folders this process has swept: leftovers come from processes that died before
# it started, so one look per folder is enough, and a run's cost does not grow by
# another scan of a folder of 20,000 reports.
_swept: set[Path] = set()
_swept_lock = threading.Lock()


def _remove_leftovers_once(pipeline_dir: Path) -> None:
    with _swept_lock:
        if pipeline_dir in _swept:
            return
        _swept.add(pipeline_dir)
    remove_leftovers(pipeline_dir)


def _restore(trash: Path, target: Path) -> bool:
    """Put a folder swapped out by a killed :func:`_replace_dir` back, when its place is empty."""
    stamp, _, kind = target.name.rpartition("_")
    if target.exists() or kind not in _FOLDER_FILES or not is_stamp(stamp):
        return False
    try:
        os.replace(trash, target)
    except OSError:
        return False
    return True


def _newest_stamps(pipeline_dir: Path, stamp: str) -> dict[str, str]:
    """The newest stamp of each dated document format in the folder (stamps sort by time).

    When the report site's index (:mod:`.site_index`) knows no report newer than
    ``stamp``, the run's own report is the newest and the folder is not listed:
    listing a folder of 20,000 reports would cost more than the rest of the run.
    """
    indexed = newest_indexed_stamp(pipeline_dir.parent, pipeline_dir.name)
    if indexed is not None and indexed <= stamp:
        return {}
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
    for path in stamp_files(pipeline_dir, stamp):
        if path not in written:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    for kind in _FOLDER_FILES:
        with contextlib.suppress(OSError):  # not there, or holds a file we did not write
            (pipeline_dir / f"{stamp}_{kind}").rmdir()


def stamp_files(pipeline_dir: Path, stamp: str) -> list[Path]:
    """The files of ``pipeline_dir`` that the report ``stamp`` owns (what
    :func:`owned_files` lists for it), found without listing the folder."""
    found = []
    for suffix in sorted(_DOCUMENT_SUFFIXES):
        path = pipeline_dir / f"{stamp}.{suffix}"
        with contextlib.suppress(OSError):
            if stat.S_ISREG(os.stat(path, follow_symlinks=False).st_mode):
                found.append(path)
    for kind, suffixes in _FOLDER_FILES.items():
        folder = pipeline_dir / f"{stamp}_{kind}"
        with contextlib.suppress(OSError):
            if not stat.S_ISDIR(os.stat(folder, follow_symlinks=False).st_mode):
                continue
            for inner in sorted(os.scandir(folder), key=lambda e: e.name):
                if inner.name.endswith(suffixes) and inner.is_file(follow_symlinks=False):
                    found.append(Path(inner.path))
    return found


def report_stamps(pipeline_dir: Path) -> list[str]:
    """The stamps that own files in ``pipeline_dir`` (the keys of :func:`owned_files`),
    sorted, from one listing of the folder: a report's own folders are looked into
    only when it has no document."""
    try:
        with os.scandir(pipeline_dir) as entries:
            names = [(e.name, e) for e in entries]
    except OSError:
        return []
    stamps: set[str] = set()
    folders: set[str] = set()
    for name, entry in names:
        stamp, dot, ext = name.rpartition(".")
        if dot and ext in _DOCUMENT_SUFFIXES and is_stamp(stamp):
            if entry.is_file(follow_symlinks=False):
                stamps.add(stamp)
            continue
        stamp, underscore, kind = name.rpartition("_")
        if underscore and kind in _FOLDER_FILES and is_stamp(stamp):
            folders.add(stamp)
    for stamp in folders - stamps:
        if stamp_files(pipeline_dir, stamp):
            stamps.add(stamp)
    return sorted(stamps)


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
    # Named with its owner and target, so a run killed between the two renames
    # leaves a folder the next run puts back (remove_leftovers).
    trash = target.with_name(f".old-{OWNER}-{uuid.uuid4().hex}.{target.name}")
    os.replace(target, trash)
    try:
        os.replace(new, target)
    except OSError:
        with contextlib.suppress(OSError):
            os.replace(trash, target)
        raise
    shutil.rmtree(trash, ignore_errors=True)
