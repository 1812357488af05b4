"""The report site's index: what the site knows of each pipeline's reports, kept on disk
so a run's site update costs the same at 10 reports as at 20,000.

Each pipeline has ``reports/.eil/site/<pipeline>/``:

- ``head.json``: the number of reports, the newest report's manifest fields,
  the pipeline folder's identity, and one record per *chunk*;
- ``chunk-<c>.json``: the reports of chunk ``c``, oldest first, each as the site
  shows it (files, data exports, headline figures) with the ``(inode, mtime,
  size)`` of the manifest it was read from, so a full scan parses only the
  manifests that changed.

Reports are numbered in time order by an *ordinal*; chunk ``c`` holds ordinals
``[c * CHUNK, (c + 1) * CHUNK)``, and each archive page of the site is one
chunk.  The ordinal of the oldest report (``first``) is kept: deleting the
oldest report (retention) only raises ``first``, and adding the newest only
extends the last chunk, so both rewrite one chunk and no page but the newest.
A report inserted or removed in the middle (a backfill) shifts the side with
fewer chunks by one.

A run tells the index which stamps it touched (the one it wrote, the ones
retention deleted); :meth:`PipelineIndex.touch` looks at those stamps on disk
and nothing else.  The index is a cache, never trusted blindly: a head or
chunk file that is missing, damaged, from another format, another pipeline or
another folder (recreated), or whose content hash is not the one the head
records, makes the pipeline's index be rebuilt from a full scan of its folder
(:func:`scan_pipeline`).  Every file is written atomically, chunks before the
head, so a process killed between the two leaves a head whose hashes do not
match, which is rebuilt.  Callers hold the site lock.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes
from .manifest import read_manifest
from .stamps import is_stamp

#: Bumped when the layout of the index files changes: an index of another format is rebuilt.
INDEX_FORMAT = 1
#: Reports per chunk, so per archive page.
CHUNK = 100

_DOCUMENTS = ("md", "html", "pdf", "json")
_DATA_SUFFIXES = (".csv", ".xlsx", ".parquet")
#: The manifest fields the site shows of a pipeline's newest report.
_LATEST_KEYS = (
    "title",
    "description",
    "schedule",
    "timezone",
    "status",
    "scheduled_at",
    "stamp",
    "metrics",
)
#: The fields of a figure a history row shows.
_HEADLINE_KEYS = ("label", "text", "previous_text", "change_text", "direction", "sentiment")

Entry = dict[str, Any]
"""One report: ``s`` stamp, ``d`` format → file name, ``x`` data exports (relative
paths), ``h`` headline figures, ``m`` the manifest's ``[inode, mtime_ns, size]`` or ``None``."""


class IndexInvalid(Exception):
    """An index file is missing, damaged or not this pipeline's: rebuild from disk."""


def index_dir(reports_dir: Path, name: str) -> Path:
    """``reports/.eil/site/<pipeline>/``."""
    return reports_dir / ".eil" / "site" / name


# --- reading one report from disk ------------------------------------------------------


def _folder_identity(folder: Path) -> list[int] | None:
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return [st.st_dev, st.st_ino]


