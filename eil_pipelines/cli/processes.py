"""``eil-run PATH --processes N``: the supervisor's side of the command line."""

from __future__ import annotations

import argparse
import logging
import os
import threading
from pathlib import Path

from .exitcodes import EXIT_CONFIG, EXIT_COULD_NOT_RUN, EXIT_OK
from .schedule import node_option
from .signals import stop_on_signals, taker


def supervise(options: argparse.Namespace, reports: Path, log_file: Path | None) -> int:
    """``--processes N``: start N scheduler processes (:mod:`eil_pipelines.app.processes`)
    and keep them running until a signal."""
    from ..app.processes import Supervisor, run_supervised

    count = options.processes
    supervisor = Supervisor(
        count,
        lambda index: process_command(options, reports, log_file, index),
        fatal=frozenset({EXIT_CONFIG, EXIT_COULD_NOT_RUN}),
    )
    reload_asked = threading.Event()
    log = logging.getLogger("eil_pipelines.scheduler")
    with stop_on_signals(threading.Event(), on_reload=reload_asked.set) as stop:
        log.info(
            "supervisor running (pid %d) with %d scheduler processes; Ctrl-C stops them",
            os.getpid(),
            count,
        )
        run_supervised(supervisor, stop, on_reload=taker(reload_asked))
        log.info(
            "stopping %d scheduler processes: each waits up to %gs for its runs in flight",
            count,
            options.grace,
        )
        clean = supervisor.stop(options.grace)
    log.info(
        "stopped" if clean else "stopped; a process was killed, its runs recorded as abandoned"
    )
    return EXIT_OK if supervisor.failed is None else supervisor.failed


def process_command(
    options: argparse.Namespace, reports: Path, log_file: Path | None, index: int
) -> list[str]:
    """The command line of scheduler process ``index``: this one's options, its own
    log file and node name, and a share of the chart processes."""
    from ..app.processes import process_log_file, this_command
    from ..charts.processes import default_chart_processes

    own_log = process_log_file(log_file, index)
    charts = options.chart_processes
    if charts is None:  # the machine's CPUs, shared between the processes
        charts = default_chart_processes(max(1, (os.cpu_count() or 1) // options.processes))
    command = [
        *this_command(),
        str(Path(options.path).resolve()),
        "--reports",
        str(reports),
        "--workers",
        str(options.workers),
        "--chart-processes",
        str(charts),
        "--grace",
        repr(options.grace),
        "--log-format",
        options.log_format,
        "--log-file",
        "none" if own_log is None else str(own_log),
        "--processes",
        "1",
    ]
    if options.node:
        command += ["--node", f"{node_option(options)}-{index}"]
    if getattr(options, "target", None):
        command += ["--target", options.target]
    if options.debug:
        command.append("--debug")
    return command
