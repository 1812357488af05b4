"""Which failures mean "could not run" rather than "invalid configuration"."""

from __future__ import annotations

from ..errors import CouldNotRun, environment_problem
from ..ledger import LedgerFullError, LedgerLockedError


def could_not_run(exc: BaseException) -> CouldNotRun | None:
    """``exc`` as a :class:`CouldNotRun` when the machine, not the configuration,
    stopped the command: a locked ledger, a full disk, a read-only folder, a
    lease held by another process; ``None`` otherwise."""
    if isinstance(exc, CouldNotRun):
        return exc
    if isinstance(exc, LedgerLockedError | LedgerFullError):
        return CouldNotRun(str(exc))
    return environment_problem(exc)
