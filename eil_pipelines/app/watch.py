"""The scheduler's file watcher: notices a pipeline, SQL or template file that changed.

The service polls it every ``reload_interval`` seconds (see
:mod:`eil_pipelines.app.service`), so an idle poll must cost little, whatever
the number of files.  A poll is one ``os.stat`` per watched path, on paths
built once per reload, with no ``resolve()``, no glob and no reading:

* the pipelines folder itself: a file added, removed or renamed into it
  (an editor that saves by writing a new file and renaming it over the old
  one) changes the folder's modification time;
* each pipeline file and each SQL and template file a pipeline names,
  whether the pipeline is valid or not (fixing the SQL file of a broken
  pipeline must reload it): an edit in place changes only the file's own
  times.  A file that is shared by several pipelines is watched once.

The signature of a path is (inode, mtime, ctime, size), or ``None`` when it
does not exist, so a file that appears where a pipeline expects one counts
as a change too.

Timestamps are coarse (a kernel tick, or 2 s on some file systems): a file
written twice within one tick keeps its times.  Like git's "racy" entries,
a path whose time is within :data:`RACY_NS` of the moment the baseline was
taken is also compared by content (a folder by its list of ``*.toml``
names, a file by a digest) until it is older than that.

The baseline is taken *before* the files are read (:meth:`FileWatcher.look`)
and kept after they are (:meth:`FileWatcher.settle`): a file saved while a
reload reads the folder differs from it, and the next poll reloads again.

On Linux, inotify (through the C library, no extra package) watches the
folders that hold the watched paths, so an idle poll is one ``read`` that
finds no event: the stat pass runs only after an event, after a reload, while
a path is racy, and every :data:`FULL_CHECK_EVERY` polls, which catches what
inotify cannot see (a change made by another machine on a network file
system).  Where inotify is missing or refuses (another system, the watch
limit reached) or ``EIL_WATCH=poll`` is set, every poll is a stat pass.
Measured in ``benchmarks/bench_watch_validate.py``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import logging
import os
import struct
import threading
import time
import tomllib
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..spec.loader import Pipeline

#: A path's (inode, mtime_ns, ctime_ns, size), or ``None`` when it does not exist.
Signature = tuple[int, int, int, int] | None

#: A path changed less than this long before a look is also compared by content.
RACY_NS = 2_000_000_000

#: Stands for "not known": never equal to a signature, so the next poll reloads.
_UNKNOWN: Any = ("unknown",)

#: With inotify, a full stat pass every this many polls anyway (a minute at 1 s).
FULL_CHECK_EVERY = 60

log = logging.getLogger("eil_pipelines.scheduler")

# <sys/inotify.h>: what changes a folder's entries or a file's content or times.
_IN_MODIFY, _IN_ATTRIB, _IN_CLOSE_WRITE = 0x2, 0x4, 0x8
_IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x40, 0x80, 0x100, 0x200
_IN_DELETE_SELF, _IN_MOVE_SELF = 0x400, 0x800
_IN_ONLYDIR = 0x01000000
_IN_NONBLOCK, _IN_CLOEXEC = 0o4000, 0o2000000
_MASK = (
    _IN_MODIFY
    | _IN_ATTRIB
    | _IN_CLOSE_WRITE
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_CREATE
    | _IN_DELETE
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
    | _IN_ONLYDIR
)


class _Inotify:
    """Folder watches on one non-blocking inotify descriptor; raises OSError where unavailable."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("c")
        libc = ctypes.CDLL(name, use_errno=True)
        self._add = libc.inotify_add_watch
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self._rm = libc.inotify_rm_watch
        self._rm.argtypes = [ctypes.c_int, ctypes.c_int]
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.fd: int = fd
        self._watches: dict[str, int] = {}
        # A watcher dropped without close() (a service never stopped) frees its descriptor.
        self._closer = weakref.finalize(self, os.close, fd)

    def watch(self, folders: set[str]) -> None:
        """Watch exactly ``folders`` (those that exist); raise OSError when the kernel refuses."""
        for folder in list(self._watches):
            if folder not in folders:
                self._rm(self.fd, self._watches.pop(folder))
        for folder in folders - set(self._watches):
            wd = self._add(self.fd, os.fsencode(folder), _MASK)
            if wd < 0:
                code = ctypes.get_errno()
                if code in (errno.ENOENT, errno.ENOTDIR):
                    continue  # a missing folder: its paths' signatures say None
                raise OSError(code, f"inotify_add_watch {folder}")
            self._watches[folder] = wd

    def events(self) -> bool:
        """True when any event came since the last call (the queue is drained)."""
        seen = False
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return seen
            if not data:
                return seen
            seen = seen or len(data) >= struct.calcsize("iIII")

    def close(self) -> None:
        """Release the descriptor (and every watch with it)."""
        self._closer()


