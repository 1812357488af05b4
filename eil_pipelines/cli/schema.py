"""``eil-run schema``: the JSON Schema of the pipeline file, for editors and CI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import UsageError
from .common import Parser as _Parser
from .exitcodes import EXIT_CONFIG, EXIT_OK


def build_schema_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run schema``."""
    parser = _Parser(
        prog="eil-run schema",
        description="Print the JSON Schema of a pipeline file (generated from the same models "
        "eil-run validates with), with a description and an example for every key.  Point "
        "your editor at it: see docs/editor.md.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--output",
        metavar="FILE",
        help="write the schema to FILE instead of printing it (e.g. pipelines/pipeline.schema.json)",
    )
    where.add_argument(
        "--check",
        metavar="FILE",
        help="exit 2 when FILE is not the schema this version generates (for CI)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    return parser


def cmd_schema(options: argparse.Namespace) -> int:
    """Print, write or check the schema."""
    from ..spec.schema import schema_text

    text = schema_text()
    if options.check:
        path = Path(options.check)
        try:
            current = path.read_text(encoding="utf-8")
        except OSError:
            current = None
        if current != text:
            state = "is missing" if current is None else "is out of date"
            print(
                f"eil-run schema: {path} {state}; regenerate it with: "
                f"eil-run schema --output {path}",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        print(f"{path} is up to date.")
        return EXIT_OK
    if options.output:
        path = Path(options.output)
        if path.is_dir():
            raise UsageError(f"eil-run schema: --output {path} is a folder; give a file name")
        from ..outputs import atomic_write_text

        try:
            unchanged = path.read_text(encoding="utf-8") == text
        except OSError:
            unchanged = False
        if unchanged:
            print(f"{path} is up to date.")
            return EXIT_OK
        atomic_write_text(path, text)
        print(f"wrote {path}")
        return EXIT_OK
    sys.stdout.write(text)
    return EXIT_OK