def _headline(manifest: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    metrics = (manifest or {}).get("metrics")
    if not isinstance(metrics, list):
        return []
    return [{k: m[k] for k in _HEADLINE_KEYS if k in m} for m in metrics[:3] if isinstance(m, dict)]


def _latest(manifest: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if manifest is None:
        return None
    return {k: manifest[k] for k in _LATEST_KEYS if k in manifest}


def _inner(folder: Path, suffixes: tuple[str, ...]) -> list[str]:
    try:
        with os.scandir(folder) as entries:
            return sorted(
                e.name
                for e in entries
                if e.name.endswith(suffixes) and e.is_file(follow_symlinks=False)
            )
    except OSError:
        return []


def read_entry(
    folder: Path, stamp: str, *, names: Iterable[str] | None = None, old: Entry | None = None
) -> tuple[Entry | None, dict[str, Any] | None]:
    """The report ``stamp`` of ``folder`` as it is on disk, and its manifest's latest fields.

    ``names`` is the folder's listing when the caller has it (a full scan),
    else each possible file is looked at.  The manifest is parsed again only
    when its ``(inode, mtime, size)`` differs from ``old``'s; the second value is then
    ``None`` unless it was read.  A stamp with no document is no report
    (charts or data left alone are not one): ``(None, None)``.
    """
    documents: dict[str, str] = {}
    present = set(names) if names is not None else None
    manifest_stat = None
    for fmt in _DOCUMENTS:
        file_name = f"{stamp}.{fmt}"
        if present is not None and file_name not in present:
            continue
        try:
            st = os.stat(folder / file_name, follow_symlinks=False)
        except OSError:
            continue
        if not _is_regular(st.st_mode):
            continue
        documents[fmt] = file_name
        if fmt == "json":
            # The inode too: an atomic rewrite makes a new one, whatever the clock says.
            manifest_stat = [st.st_ino, st.st_mtime_ns, st.st_size]
    if not documents:
        return None, None
    data: list[str] = []
    if present is None or f"{stamp}_data" in present:
        data = [f"{stamp}_data/{n}" for n in _inner(folder / f"{stamp}_data", _DATA_SUFFIXES)]
    entry: Entry = {"s": stamp, "d": documents, "x": data, "h": [], "m": manifest_stat}
    latest = None
    if manifest_stat is not None:
        if old is not None and old.get("m") == manifest_stat:
            entry["h"] = old["h"]
        else:
            manifest = read_manifest(folder / documents["json"])
            entry["h"] = _headline(manifest)
            latest = _latest(manifest)
            if manifest is None:
                entry["m"] = None
    return entry, latest


def _is_regular(mode: int) -> bool:
    return stat.S_ISREG(mode)


_OWNED_DOC = re.compile(r"^(?P<stamp>.+)\.(?:md|html|pdf|json)$")


def scan_stamps(folder: Path) -> tuple[list[str], set[str]]:
    """The stamps with a document in ``folder``, sorted, and every name in it."""
    try:
        with os.scandir(folder) as entries:
            names = {e.name for e in entries}
    except OSError:
        return [], set()
    stamps = set()
    for file_name in names:
        match = _OWNED_DOC.match(file_name)
        if match and is_stamp(match.group("stamp")):
            stamps.add(match.group("stamp"))
    return sorted(stamps), names


# --- the index -------------------------------------------------------------------------


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


# Parsed files, so a daemon does not parse the same index again: a head by its
# (inode, mtime, size) (an atomic write makes a new inode), a chunk by the content
# hash its head records.
_HEADS: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}
_CHUNKS: dict[Path, tuple[str, list[Entry]]] = {}
_CACHE_LIMIT = 4096


def _remember(cache: dict[Path, Any], path: Path, value: Any) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()  # rare (thousands of pipelines); correctness never depends on it
    cache[path] = value


class PipelineIndex:
    """One pipeline's index, loaded lazily chunk by chunk; changed with :meth:`touch`."""

    def __init__(self, reports_dir: Path, name: str, head: dict[str, Any]):
        self.reports_dir = reports_dir
        self.name = name
        self.folder = reports_dir / name
        self.dir = index_dir(reports_dir, name)
        self.count: int = head["count"]
        self.first: int = head["first"]
        #: Chunk number → [entries, lo stamp, hi stamp, hash]; ordered by number, contiguous.
        self.chunks: dict[int, list[Any]] = {
            int(c): [None, lo, hi, h] for c, lo, hi, h in head["chunks"]
        }
        self.latest: dict[str, Any] | None = head["latest"]
        self.pages: dict[str, str] = dict(head.get("pages", {}))
        self._dirty: set[int] = set()
        self._removed: set[int] = set()
        self.changed = False

    # -- loading --

    @classmethod
    def empty(cls, reports_dir: Path, name: str) -> PipelineIndex:
        """An index of no reports."""
        return cls(reports_dir, name, {"count": 0, "first": 0, "chunks": [], "latest": None})

    @classmethod
    def load(cls, reports_dir: Path, name: str) -> PipelineIndex:
        """The stored index; :class:`IndexInvalid` when it cannot be trusted."""
        path = index_dir(reports_dir, name) / "head.json"
        try:
            st = os.stat(path)
        except OSError as exc:
            raise IndexInvalid(f"{path}: {exc}") from None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = _HEADS.get(path)
        if cached is not None and cached[0] == key:
            head = cached[1]
        else:
            head = _parse_head(path, name)
            _remember(_HEADS, path, (key, head))
        if head["folder"] != _folder_identity(reports_dir / name):
            raise IndexInvalid(f"{path}: written for another folder")
        return cls(reports_dir, name, head)

    def entries(self, chunk: int) -> list[Entry]:
        """Chunk ``chunk``'s reports, oldest first (read and checked on first use)."""
        slot = self.chunks[chunk]
        if slot[0] is None:
            path = self.dir / f"chunk-{chunk}.json"
            cached = _CHUNKS.get(path)
            if cached is not None and cached[0] == slot[3]:
                slot[0] = cached[1]
            else:
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    raise IndexInvalid(f"{path}: {exc}") from None
                if _digest(data) != slot[3]:
                    raise IndexInvalid(f"{path}: not the chunk its head records")
                try:
                    entries = json.loads(data)["entries"]
                except (ValueError, KeyError, TypeError):
                    raise IndexInvalid(f"{path}: damaged") from None
                _remember(_CHUNKS, path, (slot[3], entries))
                slot[0] = entries
        return slot[0]

    @property
    def order(self) -> list[int]:
        """Chunk numbers, oldest first."""
        return sorted(self.chunks)

    def newest(self, count: int) -> list[Entry]:
        """The newest ``count`` reports, newest first."""
        out: list[Entry] = []
        for chunk in reversed(self.order):
            out.extend(reversed(self.entries(chunk)))
            if len(out) >= count:
                break
        return out[:count]

    def all_entries(self) -> list[Entry]:
        """Every report, oldest first (a full rebuild or a test)."""
        out: list[Entry] = []
        for chunk in self.order:
            out.extend(self.entries(chunk))
        return out

    def spot_check(self) -> bool:
        """Whether the oldest and the newest report the index knows are still on disk.

        Two looks, not a scan: they catch a folder deleted and made again (whose
        new inode may be the old one's) and reports removed by hand at either
        end.  Reports removed by hand in the middle show after a full rebuild.
        """
        order = self.order
        if not order:
            return True
        for entry in (self.entries(order[0])[0], self.entries(order[-1])[-1]):
            name = next(iter(entry["d"].values()))
            if not os.path.lexists(self.folder / name):
                return False
        return True

    # -- changing --

    def touch(self, stamp: str) -> None:
        """Bring the report ``stamp`` in line with the disk: add, replace or remove it."""
        if not is_stamp(stamp):
            return
        order = self.order
        chunk = self._chunk_for(stamp, order)
        entries = self.entries(chunk) if chunk is not None else []
        stamps = [e["s"] for e in entries]
        at = bisect.bisect_left(stamps, stamp)
        found = at < len(stamps) and stamps[at] == stamp
        old = entries[at] if found else None
        # A touched stamp's manifest is always read again: one file, and a run may
        # rewrite it within the file system's timestamp granularity.
        entry, latest = read_entry(self.folder, stamp)
        if entry is None and old is None:
            return
        if entry is not None and old is not None:
            if entry != old:
                assert chunk is not None
                self._set_chunk(chunk, [*entries[:at], entry, *entries[at + 1 :]])
                self.changed = True
        else:
            self._shift(chunk, at, entry)
            self.changed = True
        # The newest report changed, or was removed: the pipeline's latest figures follow.
        if stamp >= (self.newest_stamp or ""):
            before = self.latest
            self._refresh_latest(latest)
            self.changed = self.changed or self.latest != before

    @property
    def newest_stamp(self) -> str | None:
        """The newest report's stamp."""
        if not self.chunks:
            return None
        return str(self.chunks[max(self.chunks)][2])

    def _refresh_latest(self, latest: dict[str, Any] | None) -> None:
        newest = self.newest(1)
        if not newest:
            self.latest = None
            return
        entry = newest[0]
        if latest is not None and latest.get("stamp", entry["s"]) == entry["s"]:
            self.latest = latest
        elif "json" in entry["d"]:
            self.latest = _latest(read_manifest(self.folder / entry["d"]["json"]))
        else:
            self.latest = None

    def _chunk_for(self, stamp: str, order: list[int]) -> int | None:
        """The chunk ``stamp`` belongs in: the one whose range holds it, else the one before
        the gap it falls in (the first chunk for a stamp older than all)."""
        if not order:
            return None
        his = [self.chunks[c][2] for c in order]
        i = bisect.bisect_left(his, stamp)
        if i == len(order):
            return order[-1]
        if i > 0 and stamp < self.chunks[order[i]][1]:
            return order[i - 1]
        return order[i]

    def _set_chunk(self, chunk: int, entries: list[Entry]) -> None:
        self.chunks[chunk] = [entries, entries[0]["s"], entries[-1]["s"], ""]
        self._dirty.add(chunk)
        self._removed.discard(chunk)

    def _shift(self, chunk: int | None, at: int, entry: Entry | None) -> None:
        """Insert ``entry`` at ``at`` in ``chunk`` (``None``: remove the entry there), moving
        the reports on the side with fewer chunks by one ordinal."""
        inserting = entry is not None
        if chunk is None:  # the first report
            if entry is not None:
                self.first, self.count = 0, 1
                self._place(0, [entry])
            return
        order = self.order
        i = order.index(chunk)
        # Moving the older side down needs room below ordinal 0.
        older = i + 1 < len(order) - i and (not inserting or self.first > 0)
        span = order[: i + 1] if older else order[i:]
        flat: list[Entry] = []
        offset = at
        for c in span:
            if c == chunk:
                offset = len(flat) + at
            flat.extend(self.entries(c))
        if older:  # the end of the span stays where it is
            last = span[-1] == order[-1]
            end = self.first + self.count if last else (span[-1] + 1) * CHUNK
        else:  # the start of the span stays where it is
            start = self.first if span[0] == order[0] else span[0] * CHUNK
        if entry is not None:
            flat.insert(offset, entry)
        else:
            del flat[offset]
        self.count += 1 if inserting else -1
        if older:
            start = end - len(flat)
            self.first = start
        for c in span:
            del self.chunks[c]
            self._removed.add(c)
        if self.count == 0:
            self.first = 0
            return
        self._place(start, flat)

    def _place(self, start: int, flat: list[Entry]) -> None:
        """Put ``flat`` (ordinals from ``start`` on) back as chunks."""
        end = start + len(flat)
        if not flat:
            return
        for c in range(start // CHUNK, (end - 1) // CHUNK + 1):
            lo, hi = max(c * CHUNK, start) - start, min((c + 1) * CHUNK, end) - start
            self._set_chunk(c, flat[lo:hi])

    # -- saving --

    def save(self) -> None:
        """Write the changed chunks, then the head; delete chunks that are gone."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for chunk in sorted(self._dirty):
            if chunk not in self.chunks:
                continue
            slot = self.chunks[chunk]
            data = _dump(
                {"format": INDEX_FORMAT, "pipeline": self.name, "chunk": chunk, "entries": slot[0]}
            )
            slot[3] = _digest(data)
            path = self.dir / f"chunk-{chunk}.json"
            # A cache: a torn file after a power cut fails its hash and is rebuilt,
            # so no fsync is needed for it to be safe.
            atomic_write_bytes(path, data, durable=False)
            _remember(_CHUNKS, path, (slot[3], slot[0]))
        head = {
            "format": INDEX_FORMAT,
            "pipeline": self.name,
            "folder": _folder_identity(self.folder),
            "count": self.count,
            "first": self.first,
            "chunks": [
                [c, self.chunks[c][1], self.chunks[c][2], self.chunks[c][3]] for c in self.order
            ],
            "latest": self.latest,
            "pages": self.pages,
        }
        path = self.dir / "head.json"
        atomic_write_bytes(path, _dump(head), durable=False)
        _HEADS.pop(path, None)
        for chunk in self._removed - set(self.chunks):
            with contextlib.suppress(OSError):
                (self.dir / f"chunk-{chunk}.json").unlink()
        self._dirty.clear()
        self._removed.clear()
        self.changed = False


def _parse_head(path: Path, name: str) -> dict[str, Any]:
    try:
        head = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise IndexInvalid(f"{path}: {exc}") from None
    try:
        ok = (
            isinstance(head, dict)
            and head["format"] == INDEX_FORMAT
            and head["pipeline"] == name
            and isinstance(head["count"], int)
            and isinstance(head["first"], int)
            and head["first"] >= 0
            and isinstance(head["chunks"], list)
            and all(
                isinstance(c, list) and len(c) == 4 and isinstance(c[0], int)
                for c in head["chunks"]
            )
            and (head["latest"] is None or isinstance(head["latest"], dict))
            and isinstance(head.get("pages", {}), dict)
        )
    except (KeyError, TypeError):
        ok = False
    if not ok:
        raise IndexInvalid(f"{path}: not an index of this version for {name}")
    numbers = [c[0] for c in head["chunks"]]
    count, first = head["count"], head["first"]
    expected = list(range(first // CHUNK, (first + count - 1) // CHUNK + 1)) if count > 0 else []
    if numbers != expected:
        raise IndexInvalid(f"{path}: its chunks do not match its count")
    return head


def scan_pipeline(reports_dir: Path, name: str, old: PipelineIndex | None = None) -> PipelineIndex:
    """The index of ``reports/<name>`` from a full scan of the folder.

    With ``old`` (the index as it was), the ordinals go on from its first one,
    so the archive pages stay where they were.  Manifests whose ``(inode, mtime, size)`` match ``old``'s entries are not parsed again.
    """
    folder = reports_dir / name
    stamps, names = scan_stamps(folder)
    previous: dict[str, Entry] = {}
    if old is not None:
        with contextlib.suppress(IndexInvalid):
            previous = {e["s"]: e for e in old.all_entries()}
    entries: list[Entry] = []
    latest = None
    for stamp in stamps:
        entry, fields = read_entry(folder, stamp, names=names, old=previous.get(stamp))
        if entry is not None:
            entries.append(entry)
            latest = fields if stamp == stamps[-1] else latest
    index = PipelineIndex.empty(reports_dir, name)
    if old is not None:
        # Keep the numbering: the archive pages keep their addresses across a rescan.
        index.pages = old.pages
        index.first = old.first if entries else 0
    index._place(index.first, entries)
    index.count = len(entries)
    if entries:
        index._refresh_latest(latest)
    index.changed = True
    return index


def newest_indexed_stamp(reports_dir: Path, name: str) -> str | None:
    """The newest report the pipeline's index knows, without the site lock (the head is
    written atomically); ``None`` when there is no index to trust or it knows none."""
    try:
        index = PipelineIndex.load(reports_dir, name)
    except IndexInvalid:
        return None
    return index.newest_stamp if index.count else None


def open_index(reports_dir: Path, name: str) -> tuple[PipelineIndex, bool]:
    """The pipeline's stored index, or a fresh scan when it cannot be trusted; and
    whether it was rebuilt."""
    try:
        index = PipelineIndex.load(reports_dir, name)
        # The newest chunks are what every page shows: check them now, not mid-update.
        index.newest(2 * CHUNK)
        return index, False
    except IndexInvalid:
        return scan_pipeline(reports_dir, name), True
