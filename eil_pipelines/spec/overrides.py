"""``--param name=value``: a parameter changed for one run, checked against ``[params]``.

Used by ``eil-run --once``, ``eil-run backfill`` and run-now (the web page):
:func:`parse_param_options` reads the ``name=value`` texts and
:func:`with_params` returns the pipeline with those values, each converted
to the type its ``[params]`` entry has, or raises a :class:`ConfigError`
naming the parameter and what was expected.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from ..errors import ConfigError
from .loader import Pipeline
from .models import PARAM_NAME_PATTERN

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def parse_param_options(options: Iterable[str]) -> dict[str, str]:
    """``["top_n=5", "region=EMEA"]`` → ``{"top_n": "5", "region": "EMEA"}``.

    Raises :class:`ValueError` with a message for the command line when an
    option has no ``=`` or names a parameter twice.
    """
    values: dict[str, str] = {}
    for option in options:
        name, sep, value = option.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f'--param: expected name=value, such as top_n=5, got "{option}"')
        if name in values:
            raise ValueError(f'--param: "{name}" is given twice')
        values[name] = value
    return values


def _convert(name: str, text: str, current: Any) -> Any:
    """``text`` as the type of the parameter's value in the file."""
    if isinstance(current, bool):
        word = text.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError(f"expected true or false (like the file's {str(current).lower()})")
    if isinstance(current, int):
        try:
            return int(text.strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"expected a whole number (like the file's {current})") from None
    if isinstance(current, float):
        try:
            return float(text.strip().replace("_", ""))
        except ValueError:
            raise ValueError(f"expected a number (like the file's {current})") from None
    if isinstance(current, date):
        try:
            return date.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(
                f"expected a date YYYY-MM-DD (like the file's {current.isoformat()})"
            ) from None
    return text


def with_params(pipeline: Pipeline, overrides: Mapping[str, str]) -> Pipeline:
    """``pipeline`` with some ``[params]`` values replaced for one run.

    Each name must be a parameter the file declares (its type is the type of
    the value there: a parameter cannot be invented on the command line, so a
    typo is an error rather than a silent no-op).  Every problem is reported
    at once, as a :class:`ConfigError` on the pipeline file with the key path
    ``params.<name>``.
    """
    if not overrides:
        return pipeline
    declared = pipeline.spec.params
    params = dict(declared)
    problems: list[tuple[str, str]] = []
    for name, text in overrides.items():
        if not re.match(PARAM_NAME_PATTERN, name):
            problems.append((f"params.{name}", "--param: not a parameter name"))
            continue
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            problems.append(
                (
                    f"params.{name}",
                    f"--param: the file declares no such parameter (parameters: {known}); "
                    "add it to [params] first",
                )
            )
            continue
        try:
            params[name] = _convert(name, text, declared[name])
        except ValueError as exc:
            problems.append((f"params.{name}", f'--param {name}="{text}": {exc}'))
    if problems:
        raise ConfigError(pipeline.file, problems, shown=pipeline.display_path)
    spec = pipeline.spec.model_copy(update={"params": params})
    return dataclasses.replace(
        pipeline, spec=spec, overridden=tuple(sorted(set(pipeline.overridden) | set(overrides)))
    )


def with_params_each(pipelines: Iterable[Pipeline], overrides: Mapping[str, str]) -> list[Pipeline]:
    """Each pipeline with the overrides its ``[params]`` declares (``eil-run --once``).

    A name that none of ``pipelines`` declares is an error (a typo must not
    pass silently); a value of the wrong type for any pipeline is too.
    """
    pipelines = list(pipelines)
    if not overrides:
        return pipelines
    unknown = [n for n in overrides if not any(n in p.spec.params for p in pipelines)]
    if unknown:
        declared = sorted({n for p in pipelines for n in p.spec.params})
        raise ValueError(
            f'--param: no pipeline run here declares "{unknown[0]}" in [params] '
            f"(parameters: {', '.join(declared) or 'none'})"
        )
    return [
        with_params(p, {n: v for n, v in overrides.items() if n in p.spec.params})
        for p in pipelines
    ]
