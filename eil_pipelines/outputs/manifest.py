"""The run manifest: ``<stamp>.json`` beside every report.

It answers "what exactly did we send on that day, and from which
definitions": the scheduled time and period, a hash of every query's SQL and
of its result, of the template, of the pipeline file, the project's git
commit, the software versions, the headline metrics, and every file written
with its hash.  The report site is built from manifests alone, so it needs no
pipeline files.

Everything in a manifest depends only on the definitions, the data and the
scheduled time, except the wall-clock fields in :data:`VOLATILE_KEYS`
(``started_at``, ``finished_at``, ``duration_s``, ``stages_s``).  See
``docs/reports.md`` for every field.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from ..sources.server import version_seen
from ..spec.project import load_project_settings
from .exports import column_types

log = logging.getLogger("eil_pipelines.outputs")

#: Bumped when a field changes meaning or is removed (adding fields does not bump it).
MANIFEST_VERSION = 1

#: The wall-clock fields: the only ones that differ between two runs of the same
#: pipeline on the same data at the same scheduled time.
VOLATILE_KEYS = ("started_at", "finished_at", "duration_s", "stages_s")

#: Libraries whose versions shape the report's bytes.
_SOFTWARE = ("duckdb", "pandas", "pyarrow", "matplotlib", "jinja2", "markdown-it-py")


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    """Hex SHA-256 of ``text`` encoded as UTF-8."""
    return sha256_bytes(text.encode("utf-8"))


def sha256_file(path: Path) -> str | None:
    """Hex SHA-256 of a file's bytes, or ``None`` when it cannot be read."""
    try:
        return sha256_bytes(path.read_bytes())
    except OSError:
        return None