def signature(path: str) -> Signature:
    """The (inode, mtime_ns, ctime_ns, size) of ``path``, or ``None`` when it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


def _content(path: str, is_folder: bool) -> object:
    """What a racy path holds: a folder's ``*.toml`` names, or a file's digest."""
    try:
        if is_folder:
            with os.scandir(path) as entries:
                return frozenset(e.name for e in entries if e.name.endswith(".toml"))
        with open(path, "rb") as handle:
            return hashlib.blake2b(handle.read(), digest_size=16).digest()
    except OSError:
        return None


def _relative(root: Path, relative: str) -> Path:
    # As the loader resolves it (spec.loader.resolve_path), without resolve(): a stat
    # follows symbolic links, and the loader rejects paths outside the project.
    candidate = Path(relative).expanduser()
    return candidate if candidate.is_absolute() else root / candidate


def pipeline_references(pipeline: Pipeline) -> list[Path]:
    """The SQL and template files a valid pipeline reads."""
    found = [
        _relative(pipeline.root, query.file)
        for query in pipeline.spec.queries.values()
        if query.file
    ]
    if pipeline.spec.report.template:
        found.append(_relative(pipeline.root, pipeline.spec.report.template))
    return found


def declared_references(file: Path, root: Path) -> list[Path]:
    """The SQL and template files an invalid pipeline file names, as far as they can be read.

    Read from the raw TOML, with no validation: nothing when the file cannot
    be parsed (then only the pipeline file itself is worth watching).
    """
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    names: list[str] = []
    queries = raw.get("queries")
    if isinstance(queries, dict):
        names.extend(
            q["file"]
            for q in queries.values()
            if isinstance(q, dict) and isinstance(q.get("file"), str)
        )
    report = raw.get("report")
    if isinstance(report, dict) and isinstance(report.get("template"), str):
        names.append(report["template"])
    found = []
    for name in names:
        if name and "\x00" not in name:
            found.append(_relative(root, name))
    return found


@dataclass
class Look:
    """One stat pass over what is watched, taken before the files are read."""

    taken_ns: int
    """Wall time of the pass, in ns since the epoch (file times are on this clock)."""
    signatures: dict[str, Signature] = field(default_factory=dict)
    """Each watched path's signature."""
    racy: dict[str, object] = field(default_factory=dict)
    """The content of each path changed just before the pass."""


