"""Loading pipeline files: TOML → validated :class:`Pipeline`, every problem at once.

Pydantic finds every type problem in a file in one pass; this module turns
them into ``file: key.path: message`` lines a person can act on, and adds the
checks a model cannot make alone: cross-references, files that must exist,
names unique within a folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import ConfigError, ConfigErrors, EilError
from ..text import has_control_characters, printable
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
    overridden: tuple[str, ...] = ()
    """Parameters set for this run only (``--param``), recorded in the manifest;
    see :func:`eil_pipelines.spec.overrides.with_params`."""

    @property
    def display_path(self) -> str:
        """The file as the user should see it: relative to the working folder when inside it."""
        return display_path(self.file)

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
    resolved = (root / Path(relative).expanduser()).resolve()
    project = root.resolve()
    if not resolved.is_relative_to(project):
        return resolved, (
            f'{kind} "{relative}" is outside the project folder {project} '
            f"(it resolves to {resolved}): {kind}s must be inside the project folder"
        )
    return resolved, None


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
    files = sorted(p.resolve() for p in path.glob("*.toml") if p.is_file())
    if not files:
        raise EilError(f"{path}: no pipeline files (*.toml) in this folder")
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
    for file in files:
        try:
            pipelines.append(
                load_pipeline(file, root=root, env=environment, check_templates=check_templates)
            )
        except ConfigError as exc:
            errors.append(exc)
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
    errors.sort(key=lambda e: str(e.file))
    return valid, errors


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
    shown = display_path(file)
    raw = read_toml(file, shown)
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
    pipeline = Pipeline(name=name, file=file, root=root, spec=spec, sql=sql)
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


def _template_problems(pipeline: Pipeline, template_path: Path) -> list[tuple[str, str]]:
    from ..errors import RenderError
    from ..render import compile_template, load_template

    try:
        compile_template(load_template(template_path, display_name=display_path(template_path)))
    except RenderError as exc:
        return [("report.template", str(exc))]
    return []


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
