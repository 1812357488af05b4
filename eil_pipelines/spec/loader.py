"""Loading pipeline files: TOML → validated :class:`Pipeline`, every problem at once.

Pydantic finds every type problem in a file in one pass; this module turns
them into ``file: key.path: message`` lines a person can act on, and adds the
checks a model cannot make alone: cross-references, files that must exist,
names unique within a folder.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import ConfigError, ConfigErrors, EilError
from ..text import has_control_characters, printable
from .cache import PARSED, RACY_NS, cache_folder, file_key
from .calendars import CalendarDefinition
from .dependencies import dependency_problems, upstream_names
from .models import NAME_PATTERN, PipelineSpec, reference_problems

# PROJECT_FILE is re-exported: the folder checks (run/deep.py) read it from here.
from .toml_files import PROJECT_FILE as PROJECT_FILE
from .toml_files import (
    _dedupe,
    display_path,
    expand_env,
    pydantic_problems,
    read_toml,
)


@dataclass(frozen=True)
class Pipeline:
    """A validated pipeline file, with its paths resolved and its SQL read."""

    name: str
    """The pipeline's name (the ``name`` key or the file stem)."""
    file: Path
    """Absolute path of the pipeline file."""
    root: Path
    """The project root: the parent of the pipelines folder."""
    spec: PipelineSpec
    """The validated contents."""
    sql: dict[str, str] = field(default_factory=dict)
    """Each query's SQL text, read from ``file`` where the query names one."""
    calendar: CalendarDefinition | None = None
    """The schedule's business calendar, resolved against eil.toml; None without one."""
    overridden: tuple[str, ...] = ()
    """Parameters set for this run only (``--param``), recorded in the manifest;
    see :func:`eil_pipelines.spec.overrides.with_params`."""

    @property
    def display_path(self) -> str:
        """The file as the user should see it: relative to the working folder when inside it."""
        # Loading resolves every pipeline file (pipeline_files, load_pipeline).
        return display_path(self.file, resolved=self.file.is_absolute())

    @property
    def template_path(self) -> Path | None:
        """The custom template's absolute path, or ``None`` for the built-in one."""
        template = self.spec.report.template
        return resolve_path(self.root, template) if template else None

    def resolve(self, relative: str) -> Path:
        """A path from the pipeline file, resolved against the project root."""
        return resolve_path(self.root, relative)


def resolve_path(root: Path, relative: str) -> Path:
    """Resolve a path written in a pipeline against the project root (never the cwd)."""
    candidate = Path(relative).expanduser()
    return candidate if candidate.is_absolute() else (root / candidate).resolve()


def project_file(root: Path, relative: str, kind: str) -> tuple[Path, str | None]:
    """Resolve a template or SQL file of a pipeline, and say why it may not be used.

    Returns the resolved path and ``None``, or a problem message when the name
    holds a control character, or when the file (after ``..`` and symbolic
    links) lies outside the project folder ``root``.  Pipeline files are
    reviewed like code, but a report is mailed to people who did not write
    it: a template or query may read nothing from the rest of the machine.
    The message never quotes the file's content (it is not read here).
    """
    if has_control_characters(relative):
        return root, (
            f'the {kind} name "{printable(relative, keep_newlines=False)}" holds a control '
            "character or a line break: rename the file"
        )
    # os.path rather than pathlib: this runs for every SQL file of every pipeline,
    # and pathlib's parsing cost more than the resolving itself.
    real = _realpath(os.path.join(root, os.path.expanduser(relative)))
    resolved = Path(real)
    project = _resolved_root(str(root))
    inside = str(project)
    if not (real == inside or real.startswith(inside.rstrip(os.sep) + os.sep)):
        return resolved, (
            f'{kind} "{relative}" is outside the project folder {project} '
            f"(it resolves to {resolved}): {kind}s must be inside the project folder"
        )
    return resolved, None


#: Resolved folders of one load (see :func:`_one_load`); None outside a load.
_FOLDERS: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "eil_resolved_folders", default=None
)


