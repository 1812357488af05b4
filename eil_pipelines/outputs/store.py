"""Object storage for reports: ``[storage] reports = "s3://bucket/prefix"`` in eil.toml.

A runner writes each run's files into its own reports folder as always (the
staging folder, the renames, retention), then *publishes* them to the store:

- each object is written once, whole, by one ``PUT`` (an object store never
  shows half an object), charts and data first, then the documents, then the
  manifest, so a manifest never names an object that is not there yet;
- ``<pipeline>/latest.json`` is a small *pointer* object naming the newest
  report's stamp and files.  It moves only forward: it is replaced with a
  conditional ``PUT`` (``If-Match`` the version read, ``If-None-Match: *``
  when there is none), so two runners publishing at once cannot move it back;
- retention deletes a report's objects, manifest first.

The commands that read reports (``serve``, ``send``) *mirror* the store into
their reports folder (:func:`mirror`): new and changed objects are fetched,
objects gone from the store are deleted from the folder (only those the mirror
fetched), and ``latest.*`` follows the pointers.  The site is then built from
the folder as for one machine.

The design relies on these S3 semantics (Amazon S3 since December 2020 and
November 2024; MinIO, Ceph RGW and moto have them): a ``PUT`` is atomic,
reads and listings after a write are strongly consistent, and ``PUT``
honours ``If-Match`` and ``If-None-Match``.  Credentials come from the
standard chain of the AWS SDK (``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY``, a profile, an instance role), never from a file of
this project, and never appear in a message.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..errors import CouldNotRun, EilError, OutputError
from ..spec.storage import parse_store_url
from .atomic import atomic_link, atomic_write_bytes
from .stamps import is_stamp

log = logging.getLogger("eil_pipelines.outputs")

#: The pointer object of each pipeline, beside its reports.
POINTER = "latest.json"
#: The pointer's layout; a pointer of another format is replaced by the next publish.
POINTER_FORMAT = 1
#: Where a mirror remembers what it fetched: ``reports/.eil/store-mirror.json``.
MIRROR_STATE = Path(".eil") / "store-mirror.json"

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_DOCUMENTS = ("md", "html", "pdf", "json")
_FOLDERS = {"charts": (".png",), "data": (".csv", ".xlsx", ".parquet")}
_INNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# A pointer replaced by another runner between our read and write: read again.
_CAS_TRIES = 20


class StoreError(OutputError, CouldNotRun):
    """The object store refused a request or could not be reached: a "could not run"
    kind (exit 3), retried like a full disk.  The message names the store and what
    it said, never a credential."""


class _Missing(StoreError):
    """No such object (a read answers ``None`` instead)."""


class _Moved(StoreError):
    """A conditional write lost: the object changed since it was read."""


def report_key_parts(relative: str) -> tuple[str, str] | None:
    """``pipeline/<stamp>.html`` or ``pipeline/<stamp>_charts/x.png`` → ``(pipeline, stamp)``;
    ``None`` for any other key (the mirror never writes such a key into the folder)."""
    parts = relative.split("/")
    if len(parts) == 2 and _NAME.match(parts[0]):
        stamp, dot, ext = parts[1].rpartition(".")
        if dot and ext in _DOCUMENTS and is_stamp(stamp):
            return parts[0], stamp
    if len(parts) == 3 and _NAME.match(parts[0]) and _INNER.match(parts[2]):
        stamp, _, kind = parts[1].rpartition("_")
        if kind in _FOLDERS and is_stamp(stamp) and parts[2].endswith(_FOLDERS[kind]):
            return parts[0], stamp
    return None


class ObjectStore:
    """An S3-compatible bucket and prefix holding the reports (through boto3).

    One client is shared by the threads of a process (boto3's clients are thread-safe).
    """

    def __init__(
        self, url: str, *, endpoint_url: str | None = None, region: str | None = None
    ) -> None:
        self.location = parse_store_url(url)
        self.endpoint_url = endpoint_url
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise EilError("object storage needs boto3: pip install 'eil-pipelines[s3]'") from None
        config = Config(
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            max_pool_connections=32,
        )
        session = boto3.session.Session()
        self._client = session.client(
            "s3", endpoint_url=endpoint_url, region_name=region or "us-east-1", config=config
        )

    @property
    def url(self) -> str:
        """The store's ``s3://`` URL (no credentials: they are never part of it)."""
        return self.location.url

    def key(self, relative: str) -> str:
        """The object key of a path relative to the reports folder."""
        prefix = self.location.prefix
        return f"{prefix}/{relative}" if prefix else relative

    def relative(self, key: str) -> str | None:
        """The path relative to the reports folder of an object key under the prefix."""
        prefix = self.location.prefix
        if not prefix:
            return key
        return key[len(prefix) + 1 :] if key.startswith(prefix + "/") else None

    # --- requests ------------------------------------------------------------------

    @contextlib.contextmanager
    def _request(self, action: str) -> Iterator[None]:
        """Turn the SDK's errors into a :class:`StoreError` naming the store."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            yield
        except NoCredentialsError:
            raise StoreError(
                f"cannot {action} in {self.url}: no credentials; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or a profile, or an instance role)"
            ) from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "error")
            if code in ("NoSuchKey", "404"):
                raise _Missing(action) from None
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                raise _Moved(action) from None
            words = error.get("Message") or ""
            raise StoreError(
                f"cannot {action} in {self.url}: the store answered {code}"
                + (f" ({words})" if words else "")
            ) from None
        except BotoCoreError as exc:
            raise StoreError(f"cannot {action} in {self.url}: {exc}") from None

    def put(self, relative: str, data: bytes, **conditions: str) -> str:
        """Write the object ``relative`` whole; return its ETag.  ``conditions``:
        ``IfMatch`` / ``IfNoneMatch``, as S3 names them."""
        with self._request(f"write {relative}"):
            answer = self._client.put_object(
                Bucket=self.location.bucket,
                Key=self.key(relative),
                Body=data,
                ContentType=_content_type(relative),
                **conditions,
            )
        return str(answer.get("ETag", ""))

    def get(self, relative: str) -> tuple[bytes, str] | None:
        """The object ``relative`` and its ETag; ``None`` when there is none."""
        try:
            with self._request(f"read {relative}"):
                answer = self._client.get_object(
                    Bucket=self.location.bucket, Key=self.key(relative)
                )
                return answer["Body"].read(), str(answer.get("ETag", ""))
        except _Missing:
            return None

    def listing(self, under: str = "") -> Iterator[tuple[str, str]]:
        """``(relative path, ETag)`` of every object under ``under`` (a folder, or all)."""
        prefix = (
            self.key(under)
            if under
            else (self.location.prefix + "/" if self.location.prefix else "")
        )
        with self._request("list the reports"):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    relative = self.relative(item["Key"])
                    if relative is not None:
                        yield relative, str(item.get("ETag", ""))

    def delete(self, relatives: Iterable[str]) -> None:
        """Delete these objects (in batches of 1,000, as S3 allows)."""
        keys = [{"Key": self.key(r)} for r in relatives]
        for start in range(0, len(keys), 1000):
            with self._request("delete old reports"):
                self._client.delete_objects(
                    Bucket=self.location.bucket,
                    Delete={"Objects": keys[start : start + 1000], "Quiet": True},
                )

    # --- publishing -----------------------------------------------------------------

    def publish(
        self, pipeline: str, stamp: str, files: Mapping[str, bytes], *, run: Mapping[str, Any]
    ) -> bool:
        """Publish one report: ``files`` maps paths relative to the pipeline's folder
        (``<stamp>.html``, ``<stamp>_charts/x.png``) to their bytes.  Then move the
        pointer to it when it is the newest; return whether it did."""
        ordered = sorted(files, key=_publish_order)
        for name in ordered:
            self.put(f"{pipeline}/{name}", files[name])
        documents = {
            name.rpartition(".")[2]: name
            for name in ordered
            if "/" not in name and name.rpartition(".")[2] in ("md", "html", "pdf")
        }
        pointer = {
            "format": POINTER_FORMAT,
            "pipeline": pipeline,
            "stamp": stamp,
            "documents": documents,
            "files": ordered,
            **{k: run[k] for k in ("run_id", "attempt", "scheduled_at") if k in run},
        }
        return self.advance_latest(pipeline, pointer)

    def latest(self, pipeline: str) -> dict[str, Any] | None:
        """The pointer of ``pipeline`` (its newest report), or ``None``."""
        found = self.get(f"{pipeline}/{POINTER}")
        return _parse_pointer(found[0]) if found is not None else None

    def advance_latest(self, pipeline: str, pointer: Mapping[str, Any]) -> bool:
        """Replace ``<pipeline>/latest.json`` with ``pointer`` unless it names a newer
        stamp; a compare-and-swap, so it never moves back.  Return whether it moved."""
        body = json.dumps(pointer, sort_keys=True, indent=1).encode("utf-8")
        relative = f"{pipeline}/{POINTER}"
        for _ in range(_CAS_TRIES):
            found = self.get(relative)
            conditions: dict[str, str]
            if found is None:
                conditions = {"IfNoneMatch": "*"}
            else:
                current = _parse_pointer(found[0])
                if current is not None and str(current.get("stamp", "")) > pointer["stamp"]:
                    return False
                conditions = {"IfMatch": found[1]}
            try:
                self.put(relative, body, **conditions)
            except _Moved:
                continue  # another runner moved it between our read and write: look again
            return True
        raise StoreError(f"cannot move {relative} in {self.url}: it kept changing under us")

    def remove_report(self, pipeline: str, names: Iterable[str]) -> None:
        """Delete a report's objects (``names`` relative to the pipeline's folder),
        its manifest first, so a listing never shows a manifest without its files."""
        ordered = sorted(names, key=_publish_order, reverse=True)
        self.delete(f"{pipeline}/{name}" for name in ordered)

    def report_names(self, pipeline: str) -> dict[str, list[str]]:
        """The objects of each report of ``pipeline`` in the store, by stamp
        (paths relative to the pipeline's folder)."""
        found: dict[str, list[str]] = {}
        for relative, _ in self.listing(f"{pipeline}/"):
            parts = report_key_parts(relative)
            if parts is not None and parts[0] == pipeline:
                found.setdefault(parts[1], []).append(relative.split("/", 1)[1])
        return found

    def apply_retention(self, pipeline: str, keep: int, *, protect: str | None = None) -> list[str]:
        """Delete every report of ``pipeline`` in the store but the newest ``keep``
        (``protect`` stays, as in :func:`~.retention.apply_retention`); return their stamps."""
        reports = self.report_names(pipeline)
        doomed = [s for s in sorted(reports, reverse=True)[keep:] if s != protect]
        for stamp in doomed:
            self.remove_report(pipeline, reports[stamp])
        return doomed


def _publish_order(name: str) -> tuple[int, str]:
    """Charts and data first, then the documents, the manifest last."""
    if "/" in name:
        return 0, name
    return (2, name) if name.endswith(".json") else (1, name)


def _parse_pointer(data: bytes) -> dict[str, Any] | None:
    try:
        pointer = json.loads(data)
    except ValueError:
        return None
    if not isinstance(pointer, dict) or not isinstance(pointer.get("stamp"), str):
        return None
    return pointer


_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".json": "application/json",
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".csv": "text/csv; charset=utf-8",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".parquet": "application/vnd.apache.parquet",
}


