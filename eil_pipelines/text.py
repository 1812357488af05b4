"""Text from users made safe to show on a terminal: :func:`printable`.

Pipeline names, titles, file names, key paths, error messages and row values
reach the terminal through ``eil-run``'s output.  A control character in one of
them (``ESC [ 2 J`` clears the screen, ``ESC ] 52`` writes the clipboard, a
carriage return hides what came before it) must never reach the terminal raw,
so every print edge passes user text through :func:`printable`.
"""

from __future__ import annotations

import re

__all__ = ["has_control_characters", "printable"]

# C0 controls except tab and newline, DEL, C1 controls, and the Unicode line and
# paragraph separators and bidirectional overrides that reorder what is shown.
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)
# For names: newlines and tabs too.
_ANY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, keep_newlines: bool = True) -> str:
    r"""``text`` with every control character written as an escape (``\x1b``, ``\u202e``).

    Tabs and (unless ``keep_newlines`` is false) newlines are kept: messages
    span lines on purpose.  Everything else prints as it is.
    """
    value = str(text)
    pattern = _CONTROL if keep_newlines else _ANY_CONTROL
    return pattern.sub(_escape, value) if pattern.search(value) else value


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds a control character, a newline or a tab.

    Names of files and outputs may hold none of them: they end up in
    terminals, logs and e-mail headers.
    """
    return _ANY_CONTROL.search(text) is not None
