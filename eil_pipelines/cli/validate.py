"""``eil-run validate [PATH]``: load everything, run nothing."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import ConfigErrors, EilError
from .common import Parser, add_debug, add_path, add_target
from .exitcodes import EXIT_CONFIG, EXIT_OK


def build_validate_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run validate [PATH]``."""
    parser = Parser(
        prog="eil-run validate",
        description="Check every pipeline file in PATH without running queries: keys and types, "
        "schedules, SQL and template files, template syntax.  Prints every problem.  "
        "Exit 0 when all are valid, 2 otherwise.",
    )
    add_path(parser)
    parser.add_argument(
        "--deep",
        action="store_true",
        help="also prepare each query against its source with the run parameters for now, "
        "check metric and chart columns against the query results, and check the names "
        "templates use (imports DuckDB; reads no rows)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="json: a list of {file, key, message} on stdout, for CI annotations",
    )
    add_target(parser)
    add_debug(parser)
    return parser


def cmd_validate(options: argparse.Namespace) -> int:
    """Print every problem (or each valid file); exit 0 when all are valid, 2 otherwise.

    ``--deep`` also prepares each query and checks columns and template names
    (see :mod:`eil_pipelines.run.deep`); ``--format json`` prints the problems
    as ``[{"file", "key", "message"}]`` for CI annotations.
    """
    from ..run.deep import check_path

    try:
        pipelines, errors = check_path(Path(options.path), deep=options.deep)
    except EilError as exc:
        if options.format != "json":
            raise
        row = {"file": options.path, "key": "", "message": str(exc)}
        print(json.dumps([row], indent=2, ensure_ascii=False))
        return EXIT_CONFIG
    if options.format == "json":
        rows = [
            {"file": error.shown, "key": key, "message": message}
            for error in errors
            for key, message in error.problems
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_CONFIG if rows else EXIT_OK
    if errors:
        raise ConfigErrors(errors)  # main() prints each problem and the count; exit 2
    for pipeline in pipelines:
        state = "" if pipeline.spec.enabled else " (disabled)"
        print(f"ok  {pipeline.display_path}{state}")
    checked = (
        " (deep: queries prepared, columns and template names checked)" if options.deep else ""
    )
    print(f"\n{len(pipelines)} pipeline{'s' if len(pipelines) != 1 else ''} valid{checked}.")
    return EXIT_OK
