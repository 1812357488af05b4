"""A cache of parsed pipeline files, so ``validate``, ``list`` and reloads skip the TOML parser.

Parsing is most of what loading a pipeline costs.  A parsed file is kept
under its key, the file's (path, inode, mtime_ns, ctime_ns, size): a file
whose key differs is parsed again, so an edit, a save-by-rename or a
``touch`` invalidates its entry.  Entries live in the process (the scheduler
reloads only what changed) and in one file per project,
``reports/.eil/cache/parsed.pickle``, so the next command starts warm.

Rules, each with a test in ``tests/spec/test_cache.py``:

* The cache file is read only when it exists and is whole: a damaged,
  truncated or foreign file is ignored (and replaced at the next write),
  never an error.  It is unpickled with a loader that accepts the plain
  types TOML produces and nothing else, so a planted file cannot run code.
* It is written atomically (a temporary file, then a rename) and only where
  the reports folder exists already: ``validate`` on a fresh checkout writes
  nothing.  ``$EIL_CACHE_DIR`` names another folder; set empty, it turns the
  file off.  A folder that cannot be written is silently skipped.
* A file modified less than :data:`RACY_NS` ago is not cached: its times may
  not change at its next write within the same clock tick.
* Files that fail to parse are never cached: their message is rebuilt each time.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import pickle
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

#: A file changed less than this long ago is parsed but not cached.
RACY_NS = 2_000_000_000

#: The cache file's name inside the cache folder.
CACHE_FILE = "parsed.pickle"

#: Changes when the cached form changes, or with the Python version (tomllib's output).
_FORMAT = ("eil-parsed", 1, sys.version_info[:2])

#: The most entries kept in the process: about what 20,000 pipeline files hold.
_MAX_ENTRIES = 20_000

#: (inode, mtime_ns, ctime_ns, size) of a file.
Key = tuple[int, int, int, int]

_SAFE = {
    ("datetime", "datetime"),
    ("datetime", "date"),
    ("datetime", "time"),
    ("datetime", "timedelta"),
    ("datetime", "timezone"),
}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles the types TOML produces (dicts, lists, strings, numbers, dates) only."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE:
            return getattr(datetime, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in the cache")


def _safe_loads(data: bytes) -> Any:
    return _SafeUnpickler(io.BytesIO(data)).load()


def file_key(path: Path | str) -> Key | None:
    """The cache key of a file now, or ``None`` when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


class ParseCache:
    """Parsed TOML files by path and key, in memory and (optionally) in one file."""

    def __init__(self, *, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.clock_ns = clock_ns
        self._entries: dict[str, tuple[Key, bytes]] = {}
        self._read_from: set[str] = set()
        self._written: dict[str, dict[str, tuple[Key, bytes]]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        """Files served from the cache (for tests and benchmarks)."""
        self.misses = 0
        """Files parsed (for tests and benchmarks)."""

    def parsed(self, file: Path, parse: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
        """``file``'s parsed contents: from the cache when its key matches, else ``parse(text)``.

        Returns a fresh copy each time (callers change it in place).  Errors
        that reading or ``parse`` raise pass through, and nothing is cached.
        """
        path = str(file)
        key = file_key(path)
        with self._lock:
            entry = self._entries.get(path)
        if key is not None and entry is not None and entry[0] == key:
            try:
                raw = _safe_loads(entry[1])
            except Exception:  # a damaged entry from the cache file: parse instead
                pass
            else:
                if isinstance(raw, dict):
                    self.hits += 1
                    return raw
        self.misses += 1
        raw = parse(file.read_text(encoding="utf-8-sig"))
        if key is not None and key[1] <= self.clock_ns() - RACY_NS and file_key(path) == key:
            data = pickle.dumps(raw, protocol=pickle.HIGHEST_PROTOCOL)
            with self._lock:
                if len(self._entries) >= _MAX_ENTRIES:
                    self._entries.clear()
                self._entries[path] = (key, data)
        return raw

    # -- the cache file -------------------------------------------------------------

    def read_file(self, folder: Path | None) -> None:
        """Add the entries of ``folder``'s cache file (once per folder; damage is ignored)."""
        if folder is None:
            return
        cache_file = str(folder / CACHE_FILE)
        with self._lock:
            if cache_file in self._read_from:
                return
            self._read_from.add(cache_file)
        try:
            with open(cache_file, "rb") as handle:
                stored = _safe_loads(handle.read())
        except Exception:  # missing, damaged, truncated or foreign: start cold
            return
        if not (isinstance(stored, dict) and stored.get("format") == list(_FORMAT)):
            return
        entries = stored.get("entries")
        if not isinstance(entries, dict):
            return
        good: dict[str, tuple[Key, bytes]] = {}
        for path, entry in entries.items():
            if (
                isinstance(path, str)
                and isinstance(entry, tuple)
                and len(entry) == 2
                and isinstance(entry[0], tuple)
                and isinstance(entry[1], bytes)
            ):
                good[path] = (entry[0], entry[1])
        with self._lock:
            for path, entry in good.items():
                self._entries.setdefault(path, entry)
            self._written[cache_file] = good

    def write_file(self, folder: Path | None, files: Iterable[Path]) -> None:
        """Write the entries of ``files`` to ``folder``'s cache file, when they changed.

        Atomic: readers see the old file or the new one.  Any OS error (a
        read-only or full disk) leaves the cache file as it was.
        """
        if folder is None:
            return
        cache_file = str(folder / CACHE_FILE)
        with self._lock:
            wanted = {str(f): self._entries[str(f)] for f in files if str(f) in self._entries}
            if self._written.get(cache_file) == wanted:
                return
        data = pickle.dumps(
            {"format": list(_FORMAT), "entries": wanted}, protocol=pickle.HIGHEST_PROTOCOL
        )
        temp = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=".parsed-", dir=folder)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temp, cache_file)
            temp = None
        except OSError:
            return  # the cache is an optimisation: never an error
        finally:
            if temp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
        with self._lock:
            self._written[cache_file] = wanted


def cache_folder(root: Path) -> Path | None:
    """Where a project's cache file goes: ``$EIL_CACHE_DIR``, else ``reports/.eil/cache``
    when the reports folder exists; ``None`` (no file) when neither applies."""
    override = os.environ.get("EIL_CACHE_DIR")
    if override is not None:
        return Path(override) if override else None
    reports = root / "reports"
    return reports / ".eil" / "cache" if reports.is_dir() else None


#: The process's cache, shared by every load.
PARSED = ParseCache()
