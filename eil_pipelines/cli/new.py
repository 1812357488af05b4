"""``eil-run new NAME``: a new pipeline file and starter template that run at once."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import Parser, add_debug
from .exitcodes import EXIT_OK


def build_new_parser() -> argparse.ArgumentParser:
    """The parser for ``eil-run new NAME``."""
    parser = Parser(
        prog="eil-run new",
        description="Create pipelines/NAME.toml and a starter template, templates/NAME.md.j2, "
        "that render a report at once (from the sample data when the project has it).  "
        "Never overwrites a file.",
    )
    parser.add_argument(
        "name", metavar="NAME", help='the pipeline name: lowercase letters, digits, "_" and "-"'
    )
    parser.add_argument(
        "--query-file",
        metavar="FILE",
        help="use this existing SQL file as the pipeline's query instead of the example queries",
    )
    parser.add_argument(
        "--cron",
        metavar="EXPR",
        help='schedule with this cron expression, e.g. "0 7 * * MON-FRI" '
        '(default: daily = "07:00")',
    )
    parser.add_argument(
        "--dir",
        default="pipelines",
        metavar="DIR",
        help="the pipelines folder to write into (default: pipelines/); its parent is the "
        "project root",
    )
    add_debug(parser)
    return parser


def cmd_new(options: argparse.Namespace) -> int:
    """Write the scaffold and say what to edit next."""
    from ..app.new import SAMPLE_DATA, create_pipeline
    from ..spec.loader import display_path

    folder = Path(options.dir)
    made = create_pipeline(options.name, folder, cron=options.cron, query_file=options.query_file)
    name = options.name
    shown_file = display_path(made.pipeline_file.resolve())
    shown_folder = display_path(folder.resolve())
    shown_template = display_path(made.template_file.resolve())
    if made.query_file:
        edit = f"the SQL in {options.query_file}"
    elif made.sample_data:
        edit = f"the queries in {shown_file} (they read the sample data, {SAMPLE_DATA})"
    else:
        edit = f"the queries in {shown_file} (they hold placeholder numbers)"
    print(f"Created {shown_file} and {shown_template}.")
    print()
    print("Next steps:")
    print(f"  1. Edit {edit}")
    print(f"     and the report's layout in {shown_template}.")
    print("  2. Check everything, the SQL against the data included:")
    print(f"       eil-run validate --deep {shown_file}")
    print("  3. Render it once, now (reports/ in the project root):")
    print(f"       eil-run --once --only {name} {shown_folder}")
    print("  4. See when it runs and what each run covers:")
    print(f"       eil-run explain {shown_file}")
    print("  5. Run it on its schedule:")
    print(f"       eil-run {shown_folder}")
    if not made.schema_beside:
        print()
        print("Editor completion and checking (see docs/editor.md):")
        print(f"  eil-run schema --output {folder / 'pipeline.schema.json'}")
    return EXIT_OK
