"""The table of ``eil-run``'s subcommands, each imported only when it is used."""

from __future__ import annotations

#: Subcommands: name -> "module:parser_builder:handler", imported only when used so
#: each command's dependencies stay off the others' start-up path.  A new command
#: is a module eil_pipelines/cli/<name>.py and one line here.
COMMANDS = {
    "validate": "eil_pipelines.cli.validate:build_validate_parser:cmd_validate",
    "list": "eil_pipelines.cli.listing:build_list_parser:cmd_list",
    "history": "eil_pipelines.cli.history:build_history_parser:cmd_history",
    "status": "eil_pipelines.cli.status:build_status_parser:cmd_status",
    "send": "eil_pipelines.cli.send:build_send_parser:cmd_send",
    "new": "eil_pipelines.cli.new:build_new_parser:cmd_new",
    "schema": "eil_pipelines.cli.schema:build_schema_parser:cmd_schema",
    "backfill": "eil_pipelines.cli.backfill:build_backfill_parser:cmd_backfill",
    "explain": "eil_pipelines.cli.explain:build_explain_parser:cmd_explain",
    "serve": "eil_pipelines.cli.serve:build_serve_parser:cmd_serve",
    "connections": "eil_pipelines.cli.connections:build_connections_parser:cmd_connections",
    "graph": "eil_pipelines.cli.graph:build_graph_parser:cmd_graph",
    "ledger": "eil_pipelines.cli.ledger:build_ledger_parser:cmd_ledger",
    "diff": "eil_pipelines.cli.diff:build_diff_parser:cmd_diff",
    "dev": "eil_pipelines.cli.dev:build_dev_parser:cmd_dev",
}
#: ``eil-run [--once] [PATH]``: the scheduler, or one run of each pipeline.
MAIN = "eil_pipelines.cli.once:build_main_parser:cmd_main"
