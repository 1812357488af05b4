"""The one table from error kinds to exit codes (docs/cli.md, "Exit status").

=====  ==============================================================
code   meaning
=====  ==============================================================
0      success
1      a run failed (or a message was not delivered)
2      invalid configuration or usage: fix the files or the command
3      could not run: the ledger is locked, the disk is full or a
       folder read-only, another process holds the backfill lease
130    interrupted (Ctrl-C)
=====  ==============================================================
"""

from __future__ import annotations

from ..errors import ConfigError, ConfigErrors, CouldNotRun, EilError, UsageError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_COULD_NOT_RUN = 3
EXIT_INTERRUPTED = 130

#: Error kind -> exit code; the first kind the error is an instance of wins.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (ConfigErrors, EXIT_CONFIG),
    (ConfigError, EXIT_CONFIG),
    (UsageError, EXIT_CONFIG),
    (CouldNotRun, EXIT_COULD_NOT_RUN),
    (KeyboardInterrupt, EXIT_INTERRUPTED),
    (EilError, EXIT_CONFIG),
)


def exit_code(exc: BaseException) -> int:
    """The exit code of an error that ended a command.

    Invalid configuration and usage come first (an unreadable pipeline file is
    a problem of that file); then the machine's refusals, raw or wrapped in an
    :class:`EilError`; then the table.
    """
    from ..app.errors import could_not_run  # only on an error: off the fast path

    if not isinstance(exc, ConfigErrors | ConfigError | UsageError) and could_not_run(exc):
        return EXIT_COULD_NOT_RUN
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return EXIT_FAILED  # an internal error: a bug, reported as a failed run