def _content_type(relative: str) -> str:
    return _CONTENT_TYPES.get("." + relative.rpartition(".")[2], "application/octet-stream")


# --- opening a store once per process --------------------------------------------------

_STORES: dict[tuple[str, str | None, str | None], ObjectStore] = {}
_STORES_LOCK = threading.Lock()


def open_store(
    url: str, *, endpoint_url: str | None = None, region: str | None = None
) -> ObjectStore:
    """The process's :class:`ObjectStore` for these settings (one client, made once)."""
    key = (url, endpoint_url, region)
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = ObjectStore(url, endpoint_url=endpoint_url, region=region)
        return store


# --- mirroring the store into a folder -------------------------------------------------


def mirror(
    store: ObjectStore, reports_dir: Path, *, pipeline: str | None = None
) -> dict[str, set[str]]:
    """Bring the reports of the store (of one ``pipeline``, or all) into ``reports_dir``.

    Objects new or changed since the last mirror (by ETag) are fetched and written
    atomically, manifests last; report files the mirror fetched earlier and the
    store no longer has (retention) are deleted; ``latest.*`` follows each
    pointer.  Keys that are not report files are never written.  Returns the
    stamps touched, by pipeline, for :func:`~.site.update_site`.
    """
    state_file = reports_dir / MIRROR_STATE
    state = _read_state(state_file)
    seen: dict[str, str] = {}
    pointers: dict[str, bytes] = {}
    wanted: list[tuple[str, str]] = []
    for relative, etag in store.listing(f"{pipeline}/" if pipeline else ""):
        if relative.endswith("/" + POINTER) and _NAME.match(relative.split("/")[0]):
            found = store.get(relative)
            if found is not None:
                pointers[relative.split("/")[0]] = found[0]
            continue
        if report_key_parts(relative) is None:
            continue
        seen[relative] = etag
        if state.get(relative) != etag or not (reports_dir / relative).is_file():
            wanted.append((relative, etag))
    touched: dict[str, set[str]] = {}
    for relative, etag in sorted(wanted, key=lambda item: _publish_order(item[0].split("/", 1)[1])):
        found = store.get(relative)
        if found is None:
            continue  # deleted since the listing
        atomic_write_bytes(reports_dir / relative, found[0], durable=False)
        state[relative] = found[1] or etag
        name, stamp = report_key_parts(relative) or ("", "")
        touched.setdefault(name, set()).add(stamp)
    for relative in sorted(set(state) - set(seen), reverse=True):
        if pipeline is not None and not relative.startswith(pipeline + "/"):
            continue
        state.pop(relative)
        path = reports_dir / relative
        with contextlib.suppress(OSError):
            path.unlink()
            if path.parent.name.endswith(tuple(f"_{k}" for k in _FOLDERS)):
                with contextlib.suppress(OSError):
                    path.parent.rmdir()
        name, stamp = report_key_parts(relative) or ("", "")
        touched.setdefault(name, set()).add(stamp)
    for name, data in pointers.items():
        pointer = _parse_pointer(data)
        if pointer is None:
            continue
        for fmt, document in (pointer.get("documents") or {}).items():
            if fmt not in ("md", "html", "pdf") or document != f"{pointer['stamp']}.{fmt}":
                continue
            dated = reports_dir / name / document
            latest = reports_dir / name / f"latest.{fmt}"
            if dated.is_file() and not _same_file(dated, latest):
                atomic_link(dated, latest, dated.read_bytes())
    atomic_write_bytes(state_file, json.dumps(state, sort_keys=True).encode("utf-8"), durable=False)
    return touched


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``b`` is already ``a`` (a hard link made by an earlier mirror)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _read_state(path: Path) -> dict[str, str]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(state, dict):
        return {}
    return {str(k): str(v) for k, v in state.items() if report_key_parts(str(k))}
