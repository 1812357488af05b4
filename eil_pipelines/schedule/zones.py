"""Time zones: the machine's own zone by IANA name, and checked look-ups.

The local zone is found, in order, from

1. the ``TZ`` environment variable, when it holds an IANA name (``Europe/Berlin``,
   ``:Europe/Berlin``) or a path into a zoneinfo directory;
2. ``/etc/timezone`` (Debian, Ubuntu);
3. the target of the ``/etc/localtime`` symlink (``…/zoneinfo/Europe/Berlin``);

and falls back to ``"UTC"``.  A POSIX rule in ``TZ`` (``CET-1CEST,M3.5.0,M10.5.0/3``)
and an ``/etc/localtime`` that is a copied file rather than a symlink carry no
IANA name, so they are skipped: set ``timezone`` in the schedule in that case.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["MAX_ZONE_NAME", "get_zone", "is_zone_name", "local_zone_name", "zone_problem"]

# Variants of the zoneinfo tree that hold the same zones under a prefix.
_TREE_PREFIXES = ("posix/", "right/")


#: The longest zone name accepted.  The longest IANA name has 32 characters;
#: a longer one is refused before it reaches the file system ("file name too long").
MAX_ZONE_NAME = 64


def is_zone_name(name: str) -> bool:
    """Whether ``name`` is an IANA zone this machine's zone database knows."""
    return zone_problem(name) is None


def zone_problem(name: str) -> str | None:
    """Why ``name`` is not a zone this machine knows, in words fit for the user; ``None`` if it is."""
    expected = 'expected an IANA name such as "Europe/Berlin" or "UTC"'
    if not isinstance(name, str):
        return f"unknown time zone {name!r}: {expected}"
    if len(name) > MAX_ZONE_NAME:
        return (
            f'unknown time zone "{name[:32]}…": the name has {len(name)} characters, '
            f"at most {MAX_ZONE_NAME}; {expected}"
        )
    if not name.isprintable():
        return f"unknown time zone {name!r}: it holds control characters; {expected}"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError: not a normalized relative key (absolute, "..") or not a
        # TZif file; OSError: a directory such as "Europe".
        return f'unknown time zone "{name}": {expected}'
    return None


def _name_from_path(path: str) -> str | None:
    """The zone name in a path such as ``/usr/share/zoneinfo/posix/Europe/Berlin``."""
    marker = "zoneinfo/"
    if marker not in path:
        return None
    name = path.rsplit(marker, 1)[1]
    for prefix in _TREE_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
    return name if is_zone_name(name) else None


def _from_tz_variable(value: str) -> str | None:
    value = value.strip()
    if value.startswith(":"):
        # glibc's "implementation-defined" form: ":Europe/Berlin" or ":/path".
        value = value[1:]
    if not value:
        return None
    if value.startswith("/"):
        return _name_from_path(value)
    return value if is_zone_name(value) else None


def _from_etc_timezone(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        return None
    return lines[0] if is_zone_name(lines[0]) else None


def _from_localtime_link(path: Path) -> str | None:
    try:
        target = os.readlink(path)
    except OSError:
        # Not there, or a plain copy of a zone file: no name to read.
        return None
    if not os.path.isabs(target):
        target = os.path.normpath(os.path.join(os.path.dirname(path), target))
    return _name_from_path(target)


def local_zone_name(environ: Mapping[str, str] | None = None, root: Path | str = "/") -> str:
    """The IANA name of this machine's time zone, such as ``"Europe/Berlin"``.

    Looks at the ``TZ`` variable, then ``/etc/timezone``, then the
    ``/etc/localtime`` symlink, and returns ``"UTC"`` when none of them names a
    zone.  ``environ`` and ``root`` stand in for ``os.environ`` and ``/`` so
    tests can give a fake machine.
    """
    env = os.environ if environ is None else environ
    etc = Path(root) / "etc"
    from_tz = _from_tz_variable(env.get("TZ", ""))
    if from_tz:
        return from_tz
    return _from_etc_timezone(etc / "timezone") or _from_localtime_link(etc / "localtime") or "UTC"


def get_zone(name: str | None) -> ZoneInfo:
    """The :class:`~zoneinfo.ZoneInfo` called ``name``, or the local zone for ``None``.

    Raises ``ValueError`` with a message fit for the user when the name is not
    a zone this machine knows.
    """
    if name is None:
        return ZoneInfo(local_zone_name())
    problem = zone_problem(name)
    if problem:
        raise ValueError(problem)
    return ZoneInfo(name)
