"""Signal handling, written once: the first Ctrl-C (or SIGTERM) asks to stop, a second exits.

The scheduler and backfill both stop starting runs on the first signal and
let the runs in flight finish; a user who does not want to wait presses
Ctrl-C again and the process exits at once with 130.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .exitcodes import EXIT_INTERRUPTED


@contextmanager
def stop_on_signals(
    stop: threading.Event,
    *,
    signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM),
    on_first: Callable[[], None] | None = None,
    on_reload: Callable[[], None] | None = None,
) -> Iterator[threading.Event]:
    """While inside, the first of ``signals`` sets ``stop`` (and calls ``on_first``);
    the next one ends the process at once (``os._exit(130)``).  SIGHUP calls
    ``on_reload`` when given.  The previous handlers come back on exit.

    Outside the main thread (a test calling the CLI from a thread) nothing is
    installed: Python allows signal handlers only in the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    count = {"n": 0}

    def handler(_signum: int, _frame: Any) -> None:
        count["n"] += 1
        if count["n"] > 1:
            # Runs in flight keep their ledger rows "running"; the scheduler's next
            # start marks them abandoned (and backfill --reprocess failed runs them).
            os._exit(EXIT_INTERRUPTED)
        stop.set()
        if on_first is not None:
            on_first()

    wanted = list(signals)
    if on_reload is not None and hasattr(signal, "SIGHUP"):
        wanted.append(signal.SIGHUP)
    previous = {sig: signal.getsignal(sig) for sig in wanted}
    for sig in signals:
        signal.signal(sig, handler)
    if on_reload is not None and hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda *_: on_reload())
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def taker(event: threading.Event) -> Callable[[], bool]:
    """A callable that says whether ``event`` was set since it last asked, and clears it."""

    def take() -> bool:
        asked = event.is_set()
        event.clear()
        return asked

    return take
