"""What several commands share: the parser class, PATH, the reports folder, moments.

Logging is in :mod:`.logs`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ConfigErrors, UsageError

DEFAULT_PATH = "pipelines"


class Parser(argparse.ArgumentParser):
    """An argument parser that raises :class:`UsageError` (exit 2) instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}\nTry '{self.prog} --help'.")


def add_path(parser: argparse.ArgumentParser, *, target: bool = False) -> None:
    """The optional ``PATH`` argument: a pipelines folder or one pipeline file; with
    ``target``, also ``--target NAME`` (the commands that read connections)."""
    parser.add_argument(
        "path",
        nargs="?",
        default=DEFAULT_PATH,
        metavar="PATH",
        help="a pipelines folder or one pipeline file (default: pipelines/)",
    )
    if target:
        add_target(parser)


def add_debug(parser: argparse.ArgumentParser) -> None:
    """``--debug``: every command has it."""
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")


def add_target(parser: argparse.ArgumentParser) -> None:
    """``--target NAME``: use ``[targets.NAME]`` of eil.toml, as ``EIL_TARGET`` does."""
    text = "use the [targets.NAME] connection overrides of eil.toml (default: $EIL_TARGET)"
    parser.add_argument("--target", metavar="NAME", help=text)


def reports_dir_for(options: argparse.Namespace) -> Path:
    """``--reports``, else ``[storage] reports`` of eil.toml when it names a folder,
    else ``reports/`` in the project root."""
    if options.reports:
        return Path(options.reports).resolve()
    from ..app.storage import default_reports_dir
    from ..spec.loader import project_root_for

    return default_reports_dir(project_root_for(Path(options.path)))


def check_counts(options: argparse.Namespace) -> None:
    """``--workers`` and ``--chart-processes`` in range."""
    if options.workers < 1:
        raise UsageError("eil-run: --workers must be at least 1")
    if options.chart_processes is not None and options.chart_processes < 0:
        raise UsageError("eil-run: --chart-processes must be 0 or more")


def load_one(path_text: str, command: str) -> Any:
    """Load the single pipeline file a command names; UsageError for anything else.

    Problems in the file itself are raised as ConfigErrors (printed with the
    count, exit 2), like ``eil-run validate`` prints them.
    """
    from ..spec.loader import load_pipeline  # pydantic: off the path of --help

    path = Path(path_text)
    if path.is_dir():
        raise UsageError(
            f"eil-run {command}: {path_text} is a folder; give one pipeline file, "
            f"such as {Path(path_text) / 'daily_sales.toml'}"
        )
    if not path.is_file():
        raise UsageError(f"eil-run {command}: {path_text}: no such pipeline file")
    if path.suffix != ".toml":
        raise UsageError(f"eil-run {command}: {path_text}: a pipeline file must end in .toml")
    try:
        return load_pipeline(path)
    except ConfigError as exc:
        raise ConfigErrors([exc]) from None


def with_param_options(pipelines: list, param_options: list[str] | None, command: str) -> list:
    """The pipelines with ``--param NAME=VALUE`` values; a malformed option or a name no
    pipeline declares is a usage error (exit 2), a value of the wrong type a ConfigError."""
    if not param_options:
        return pipelines
    from ..spec.overrides import parse_param_options, with_params_each

    try:
        return with_params_each(pipelines, parse_param_options(param_options))
    except ValueError as exc:
        raise UsageError(f"{command}: {exc}") from None
