"""``eil-run [PATH]``: the long-running scheduler, in the foreground."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..spec.loader import project_root_for
from ..spec.project import load_project_settings
from .common import check_counts, reports_dir_for
from .exitcodes import EXIT_OK
from .logs import configure_daemon_logging, log_file_for
from .signals import stop_on_signals, taker

if TYPE_CHECKING:
    from ..app.processes import ProcessRole

#: The scheduler's log, relative to the reports folder (``--log-file`` moves it).
LOG_FILE = Path(".eil") / "scheduler.log"
#: The longest ``--node`` name.
NODE_MAX = 100


def cmd_schedule(options: argparse.Namespace) -> int:
    """Start the scheduler service; the first Ctrl-C/SIGTERM stops it after the
    runs in flight (up to ``--grace``), a second one exits at once; SIGHUP reloads.

    With ``--processes N`` (N > 1) this process supervises N scheduler processes
    (:mod:`eil_pipelines.app.processes`) and runs nothing itself.
    """
    from ..app.processes import role_from_env

    check_counts(options)
    if options.grace < 0:
        raise UsageError("eil-run: --grace must be 0 or more seconds")
    if options.processes < 1:
        raise UsageError("eil-run: --processes must be at least 1")
    if options.deliver:
        raise UsageError("eil-run: --deliver goes with --once (the scheduler always delivers)")
    suffix = len(f"-{options.processes}") if options.processes > 1 else 0
    if options.node and len(node_option(options) or "") + suffix > NODE_MAX:
        raise UsageError(
            f"eil-run: with --processes {options.processes}, --node must be at most "
            f"{NODE_MAX - suffix} characters (each process adds -1, -2 ...)"
        )
    # Validate before writing anything: an invalid folder (or a mistyped PATH)
    # must not leave a reports folder with a log behind.  start() loads again.
    from ..app.service import validate_project

    validate_project(Path(options.path))
    reports = reports_dir_for(options)
    # By default in the engine's own folder, which `serve` never serves (the log names
    # files and errors); the project's secrets are kept out of every line.
    log_file = log_file_for(options.log_file, reports, LOG_FILE)
    secrets = load_project_settings(project_root_for(Path(options.path))).secrets()
    role = role_from_env(os.environ)
    process = None if role is None else role.index
    configure_daemon_logging(options.log_format, log_file, secrets, process=process)
    if options.processes > 1 and role is None:
        from .processes import supervise

        return supervise(options, reports, log_file)
    return _schedule(options, reports, role)


def _schedule(options: argparse.Namespace, reports: Path, role: ProcessRole | None) -> int:
    """One scheduler process, in the foreground until a signal (or its supervisor) stops it."""
    from ..app.processes import follow_supervisor
    from ..app.service import SchedulerService, run_forever

    service = SchedulerService(
        Path(options.path),
        reports_dir=reports,
        workers=options.workers,
        chart_processes=options.chart_processes,
        node=node_option(options),
        clock=_clock(),
        role=role,
    )
    reload_asked = threading.Event()
    log = logging.getLogger("eil_pipelines.scheduler")
    with stop_on_signals(threading.Event(), on_reload=reload_asked.set) as stop:
        follow_supervisor(stop, os.environ)
        service.start()
        where = "" if role is None else f", process {role.index} of {role.count}"
        log.info("scheduler running (pid %d%s); Ctrl-C stops it", os.getpid(), where)
        run_forever(service, stop, on_reload=taker(reload_asked))
        log.info("stopping: waiting up to %gs for runs in flight", options.grace)
        finished = service.stop(options.grace)
    log.info("stopped" if finished else "stopped; unfinished runs recorded as abandoned")
    if not finished:
        # The grace period is over: don't let the interpreter's exit wait for the
        # worker threads of the abandoned runs (it joins them, however long they take).
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_OK)
    return EXIT_OK


def add_scheduler_options(parser: argparse.ArgumentParser) -> None:
    """The scheduler's own options: ``--grace``, ``--processes`` and ``--node``."""
    parser.add_argument(
        "--grace",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="scheduler: at shutdown, wait this long for runs in flight (default: 30)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="scheduler: run N scheduler processes on the project, one per CPU is a good "
        "number (they share the ledger; default: 1)",
    )
    parser.add_argument(
        "--node",
        metavar="NAME",
        help="scheduler: this runner's name on a shared ([ledger] url) ledger "
        "(default: the host name and the pid)",
    )


def _clock() -> Any:
    """The scheduler's clock: the machine's, or one set off by ``EIL_CLOCK_SKEW`` (tests)."""
    from ..app.runner import clock_from_env

    try:
        return clock_from_env(os.environ)
    except ValueError as exc:
        raise UsageError(f"eil-run: {exc}") from None


def node_option(options: argparse.Namespace) -> str | None:
    """``--node``, checked: a runner's name is shown in logs and the status view."""
    node = getattr(options, "node", None)
    if node is None:
        return None
    if not node.strip() or len(node) > NODE_MAX or any(not c.isprintable() for c in node):
        raise UsageError("eil-run: --node must be 1 to 100 printable characters")
    return node.strip()
