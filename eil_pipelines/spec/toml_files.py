"""Reading TOML files and turning pydantic's errors into messages a person acts on.

Shared by the pipeline loader (:mod:`.loader`) and the project settings
(:mod:`.project`), which both import it; it imports neither.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ..errors import ConfigError
from .cache import ParseCache

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


#: The project-wide settings file, beside the pipelines folder (see spec/project.py).
PROJECT_FILE = "eil.toml"


#: Keys whose string values may hold ``${ENV_VAR}`` references; ``"*"`` is every
#: item of a list (``deliver[*].webhook``).
ENV_EXPANDED_KEYS: tuple[tuple[str, ...], ...] = (("source", "path"), ("deliver", "*", "webhook"))


def display_path(path: Path, *, resolved: bool = False) -> str:
    """``path`` relative to the working folder when it lies inside it, else absolute.

    ``resolved=True`` says ``path`` is resolved already (saves walking it again)."""
    try:
        text = str(path if resolved else path.resolve())
        folder = str(_resolved(os.getcwd()))
    except (ValueError, OSError):
        return str(path)
    # Strings, not PurePath.relative_to: this runs for every file of every load.
    if text == folder:
        return "."
    prefix = folder.rstrip(os.sep) + os.sep
    return text[len(prefix) :] if text.startswith(prefix) else text


@functools.lru_cache(maxsize=8)
def _resolved(folder: str) -> Path:
    # The working folder, resolved once per folder: loading 1,000 files shows
    # each of them, and resolving the folder each time was a fifth of the cost.
    return Path(folder).resolve()


def expand_env(
    raw: dict[str, Any],
    env: Mapping[str, str],
    keys: tuple[tuple[str, ...], ...] = ENV_EXPANDED_KEYS,
) -> list[tuple[str, str]]:
    """Replace ``${VAR}`` (or ``${VAR:-default}``) in the ``keys`` that allow it, in place.

    Returns a problem for each variable that is not set and has no default.
    The expanded value is never echoed in messages, since it may be a secret.
    """
    problems = []
    for pattern in keys:
        problems.extend(_expand_at(raw, pattern, (), env))
    return problems


def _expand_at(
    node: Any, pattern: tuple[str, ...], path: tuple[str | int, ...], env: Mapping[str, str]
) -> list[tuple[str, str]]:
    """Expand the value ``pattern`` names under ``node``; ``"*"`` walks a list's items."""
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        if not isinstance(node, list):
            return []
        found = []
        for i, item in enumerate(node):
            found.extend(_expand_at(item, rest, (*path, i), env))
        return found
    if not isinstance(node, dict) or head not in node:
        return []
    if rest:
        return _expand_at(node[head], rest, (*path, head), env)
    if not isinstance(node[head], str):
        return []
    missing: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        value = env.get(match.group(1))
        if value is None:
            if match.group(2) is not None:
                return match.group(2)
            missing.append(match.group(1))
            return ""
        return value

    node[head] = _ENV_REF.sub(substitute, node[head])
    return [
        (format_key_path((*path, head)), f'environment variable "{var}" is not set')
        for var in missing
    ]


def read_toml(file: Path, shown: str, cache: ParseCache | None = None) -> dict[str, Any]:
    """Parse a TOML file; any failure is a :class:`ConfigError` naming the file (and line).

    A UTF-8 byte-order mark at the start (some Windows editors write one) is
    dropped: TOML forbids it, but it carries no meaning in UTF-8.  With
    ``cache``, a file unchanged since it was last parsed is not parsed again.
    """
    try:
        if cache is not None:
            return cache.parsed(file, tomllib.loads)
        return tomllib.loads(file.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise ConfigError(
            file, [("", f"cannot read the file: {exc.strerror}")], shown=shown
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(file, [("", "the file is not valid UTF-8 text")], shown=shown) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, [("", _toml_message(exc))], shown=shown) from None


def _toml_message(exc: tomllib.TOMLDecodeError) -> str:
    text = str(exc)
    match = re.search(r"\(at line (\d+), column (\d+)\)", text)
    reason = re.sub(r"\s*\(at .*?\)\s*$", "", text)
    reason = reason[:1].lower() + reason[1:]
    if match:
        return f"TOML syntax error at line {match.group(1)}, column {match.group(2)}: {reason}"
    return f"TOML syntax error: {reason}"


# --- pydantic errors → user messages -------------------------------------------------

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "list_type": "a list",
    "date_type": "a date (such as 2026-01-31)",
    "datetime_type": "a date-time (such as 2026-01-31T08:00)",
    "time_type": "a time",
    "timedelta_type": 'a duration such as "15m"',
    "is_instance_of": "a value of another type",
}


