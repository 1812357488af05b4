"""Errors that carry what the user needs to read.

Nothing below the CLI prints or exits: every stage raises an :class:`EilError`
whose ``str()`` is the complete message for the user, and the CLI prints it
without a traceback.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Sequence
from pathlib import Path

from .text import printable


class EilError(Exception):
    """Base class of every error meant for the user."""


class ConfigError(EilError):
    """A pipeline file (or project setting) is invalid.

    ``problems`` holds every problem found as ``(key path, message)`` pairs, so
    a user fixes them all in one pass instead of one per run.  A key path of
    ``""`` means the problem is about the whole file (a syntax error, a
    duplicate name).
    """

    def __init__(
        self, file: Path | str, problems: Sequence[tuple[str, str]], *, shown: str | None = None
    ):
        self.file = Path(file)
        self.problems = list(problems)
        self.shown = shown or str(file)
        super().__init__(self.format())

    def format(self, display_path: str | None = None) -> str:
        """Render as ``file: key.path: message`` lines.

        Control characters in the file name, the key path (a TOML key may hold
        any character) or the message are escaped: the lines go to a terminal.
        """
        shown = printable(display_path or self.shown, keep_newlines=False)
        lines = []
        for key, message in self.problems:
            key = printable(key, keep_newlines=False)
            message = printable(message)
            lines.append(f"{shown}: {key}: {message}" if key else f"{shown}: {message}")
        return "\n".join(lines)


class UsageError(EilError):
    """Bad command-line arguments, or a request that makes no sense (exit 2)."""


class ConfigErrors(EilError):
    """Several files failed validation; holds one :class:`ConfigError` per file."""

    def __init__(self, errors: Iterable[ConfigError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))

    @property
    def problem_count(self) -> int:
        """How many individual problems were found across all files."""
        return sum(len(e.problems) for e in self.errors)


class SourceError(EilError):
    """A query failed against its data source.

    The message names the pipeline, the query and the database's own message.
    """

    def __init__(self, pipeline: str, query: str, message: str):
        self.pipeline = pipeline
        self.query = query
        self.detail = message
        super().__init__(f'pipeline "{pipeline}", query "{query}": {message}')


class ChartError(EilError):
    """A chart could not be drawn from its query's result."""

    def __init__(self, chart: str, message: str, pipeline: str | None = None):
        self.chart = chart
        self.pipeline = pipeline
        self.detail = message
        prefix = f'pipeline "{pipeline}", ' if pipeline else ""
        super().__init__(f'{prefix}chart "{chart}": {message}')


class RenderError(EilError):
    """A template failed to compile or render.

    ``template`` names the template file (or ``<built-in NAME>``) and ``line``
    the line in it, when Jinja knows it.
    """

    def __init__(self, template: str, message: str, line: int | None = None):
        self.template = template
        self.line = line
        self.detail = message
        where = f"{template}:{line}" if line else template
        super().__init__(f"{where}: {message}")


class MetricError(EilError):
    """A metric could not be computed from its query's result."""

    def __init__(self, metric: str, message: str):
        self.metric = metric
        self.detail = message
        super().__init__(f'metric "{metric}": {message}')


class OutputError(EilError):
    """A report file could not be written."""


class DeliveryError(EilError):
    """A report could not be delivered."""


class CouldNotRun(EilError):
    """The command could not run for a reason outside its configuration.

    The ledger is locked by another process, another process holds the
    lease (a backfill of the same pipeline), or the machine refuses a write
    (disk full, read-only folder, no permission).  Trying again later, or
    fixing the machine, helps; editing the pipeline files does not.  The CLI
    exits with its own code for it (docs/cli.md).
    """


#: ``OSError`` numbers that mean the machine, not the configuration, stopped a command.
ENVIRONMENT_ERRNOS = frozenset(
    getattr(errno, name)
    # EFBIG: a file size limit (RLIMIT_FSIZE, a quota) is a full disk for this process.
    for name in ("ENOSPC", "EROFS", "EACCES", "EPERM", "EDQUOT", "EFBIG")
    if hasattr(errno, name)
)


def environment_problem(exc: BaseException) -> CouldNotRun | None:
    """``exc`` as a :class:`CouldNotRun` when it (or its cause) is a full disk, a
    read-only folder or a refused permission; ``None`` otherwise."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in ENVIRONMENT_ERRNOS:
            if current is not exc:  # an EilError that already says what failed
                return CouldNotRun(str(exc))
            where = f" {current.filename}" if current.filename else ""
            return CouldNotRun(f"could not write{where}: {current.strerror or current}")
        # ``raise … from None`` means the message already says all there is to say.
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return None
