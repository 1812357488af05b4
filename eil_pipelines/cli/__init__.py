"""The ``eil-run`` command: one thin module per command, dispatched lazily.

Each command module parses its options, calls one use case of
:mod:`eil_pipelines.app` and prints.  Heavy libraries (pandas, matplotlib,
duckdb) load only with the commands that run pipelines, so ``--help`` and
``validate`` stay fast.  Errors become exit codes through one table
(:mod:`.exitcodes`, documented in docs/cli.md).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ConfigErrors, UsageError
from ..text import printable
from .exitcodes import EXIT_FAILED, exit_code

#: Subcommands: name -> "module:parser_builder:handler", imported only when used (each
#: command's dependencies stay off the others' start-up); a new one is a module and a line.
COMMANDS = {
    "validate": "eil_pipelines.cli.validate:build_validate_parser:cmd_validate",
    "list": "eil_pipelines.cli.listing:build_list_parser:cmd_list",
    "history": "eil_pipelines.cli.history:build_history_parser:cmd_history",
    "send": "eil_pipelines.cli.send:build_send_parser:cmd_send",
    "new": "eil_pipelines.cli.new:build_new_parser:cmd_new",
    "schema": "eil_pipelines.cli.schema:build_schema_parser:cmd_schema",
    "backfill": "eil_pipelines.cli.backfill:build_backfill_parser:cmd_backfill",
    "explain": "eil_pipelines.cli.explain:build_explain_parser:cmd_explain",
    "serve": "eil_pipelines.cli.serve:build_serve_parser:cmd_serve",
    "connections": "eil_pipelines.cli.connections:build_connections_parser:cmd_connections",
    "graph": "eil_pipelines.cli.graph:build_graph_parser:cmd_graph",
    "diff": "eil_pipelines.cli.diff:build_diff_parser:cmd_diff",
    "dev": "eil_pipelines.cli.dev:build_dev_parser:cmd_dev",
}
#: ``eil-run [--once] [PATH]``: the scheduler, or one run of each pipeline.
MAIN = "eil_pipelines.cli.once:build_main_parser:cmd_main"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``eil-run``; returns the exit status (see :mod:`.exitcodes`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if args[:1] == ["--version"]:
        print(f"eil-run {_version()}")
        return 0
    try:
        if args and args[0] not in COMMANDS:
            _check_command(args[0])
        target = COMMANDS[args[0]] if args and args[0] in COMMANDS else MAIN
        rest = args[1:] if target is not MAIN else args
        module_name, builder, handler = target.split(":")
        module = importlib.import_module(module_name)
        options = getattr(module, builder)().parse_args(rest)
        with _target_selected(options):  # --target NAME, for the commands that have it
            return getattr(module, handler)(options)
    except ConfigErrors as exc:
        from .printing import print_config_errors

        print_config_errors(exc, sys.stderr)
        return exit_code(exc)
    except UsageError as exc:
        print(printable(str(exc)), file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt as exc:
        print("eil-run: interrupted", file=sys.stderr)
        return exit_code(exc)
    except SystemExit as exc:  # argparse's --help
        return int(exc.code or 0)
    except Exception as exc:
        code = exit_code(exc)
        if code != EXIT_FAILED:  # an EilError kind, or the machine refusing a write
            from ..app.errors import could_not_run

            text = str(could_not_run(exc) or exc)
            text = printable(text)  # a path or a value may hold terminal escapes
            print(text if text.startswith("eil-run") else f"eil-run: {text}", file=sys.stderr)
            return code
        if debug:
            raise
        print(
            f"eil-run: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in eil-run; run again with --debug to see the traceback.",
            file=sys.stderr,
        )
        return EXIT_FAILED


def _target_selected(options: Any) -> contextlib.AbstractContextManager[None]:
    """While a command runs, ``--target NAME`` has the effect of ``EIL_TARGET=NAME``
    (checked first: an unknown target is exit 2 naming eil.toml and the known ones)."""
    if not getattr(options, "target", None):
        return contextlib.nullcontext()
    from ..app.connections import selected_target

    path = getattr(options, "path", None) or getattr(options, "file", None) or "pipelines"
    try:
        return selected_target(Path(path), options.target)
    except ConfigError as exc:
        raise ConfigErrors([exc]) from None


def _version() -> str:
    """The installed distribution's version (read only when asked: it costs an import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("eil-pipelines")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _check_command(word: str) -> None:
    """Refuse a word that looks like a mistyped subcommand rather than a PATH.

    A word with a path separator or a suffix, or naming anything that exists,
    is a PATH; otherwise, close to a subcommand, it is a typo (a usage error).
    """
    if word.startswith("-") or "/" in word or os.sep in word or "." in word:
        return
    if os.path.lexists(word):
        return
    import difflib

    close = difflib.get_close_matches(word, COMMANDS, n=1, cutoff=0.6)
    if close:
        raise UsageError(f'eil-run: unknown command "{word}"; did you mean "{close[0]}"?')


def entry() -> None:
    """The ``eil-run`` console script: :func:`main`, then a fast exit.

    Tearing down a thousand imported modules (pandas, matplotlib) takes
    about a quarter of a second and does nothing useful once every file is
    written and every stream flushed, so the process ends with ``os._exit``.
    """
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        logging.shutdown()
    os._exit(code)