@contextlib.contextmanager
def _one_load() -> Iterator[None]:
    """Resolve each folder once while loading a set of files, not once per file.

    The memo lives for one load only, so a folder replaced by a symbolic link
    between two loads (a reload) is resolved again.
    """
    token = _FOLDERS.set({})
    try:
        yield
    finally:
        _FOLDERS.reset(token)


def _realpath(path: str) -> str:
    """``os.path.realpath``, with the folder part resolved once per load.

    Resolving walks every component with ``lstat``; 1,000 pipelines whose SQL
    files share one folder walked it 1,000 times.  The last component is still
    checked each time, and resolved fully when it is a link.
    """
    memo = _FOLDERS.get()
    # ".." after a link means the link's parent, so such paths take the full walk.
    if memo is None or ".." in path.split(os.sep) or os.path.basename(path) in ("", "."):
        return os.path.realpath(path)
    folder, name = os.path.split(path)
    real_folder = memo.get(folder)
    if real_folder is None:
        real_folder = memo[folder] = os.path.realpath(folder)
    joined = os.path.join(real_folder, name)
    return os.path.realpath(joined) if os.path.islink(joined) else joined


@functools.lru_cache(maxsize=8)
def _resolved_root(root: str) -> Path:
    # Once per root, not once per SQL file: resolving walks every component.
    return Path(root).resolve()


def _file_name_problem(file: Path) -> tuple[str, str] | None:
    """A pipeline file whose name holds a control character or a line break."""
    if has_control_characters(file.name):
        return (
            "",
            f'the file name "{printable(file.name, keep_newlines=False)}" holds a control '
            "character or a line break: rename the file",
        )
    return None


def project_root_for(path: Path) -> Path:
    """The project root for a pipelines folder or a single pipeline file.

    It is the parent of the pipelines folder, so ``eil-run /srv/bi/pipelines``
    reads ``data/…`` from ``/srv/bi`` whatever the working folder is.
    """
    path = path.resolve()
    folder = path.parent if path.is_file() else path
    return folder.parent


def pipeline_files(path: Path) -> list[Path]:
    """The pipeline files a PATH argument names: one file, or a folder's ``*.toml``."""
    if not path.exists():
        raise EilError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix != ".toml":
            raise EilError(f"{path}: a pipeline file must end in .toml")
        return [path.resolve()]
    # The folder is resolved once, not each file: a file that is a symbolic link
    # is still resolved (its target's stem names the pipeline).
    folder = path.resolve()
    with os.scandir(folder) as entries:
        files = sorted(
            Path(entry.path).resolve() if entry.is_symlink() else folder / entry.name
            for entry in entries
            if entry.name.endswith(".toml") and entry.is_file()
        )
    if not files:
        hint = ""
        if (path / ".eil").is_dir():
            # A reports folder (it holds the run ledger) given where the pipelines go.
            hint = (
                "; it is a reports folder: give the pipelines folder, and this one with --reports"
            )
        raise EilError(f"{path}: no pipeline files (*.toml) in this folder{hint}")
    return files


def load_pipelines(
    path: Path | str,
    *,
    env: Mapping[str, str] | None = None,
    check_templates: bool = True,
) -> list[Pipeline]:
    """Load and validate every pipeline that PATH names.

    Raises :class:`ConfigErrors` holding every problem of every file, after
    reading them all.  ``env`` is the environment for ``${VAR}`` references
    (default ``os.environ``).
    """
    pipelines, errors = load_pipelines_lenient(path, env=env, check_templates=check_templates)
    if errors:
        raise ConfigErrors(errors)
    return pipelines


