"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from pathlib import Path


def _read_umask() -> int:
    # os.umask can only be read by setting it; do it once, at import, before threads start.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Reports are published files: readable like any file this user creates (mkstemp's 0600 is not).
FILE_MODE = 0o666 & ~_read_umask()


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started, in clock ticks since boot (Linux), with its state.

    ``None`` when it cannot be read (no ``/proc``, or no such process).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and ")": fields 3… follow its last ")".
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20:
        return None
    state, start = fields[0], fields[19]
    return "zombie" if state in ("Z", "X") else start


def _owner_token() -> str:
    """This process as ``<pid>-<start time>``: what names its temporary folders."""
    pid = os.getpid()
    return f"{pid}-{_start_time(pid) or 0}"


#: Names the staging folders and temporary files of this process (:func:`owner_is_alive`).
OWNER = _owner_token()


def owner_is_alive(token: str) -> bool:
    """Whether the process a ``<pid>-<start time>`` token names is still running.

    A live process is never taken for dead: when in doubt (another user's
    process, no ``/proc``) the answer is "alive".  A pid reused by a newer
    process does not count, because its start time differs.
    """
    pid_text, _, start = token.partition("-")
    if not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if token == OWNER:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    current = _start_time(pid)
    if current is None:
        return True  # no /proc to tell a reused pid apart: keep the files
    return current == start


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename.

    A reader sees the old file or the new one, whole, either way.  With
    ``durable`` the temp file is flushed to disk before the rename, so a crash
    of the machine also leaves the previous file whole; files made again from
    others (the site's pages and index) skip that ``fsync``.  On any error the
    temp file is removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # The owner in the name lets the next start remove a temp file a killed process left.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{OWNER}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            write_all(handle, data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_new_file(path: Path, data: bytes) -> Path:
    """Create ``path`` with ``data``, flushed to disk; it must not exist yet.

    For files in a private staging folder, which are renamed into place once
    all are complete: they need no temp file and rename of their own.  On any
    error the partial file is removed.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            write_all(handle, data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise
    return path


def atomic_link(source: Path, path: Path, data: bytes) -> Path:
    """Make ``path`` hold the bytes of ``source`` (which are ``data``) atomically: a hard
    link to ``source`` renamed over ``path``, so nothing is written or flushed again;
    where links cannot be made, :func:`atomic_write_bytes` of ``data``."""
    tmp = path.with_name(f".{path.name}.{OWNER}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        os.link(source, tmp)
    except OSError:
        return atomic_write_bytes(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_all(handle, data: bytes) -> None:
    """Write ``data`` to an open binary file (the one place tests inject a write failure)."""
    handle.write(data)


def atomic_write_text(path: Path, text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))
