"""Where a project's reports go: ``[storage]`` of eil.toml.

:func:`default_reports_dir` is the folder the commands write into and read from
when ``--reports`` is not given; :func:`report_store` is the object store
runners publish to and ``serve`` and ``send`` read from, when ``[storage]
reports`` names one.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from ..errors import EilError
from ..outputs.site import site_lock, update_site
from ..outputs.store import ObjectStore, mirror, open_store
from ..spec.loader import project_root_for
from ..spec.project import StorageSettings, load_storage_settings
from ..spec.toml_files import PROJECT_FILE

log = logging.getLogger("eil_pipelines.serve")

__all__ = [
    "ServeMirror",
    "StoreMirror",
    "default_reports_dir",
    "mirror_for_serve",
    "report_store",
    "storage_settings",
]

#: How often ``serve`` looks for new reports in an object store, in seconds.
MIRROR_INTERVAL_S = 5.0

_CACHE: dict[Path, tuple[tuple[int, int, int] | None, StorageSettings]] = {}
_LOCK = threading.Lock()


def storage_settings(root: Path) -> StorageSettings:
    """``[storage]`` of the project at ``root``, read again only when eil.toml changes.

    Raises :class:`~eil_pipelines.errors.ConfigError` for a problem of ``[storage]``.
    """
    # Absolute, not resolved: resolving walked every component of the path on every
    # run, and cost more than the stat below.
    root = Path(os.path.abspath(root))
    try:
        st = os.stat(root / PROJECT_FILE)
        key: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    with _LOCK:
        cached = _CACHE.get(root)
        if cached is not None and cached[0] == key:
            return cached[1]
    settings = load_storage_settings(root)
    with _LOCK:
        _CACHE[root] = (key, settings)
    return settings


def default_reports_dir(root: Path) -> Path:
    """``[storage] reports`` when it names a folder (relative to the project root),
    else ``reports/`` in the project root (also the working folder of a runner
    that publishes to an object store)."""
    settings = storage_settings(root)
    if settings.reports and settings.store_url is None:
        return (root / Path(settings.reports).expanduser()).resolve()
    return root.resolve() / "reports"


def report_store(root: Path) -> ObjectStore | None:
    """The object store of the project at ``root``, or ``None`` when reports go to a folder."""
    settings = storage_settings(root)
    url = settings.store_url
    if url is None:
        return None
    return open_store(url, endpoint_url=settings.endpoint_url, region=settings.region)


class StoreMirror:
    """Keeps a reports folder a copy of the object store, for ``serve``: a first
    :meth:`sync` at start, then one every ``interval`` seconds in a thread."""

    def __init__(self, store: ObjectStore, reports: Path, *, interval: float = MIRROR_INTERVAL_S):
        self.store = store
        self.reports = reports
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def sync(self) -> dict[str, set[str]]:
        """Bring the folder up to date with the store, then the site; return what changed.

        Raises :class:`~eil_pipelines.outputs.store.StoreError` when the store cannot be read.
        """
        with site_lock(self.reports):
            touched = mirror(self.store, self.reports)
        if touched:
            update_site(self.reports, touched=touched)
        return touched

    def start(self) -> None:
        """Sync every ``interval`` seconds until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="eil-store-mirror", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the syncing thread and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except (EilError, OSError) as exc:
                # One line when the store goes away and one when it is back, not one per sync.
                if not self._failing:
                    log.warning("serve: could not read %s: %s", self.store.url, exc)
                self._failing = True
                continue
            if self._failing:
                log.warning("serve: %s can be read again", self.store.url)
            self._failing = False


def mirror_for_serve(path: Path, reports: Path) -> ServeMirror:
    """For ``serve`` of the pipelines at ``path``: with ``[storage] reports =
    "s3://..."``, ``reports`` brought up to date with the store now (a store that
    cannot be read raises :class:`~eil_pipelines.outputs.store.StoreError`, exit 3),
    and kept so while the returned context is entered; else a context that does nothing."""
    store = report_store(project_root_for(path))
    if store is None:
        return ServeMirror(None)
    store_mirror = StoreMirror(store, reports)
    store_mirror.sync()
    return ServeMirror(store_mirror)


class ServeMirror:
    """The context ``serve`` runs in: the store's mirror syncing, or nothing."""

    def __init__(self, mirror: StoreMirror | None):
        self.mirror = mirror

    @property
    def source(self) -> str | None:
        """The store's URL, or ``None`` when ``serve`` serves a folder of its own."""
        return self.mirror.store.url if self.mirror is not None else None

    def __enter__(self) -> ServeMirror:
        if self.mirror is not None:
            self.mirror.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.mirror is not None:
            self.mirror.stop()