def load_pipelines_lenient(
    path: Path | str,
    *,
    env: Mapping[str, str] | None = None,
    check_templates: bool = True,
) -> tuple[list[Pipeline], list[ConfigError]]:
    """Every valid pipeline that PATH names, and the problems of the others.

    A bad file never stops the good ones: the scheduler, ``--once`` and
    ``list`` run or show the valid pipelines and report the invalid files.  Of
    two files with the same pipeline name, the first (by file name) is valid
    and the second is reported.  Raises :class:`EilError` only when PATH names
    no pipeline files at all.
    """
    path = Path(path)
    files = pipeline_files(path)
    root = project_root_for(path)
    environment = os.environ if env is None else env
    pipelines: list[Pipeline] = []
    errors: list[ConfigError] = []
    cache = cache_folder(root)
    PARSED.read_file(cache)
    with _one_load():
        for file in files:
            try:
                pipelines.append(
                    _load_resolved(
                        file, root=root, env=environment, check_templates=check_templates
                    )
                )
            except ConfigError as exc:
                errors.append(exc)
    PARSED.write_file(cache, files)
    seen: dict[str, Pipeline] = {}
    valid: list[Pipeline] = []
    for pipeline in pipelines:
        if pipeline.name in seen:
            first = seen[pipeline.name]
            errors.append(
                ConfigError(
                    pipeline.file,
                    shown=pipeline.display_path,
                    problems=[
                        (
                            "name" if pipeline.spec.name else "",
                            f'duplicate pipeline name "{pipeline.name}": '
                            f"{first.display_path} has the same name",
                        )
                    ],
                )
            )
        else:
            seen[pipeline.name] = pipeline
            valid.append(pipeline)
    if any(upstream_names(p) for p in valid):
        valid = _without_bad_dependencies(valid, errors, files)
    errors.sort(key=lambda e: str(e.file))
    return valid, errors


def _without_bad_dependencies(
    valid: list[Pipeline], errors: list[ConfigError], files: list[Path]
) -> list[Pipeline]:
    """Move pipelines whose ``after`` is wrong (unknown name, cycle) to ``errors``."""
    valid_files = {p.file for p in valid}
    # pipeline_files() resolved them already.
    broken = {f.stem for f in files if f not in valid_files}
    problems = dependency_problems(valid, broken)
    for pipeline in valid:
        if pipeline.file in problems:
            errors.append(
                ConfigError(pipeline.file, problems[pipeline.file], shown=pipeline.display_path)
            )
    return [p for p in valid if p.file not in problems]


def load_pipeline(
    file: Path | str,
    *,
    root: Path | None = None,
    env: Mapping[str, str] | None = None,
    check_templates: bool = True,
) -> Pipeline:
    """Load one pipeline file; raise :class:`ConfigError` listing all its problems."""
    file = Path(file).resolve()
    root = project_root_for(file) if root is None else root
    return _load_resolved(file, root=root, env=env, check_templates=check_templates)


