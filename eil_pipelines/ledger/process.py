"""Who holds a row: this process's identity, and whether another local process still lives.

Rows that a process owns (a running run, a message being sent, a lease)
carry its pid, its host name and a random *owner token*.  On one machine,
a row whose process is gone can be taken over; these helpers say when.
A backend shared by several machines (issue 13) uses leases on the
database's clock instead, and records the same three fields for people.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import uuid

__all__ = ["default_alive", "host_name", "pid_exists", "process_token"]

_TOKENS: dict[int, str] = {}
_TOKENS_LOCK = threading.Lock()


def process_token() -> str:
    """A random token naming this process incarnation.

    A pid alone can't tell this process from an earlier one with the same pid,
    which is the normal case in containers (the scheduler is pid 1 after every
    restart); the token can.  A forked child gets a token of its own.
    """
    pid = os.getpid()
    with _TOKENS_LOCK:
        token = _TOKENS.get(pid)
        if token is None:
            token = _TOKENS[pid] = uuid.uuid4().hex
        return token


def host_name() -> str:
    """This machine's name, as rows record it."""
    return socket.gethostname()


def pid_exists(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this machine (True when it can't be told)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _pid_exists_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        # PermissionError: it exists but belongs to another user.  Anything
        # else: we can't tell, and abandoning a live run is the worse mistake.
        return True
    return True


def _pid_exists_windows(pid: int) -> bool:  # pragma: no cover - exercised on Windows only
    # os.kill(pid, 0) on Windows sends CTRL_C_EVENT, so ask the kernel instead.
    import ctypes
    from ctypes import wintypes

    process_query_limited_information = 0x1000
    still_active = 259
    error_access_denied = 5
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(process_query_limited_information, False, pid)
    if not handle:
        return ctypes.get_last_error() == error_access_denied  # type: ignore[attr-defined]
    try:
        code = wintypes.DWORD()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == still_active
    finally:
        kernel32.CloseHandle(handle)


def default_alive(pid: int, owner_token: str | None) -> bool:
    """Whether the local process that wrote ``pid`` and ``owner_token`` on a row still runs.

    Our own pid counts as alive only with our own token: the same pid with
    another token is an earlier process (a restarted container).
    """
    if pid == os.getpid():
        return owner_token == process_token()
    return pid_exists(pid)
