"""The text of ``eil-run --help``: what the tool is, its commands, its exit codes."""

DESCRIPTION = """\
Executive reports as code: each TOML file in PATH (default pipelines/) is a
report; eil-run runs them on their schedules, or once with --once.

commands:
  eil-run [PATH]                 run the scheduler in the foreground
  eil-run --once [PATH]          run every enabled pipeline once, now, and exit
  eil-run validate [PATH]        check every pipeline file without running queries
  eil-run list [PATH]            schedules in words, next fire times, last status
  eil-run history [PATH]         recent runs from the run ledger
  eil-run status [PATH]          is the scheduler alive; failing pipelines (a health check)
  eil-run send FILE --to ADDR    mail a pipeline's latest report to ADDR, for testing
  eil-run new NAME               a new pipeline file and template that run at once
  eil-run explain FILE           a schedule's next fire times, periods, DST notes
  eil-run backfill FILE --from DATE --to DATE   past reports, as scheduled then
  eil-run schema                 the pipeline file's JSON Schema, for editors
  eil-run serve [PATH]           serve the reports folder on 127.0.0.1 (--port N)
  eil-run connections [PATH]     test the connections named in eil.toml
  eil-run graph [PATH]           which pipelines wait for which ([schedule] after)
  eil-run diff [PATH] --base REV what a change does to the reports (0 same, 1 changed)
  eil-run dev [PATH]             live preview on 127.0.0.1, reloaded on every edit
  eil-run ledger init|migrate|check [PATH]   the Postgres ledger several runners share

PATH is a pipelines folder or a single pipeline file.  Exit status: 0 success,
1 a run failed, 2 invalid configuration or arguments, 3 could not run (ledger
locked, disk full or read-only, another backfill running).
"""