def describe_value(value: Any) -> str:
    """Name a TOML value's type and show it, as in ``string "yes"`` or ``integer 5``."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f'string "{shown}"'
    if isinstance(value, datetime):
        return f"date-time {value.isoformat()}"
    if isinstance(value, date):
        return f"date {value.isoformat()}"
    if isinstance(value, time):
        return f"time {value.isoformat()}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def format_key_path(parts: Iterable[str | int]) -> str:
    """``("charts", 0, "y")`` → ``charts[0].y``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _walk(raw: Any, loc: tuple[Any, ...]) -> tuple[list[str | int], Any, bool]:
    """Follow ``loc`` through the raw data as far as it goes.

    Pydantic adds segments that are not keys (union member names such as
    ``list[str]``, validator names); those are dropped.  Returns the key path,
    the value found there, and whether the whole path was found.
    """
    path: list[str | int] = []
    node = raw
    for part in loc:
        if part == "table" and isinstance(node, dict) and part not in node:
            continue  # the tag of source's union (a [source] table or a connection name)
        if (isinstance(node, dict) and isinstance(part, str) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            node = cast(Any, node)[part]  # a key of that dict or an index of that list
        else:
            return path, node, False
        path.append(part)
    return path, node, True


def _model_at(model: type[BaseModel], path: list[str | int]) -> type[BaseModel] | None:
    """The model class that validates the table at ``path``, for "did you mean"."""
    import typing

    current: Any = model
    for part in path:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = current.model_fields.get(part)
        if info is None:
            return None
        current = _unwrap_model(info.annotation, typing)
        if current is None:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap_model(annotation: Any, typing: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _unwrap_model(arg, typing)
        if found is not None:
            return found
    return None


def pydantic_problems(
    exc: ValidationError, raw: dict[str, Any], model: type[BaseModel]
) -> list[tuple[str, str]]:
    """Translate a ValidationError into ``(key path, message)`` pairs a user can act on."""
    grouped: dict[str, list[tuple[ErrorDetails, Any, bool]]] = {}
    order: list[str] = []
    for error in exc.errors():
        path, value, complete = _walk(raw, tuple(error["loc"]))
        if error["type"] == "missing" and error["loc"]:
            key = (
                format_key_path([*path, error["loc"][-1]])
                if not complete
                else format_key_path(path)
            )
        elif error["type"] == "extra_forbidden":
            key = format_key_path(path)
        else:
            key = format_key_path(path)
        if key not in grouped:
            grouped[key] = []
            order.append(key)
        grouped[key].append((error, value, complete))

    problems: list[tuple[str, str]] = []
    for key in order:
        entries = grouped[key]
        types = {e["type"] for e, _, _ in entries}
        if len(entries) > 1 and types <= set(_EXPECTED) | {"literal_error"}:
            # A union (such as str | list[str]) failed on every member: one message.
            expected: list[str] = []
            for error, _, _ in entries:
                expected.append(_expected_text(error))
            value = entries[0][1]
            unique = list(dict.fromkeys(expected))
            problems.append((key, f"expected {_join_or(unique)}, got {describe_value(value)}"))
            continue
        for error, value, _ in entries:
            problems.append((key, _message(error, value, key, raw, model)))
    return _dedupe(problems)


def _expected_text(error: ErrorDetails) -> str:
    if error["type"] == "literal_error":
        return "one of " + error["ctx"]["expected"].replace("'", '"')
    if error["type"] == "list_type":
        return "a list"
    return _EXPECTED.get(error["type"], error["msg"])


def _join_or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _message(
    error: ErrorDetails, value: Any, key: str, raw: dict[str, Any], model: type[BaseModel]
) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {})
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        name = str(error["loc"][-1])
        parent_path, _, _ = _walk(raw, tuple(error["loc"][:-1]))
        parent = _model_at(model, parent_path)
        options = list(parent.model_fields) if parent else []
        close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
        hint = f'; did you mean "{close[0]}"?' if close else ""
        allowed = f" (allowed: {', '.join(options)})" if options and not close else ""
        return f'unknown key "{name}"{hint}{allowed}'
    if kind == "literal_error":
        expected = ctx.get("expected", "").replace("'", '"')
        options = re.findall(r'"([^"]*)"', expected)
        close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.6)
        hint = f'; did you mean "{close[0]}"?' if close else ""
        return f"expected one of {expected}, got {describe_value(value)}{hint}"
    if kind in ("value_error", "assertion_error"):
        message = error["msg"]
        return re.sub(r"^(Value error|Assertion failed), ", "", message)
    if kind == "string_pattern_mismatch" and "@" in str(ctx.get("pattern", "")):
        return f'expected an email address such as "name@example.com", got {describe_value(value)}'
    if kind == "string_pattern_mismatch":
        return (
            f'invalid name "{value}": use lowercase letters, digits, "_" and "-", '
            "starting with a letter or digit"
        )
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}, got {describe_value(value)}"
    if kind == "less_than_equal":
        return f"must be at most {ctx.get('le')}, got {describe_value(value)}"
    if kind == "too_short":
        what = {
            "queries": "at least one query is needed",
            "report.formats": "at least one format is needed",
        }
        return what.get(key, f"needs at least {ctx.get('min_length')} item(s)")
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {describe_value(value)}"
    return error["msg"]


def _dedupe(problems: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for problem in problems:
        if problem not in out:
            out.append(problem)
    return out