def _load_resolved(
    file: Path, *, root: Path, env: Mapping[str, str] | None, check_templates: bool
) -> Pipeline:
    """:func:`load_pipeline` of a path that is absolute and resolved already."""
    shown = display_path(file, resolved=True)
    raw = read_toml(file, shown, cache=PARSED)
    problems = expand_env(raw, os.environ if env is None else env)
    spec: PipelineSpec | None = None
    try:
        spec = PipelineSpec.model_validate(raw, context={"references_checked": True})
    except ValidationError as exc:
        problems.extend(pydantic_problems(exc, raw, PipelineSpec))
    # Cross-references are checked on the raw data too, so they are reported
    # alongside type errors instead of after the user fixes those.
    problems.extend(p for p in reference_problems(raw) if p not in problems)
    if raw.get("deliver") or raw.get("alert"):
        # Imported here: the delivery settings' models cost start-up time that
        # pipelines without deliveries (and `eil-run validate` on them) need not pay.
        from .project import delivery_problems

        unset = frozenset(k for k, _ in problems)
        problems.extend(p for p in delivery_problems(raw, skip=unset) if p not in problems)
    if isinstance(raw.get("source"), str):
        from .project import source_problems  # eil.toml's connections

        problems.extend(source_problems(raw, root, os.environ if env is None else env))
    calendar: CalendarDefinition | None = None
    schedule = raw.get("schedule")
    if isinstance(schedule, dict) and schedule.get("calendar") is not None:
        from .project import resolve_schedule_calendar  # eil.toml's calendars

        calendar, calendar_problems = resolve_schedule_calendar(
            raw, root, os.environ if env is None else env
        )
        problems.extend(p for p in calendar_problems if p not in problems)
    stem_problem = _file_name_problem(file) or _name_problem(file, raw)
    if stem_problem:
        problems.append(stem_problem)
    if spec is None or problems:
        raise ConfigError(file, _dedupe(problems), shown=shown)

    sql: dict[str, str] = {}
    for query_name, query in spec.queries.items():
        if query.file is not None:
            sql_path, outside = project_file(root, query.file, "SQL file")
            if outside:
                problems.append((f"queries.{query_name}.file", outside))
                continue
            try:
                sql[query_name] = sql_path.read_text(encoding="utf-8")
            except FileNotFoundError:
                problems.append(
                    (
                        f"queries.{query_name}.file",
                        f"SQL file not found: {query.file} (looked for {sql_path})",
                    )
                )
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(
                    (f"queries.{query_name}.file", f"cannot read SQL file {query.file}: {exc}")
                )
        else:
            sql[query_name] = query.sql or ""
        if query_name in sql and not sql[query_name].strip():
            problems.append((f"queries.{query_name}", "the SQL is empty"))

    name = spec.name or file.stem
    pipeline = Pipeline(name=name, file=file, root=root, spec=spec, sql=sql, calendar=calendar)
    if spec.report.template:
        template_path, outside = project_file(root, spec.report.template, "template")
        if outside:
            problems.append(("report.template", outside))
        elif not template_path.is_file():
            problems.append(
                (
                    "report.template",
                    f"template not found: {spec.report.template} (looked for {template_path})",
                )
            )
        elif check_templates:
            problems.extend(_template_problems(pipeline, template_path))
    if problems:
        raise ConfigError(file, problems, shown=shown)
    return pipeline


#: Template syntax checks by (path, shown name, file key): a template shared by many
#: pipelines is compiled once per process, not once per pipeline.
_TEMPLATE_CHECKS: dict[tuple[str, str, Any], list[tuple[str, str]]] = {}
_TEMPLATE_CHECKS_LOCK = threading.Lock()


def _template_problems(pipeline: Pipeline, template_path: Path) -> list[tuple[str, str]]:
    from ..errors import RenderError
    from ..render import compile_template, load_template

    shown = display_path(template_path)
    key = file_key(template_path)
    memo = (str(template_path), shown, key)
    with _TEMPLATE_CHECKS_LOCK:
        known = _TEMPLATE_CHECKS.get(memo)
    if known is not None:
        return list(known)
    problems: list[tuple[str, str]] = []
    try:
        compile_template(load_template(template_path, display_name=shown))
    except RenderError as exc:
        problems = [("report.template", str(exc))]
    # Remembered only when the file is as it was before it was read (an edit
    # meanwhile changes its key), and not changed within the last clock tick or so.
    if key is not None and key[1] <= time.time_ns() - RACY_NS and file_key(template_path) == key:
        with _TEMPLATE_CHECKS_LOCK:
            if len(_TEMPLATE_CHECKS) >= 1000:
                _TEMPLATE_CHECKS.clear()
            _TEMPLATE_CHECKS[memo] = problems
    return list(problems)


def _name_problem(file: Path, raw: dict[str, Any]) -> tuple[str, str] | None:
    if "name" in raw:
        return None  # the model checks an explicit name
    if not re.match(NAME_PATTERN, file.stem):
        return (
            "",
            f'the file name "{file.stem}" is not a valid pipeline name: use lowercase letters, '
            'digits, "_" and "-", starting with a letter or digit (or set a "name" key)',
        )
    return None