class FileWatcher:
    """Tells whether a pipelines folder, its files or the files they name changed.

    ``path`` is what the service was given: a pipelines folder or one pipeline
    file.  ``references`` returns the SQL and template files the pipelines
    name now (valid ones and invalid ones alike); it is called at each
    :meth:`look` and :meth:`settle`, never at a poll.  ``use_inotify=False``
    polls with stats only (as ``EIL_WATCH=poll`` does).
    """

    def __init__(
        self,
        path: Path,
        *,
        references: Callable[[], Iterable[Path]],
        clock_ns: Callable[[], int] = time.time_ns,
        use_inotify: bool = True,
    ):
        self.path = path
        self.references = references
        self.clock_ns = clock_ns
        self._folder = str(path) if path.is_dir() else None
        self._baseline: dict[str, Signature] = {}
        self._racy: dict[str, object] = {}
        self._lock = threading.Lock()
        self._inotify: _Inotify | None = None
        self._check_next = True  # the first poll after a settle is a stat pass
        self._polls = 0
        if use_inotify and os.environ.get("EIL_WATCH", "") != "poll":
            try:
                self._inotify = _Inotify()
            except (OSError, AttributeError) as exc:  # not Linux, or no descriptor left
                log.info("file watcher: polling (inotify unavailable: %s)", exc)

    @property
    def mode(self) -> str:
        """``"inotify"`` or ``"poll"``: how changes are noticed."""
        return "inotify" if self._inotify is not None else "poll"

    def close(self) -> None:
        """Release the inotify descriptor, if any (polling needs nothing)."""
        with self._lock:
            if self._inotify is not None:
                self._inotify.close()
                self._inotify = None

    def _paths(self) -> list[str]:
        """The pipelines folder and its ``*.toml`` files (or the one file), and the references."""
        paths: list[str] = []
        if self._folder is None:
            paths.append(str(self.path))
        else:
            paths.append(self._folder)
            try:
                with os.scandir(self._folder) as entries:
                    paths.extend(e.path for e in entries if e.name.endswith(".toml"))
            except OSError:
                pass  # a folder removed by the user: its signature (None) says so
        paths.extend(str(p) for p in self.references())
        return list(dict.fromkeys(paths))

    def _observe(self, path: str, taken_ns: int, look: Look) -> None:
        sig = signature(path)
        look.signatures[path] = sig
        if sig is not None and sig[1] > taken_ns - RACY_NS:
            look.racy[path] = _content(path, path == self._folder)

    def look(self) -> Look:
        """Stat everything watched now; call before reading the files, then :meth:`settle`."""
        taken = self.clock_ns()
        look = Look(taken)
        for path in self._paths():
            self._observe(path, taken, look)
        return look

    def settle(self, look: Look) -> None:
        """Make ``look`` the baseline, once the files it saw have been read.

        A path watched only from now on (a SQL file the new version of a
        pipeline names) was not in ``look``; it is stat'ed now.  When it changed
        around the time of the look, it may have changed after it was read:
        it is marked unknown, and the next poll reloads once more.
        """
        baseline = dict(look.signatures)
        racy = dict(look.racy)
        for path in self._paths():
            if path in baseline:
                continue
            sig = signature(path)
            baseline[path] = (
                _UNKNOWN if sig is not None and sig[1] > look.taken_ns - RACY_NS else sig
            )
        with self._lock:
            self._baseline = baseline
            self._racy = {p: c for p, c in racy.items() if p in baseline}
            # Events since the look are left queued: the next poll sees them.  The
            # next poll is a stat pass anyway, for what changed in a folder watched
            # only from now on.
            self._check_next = True
            if self._inotify is not None:
                folders = {os.path.dirname(p) for p in baseline}
                if self._folder is not None:
                    folders.add(self._folder)
                # A symbolic link's target may lie in another folder: watch it too.
                folders.update(
                    os.path.dirname(os.path.realpath(p)) for p in baseline if os.path.islink(p)
                )
                try:
                    self._inotify.watch(folders)
                except OSError as exc:  # the watch limit (fs.inotify.max_user_watches)
                    log.warning("file watcher: polling from now on (%s)", exc)
                    self._inotify.close()
                    self._inotify = None

    def changed(self) -> bool:
        """Poll now: True when a watched path differs from the baseline (then reload)."""
        with self._lock:
            self._polls += 1
            if self._inotify is not None:
                # Drained before the stats: an event after this is left for the next poll.
                event = self._inotify.events()
                full = self._check_next or self._polls % FULL_CHECK_EVERY == 0
                if not (event or full or self._racy):
                    return False
            # A change found keeps the stat passes going until the reload settles,
            # so a reload that failed is tried again at the next poll.
            for path, sig in self._baseline.items():
                if signature(path) != sig:
                    return True
            now = self.clock_ns()
            for path, content in list(self._racy.items()):
                if _content(path, path == self._folder) != content:
                    return True
                sig = self._baseline[path]
                if sig is not None and sig[1] <= now - RACY_NS:
                    # Older than a tick now: a later write gets a new time.
                    del self._racy[path]
            self._check_next = False
            return False

    def watched(self) -> list[str]:
        """The paths in the baseline (for tests and logs)."""
        with self._lock:
            return list(self._baseline)