def stable_view(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest without its wall-clock fields: equal for reruns on the same data."""
    return {k: v for k, v in manifest.items() if k not in VOLATILE_KEYS}


def git_state(root: Path, exclude: Path | None = None) -> dict[str, Any] | None:
    """The git commit checked out at ``root`` and whether the work tree differs from it.

    ``None`` when ``root`` is not in a git work tree or git is not installed.
    ``dirty`` counts changed and untracked files, except those under
    ``exclude`` (the reports folder: writing reports must not make the
    definitions look modified).  Runs git with ``GIT_OPTIONAL_LOCKS=0`` so it
    never takes the index lock from under a person using git at that moment.
    """
    if not _may_be_in_git(root):
        return None  # no git process per run for a project outside any repository
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=root,
                capture_output=True,
                timeout=15,
                env=env,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else None

    head = git("rev-parse", "--show-toplevel", "HEAD")
    if head is None:
        return None
    lines = head.splitlines()
    if len(lines) < 2:
        return None
    top, commit = Path(lines[0]), lines[1].strip()
    status = git("status", "--porcelain=v1", "-z")
    dirty = None
    if status is not None:
        excluded = _relative(exclude, top) if exclude is not None else None
        changed = []
        for entry in status.split("\0"):
            if len(entry) < 4 or entry[:2] == "  ":
                continue
            path = entry[3:]
            if excluded is not None and (path == excluded or path.startswith(excluded + "/")):
                continue
            changed.append(path)
        dirty = bool(changed)
    return {"commit": commit, "dirty": dirty}


@functools.lru_cache(maxsize=4096)
def _pipeline_path(file: str, root: str) -> str:
    """The pipeline file relative to the project root (resolved once per file, not per run)."""
    try:
        return Path(file).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return file


def _may_be_in_git(root: Path) -> bool:
    """Whether git could find a repository for ``root``: a ``.git`` in it or a
    folder above it (git's own discovery), or ``GIT_DIR`` set."""
    if os.environ.get("GIT_DIR"):
        return True
    folder = root.resolve()
    return any(os.path.lexists(candidate / ".git") for candidate in (folder, *folder.parents))


def _relative(path: Path, top: Path) -> str | None:
    try:
        return path.resolve().relative_to(top.resolve()).as_posix()
    except ValueError:
        return None  # the reports folder is outside the repository


@cache
def software_versions() -> dict[str, str]:
    """Versions of Python, eil-pipelines and the libraries that shape the output."""

    versions = {"python": platform.python_version()}
    for name in ("eil-pipelines", *_SOFTWARE):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _weasyprint_version() -> str | None:
    return _version_of("weasyprint")


def _version_of(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _number(value: Any) -> float | None:
    # JSON has no NaN or infinity; a missing figure is null.
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def metric_record(metric: Any) -> dict[str, Any]:
    """A KPI figure (a ``MetricResult``) as the manifest and the site keep it."""
    return {
        "label": metric.label,
        "value": _number(metric.value),
        "previous": _number(metric.previous),
        "change_pct": _number(metric.change_pct),
        "text": metric.text,
        "previous_text": metric.previous_text,
        "change_text": metric.change_text,
        "direction": metric.direction,
        "sentiment": metric.sentiment,
        "good": metric.good,
        "format": metric.format,
    }


def build_manifest(
    *,
    pipeline: Any,
    run: Mapping[str, Any],
    schedule: str,
    timezone: str,
    queries: Mapping[str, Mapping[str, Any]],
    template_name: str,
    template_text: str,
    pipeline_file_sha256: str | None,
    metrics: Iterable[Any],
    formats: Iterable[str],
    exports: Iterable[str],
    timing: Mapping[str, Any],
    reports_dir: Path,
) -> dict[str, Any]:
    """Assemble a run's manifest (``files`` is added by the writer, which knows the bytes).

    ``pipeline`` is the loaded :class:`~eil_pipelines.spec.loader.Pipeline`;
    ``run`` holds ``run_id``, ``attempt``, ``stamp``, ``scheduled_at`` (aware)
    and ``period`` (kind and the four bounds, aware); ``queries`` maps each
    query name to :func:`query_record`'s result; ``timing`` holds the
    wall-clock fields of :data:`VOLATILE_KEYS`.
    """

    spec = pipeline.spec
    period = run["period"]
    formats = list(formats)
    software = dict(software_versions())
    if "pdf" in formats:
        version = _weasyprint_version()
        if version:
            software["weasyprint"] = version
    if getattr(pipeline, "calendar", None) is not None:
        # The holiday tables decide which days run: a new release can move one.
        version = _version_of("holidays")
        if version:
            software["holidays"] = version
    pipeline_path = _pipeline_path(str(pipeline.file), str(pipeline.root))
    return {
        "manifest_version": MANIFEST_VERSION,
        "pipeline": pipeline.name,
        "title": spec.title,
        "description": spec.description,
        "enabled": spec.enabled,
        "schedule": schedule,
        "timezone": timezone,
        "scheduled_at": _iso(run["scheduled_at"]),
        "scheduled_at_utc": run["scheduled_at"].astimezone(UTC).isoformat(),
        "stamp": run["stamp"],
        "run_id": run["run_id"],
        "attempt": run["attempt"],
        "period": {
            "kind": period["kind"],
            "start": _iso(period["start"]),
            "end": _iso(period["end"]),
            "prev_start": _iso(period["prev_start"]),
            "prev_end": _iso(period["prev_end"]),
        },
        "status": "succeeded",
        "started_at": _iso(timing.get("started_at")),
        "finished_at": _iso(timing.get("finished_at")),
        "duration_s": round(float(timing.get("duration_s", 0.0)), 6),
        "stages_s": {k: round(float(v), 6) for k, v in dict(timing.get("stages_s", {})).items()},
        "pipeline_file": {"path": pipeline_path, "sha256": pipeline_file_sha256},
        "template": {"name": template_name, "sha256": sha256_text(template_text)},
        "git": git_state(pipeline.root, exclude=reports_dir),
        "software": software,
        "formats": formats,
        "exports": list(exports),
        "source": source_record(pipeline),
        # The values the queries were bound with, and which of them --param set for this run.
        "params": {name: _param_value(value) for name, value in spec.params.items()},
        "params_overridden": list(getattr(pipeline, "overridden", ())),
        "queries": {name: dict(record) for name, record in queries.items()},
        "metrics": [metric_record(m) for m in metrics],
        "files": [],
    }


def _param_value(value: Any) -> Any:
    """A ``[params]`` value as JSON: dates as ISO text, the rest as they are."""
    return value.isoformat() if hasattr(value, "isoformat") else value


def source_record(pipeline: Any) -> dict[str, Any]:
    """Where the queries ran: the connection's name, engine and server version, never its URL."""
    source = pipeline.spec.source
    if not isinstance(source, str):
        record: dict[str, Any] = {"engine": source.kind}
        if source.path:
            record["path"] = source.path
        return record

    engine = None
    try:
        settings = load_project_settings(pipeline.root).connections.get(source)
        engine = settings.engine if settings is not None else None
    except Exception:  # the run already used the connection; the record is best effort
        engine = None
    return {"connection": source, "engine": engine, "server_version": version_seen(source)}


def query_record(
    sql: str, df: Any, *, result_sha256: str, file: str | None = None
) -> dict[str, Any]:
    """One query's entry: the SQL's hash (and file), rows, columns, the result's hash."""

    record: dict[str, Any] = {"sql_sha256": sha256_text(sql)}
    if file is not None:
        record["file"] = file
    record["rows"] = len(df)
    record["columns"] = column_types(df)
    record["result_sha256"] = result_sha256
    return record


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """The manifest as the file holds it: indented JSON, keys in a fixed order, UTF-8."""
    return (
        json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False, default=str) + "\n"
    ).encode("utf-8")


def read_manifest(path: Path) -> dict[str, Any] | None:
    """A manifest from disk, or ``None`` when it is missing or not a manifest we wrote."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or "manifest_version" not in data:
        return None
    return data
