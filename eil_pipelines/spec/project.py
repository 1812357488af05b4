"""Project-wide settings: the optional ``eil.toml`` at the project root.

The file sits beside the pipelines folder and holds what is shared by every
pipeline and must not be repeated in each: the SMTP server reports are mailed
through, and the delivery policy (who hears about failures, where reports can
be read online, how often a failed send is retried).

Every field has a docstring, as in the pipeline contract; ``docs/delivery.md``
is their reference.  Problems are reported like a pipeline file's, as
``eil.toml: key.path: message`` lines, all at once.

Secrets (``smtp.username``, ``smtp.password``) come from the environment as
``${ENV_VAR}``: a password written into the file is refused, since the file is
usually committed with the project.

This module also holds :func:`delivery_problems`, the checks of a pipeline's
``[[deliver]]`` and ``[alert]`` tables that a field validator cannot make
(references to queries and formats, subjects that must compile): the loader
calls it beside the other cross-reference checks.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, StringConstraints, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from .models import EMAIL_PATTERN, Duration, Email, StrictModel
from .toml_files import PROJECT_FILE

#: The settings file's name, at the project root.

#: Keys of ``eil.toml`` whose string values may hold ``${ENV_VAR}`` references.
PROJECT_ENV_KEYS: tuple[tuple[str, ...], ...] = (
    ("smtp", "host"),
    ("smtp", "sender"),
    ("smtp", "username"),
    ("smtp", "password"),
    ("delivery", "failure_recipient"),
    ("delivery", "report_base_url"),
)

_ENV_ONLY = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")


class SmtpSettings(StrictModel):
    """The mail server reports and notices are sent through."""

    host: Annotated[str, StringConstraints(min_length=1)]
    """The SMTP server's host name, such as ``"smtp.example.com"``."""

    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    """The server's port; default 465 with ``tls``, 587 with ``starttls``, else 25."""

    sender: str
    """The ``From`` address: ``"reports@example.com"`` or
    ``"Reports <reports@example.com>"``."""

    starttls: bool | None = None
    """Upgrade the connection with STARTTLS after connecting (the usual setup on
    port 587).  Default: on, unless ``tls`` is set; set ``false`` only for a
    relay on a trusted network."""

    tls: bool = False
    """Connect with implicit TLS from the first byte (port 465)."""

    username: str | None = None
    """The login name, as ``"${SMTP_USER}"``; without it no login is made."""

    password: str | None = None
    """The password, as ``"${SMTP_PASSWORD}"`` (a literal password in the file is
    refused)."""

    timeout: Duration = timedelta(seconds=30)
    """How long to wait for the server at each step before the send counts as
    failed (and is retried)."""

    @field_validator("sender")
    @classmethod
    def _check_sender(cls, value: str) -> str:
        _, address = parseaddr(value)
        if not address or not re.match(EMAIL_PATTERN, address):
            raise ValueError(
                'expected an address such as "reports@example.com" or '
                '"Reports <reports@example.com>"'
            )
        return value

    @field_validator("timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SmtpSettings:
        if self.tls and self.starttls:
            raise ValueError(
                'give "tls" (implicit TLS, usually port 465) or "starttls" (usually port 587), '
                "not both"
            )
        if self.password is not None and self.username is None:
            raise ValueError('"password" needs a "username"')
        return self

    @property
    def use_starttls(self) -> bool:
        """Whether to upgrade with STARTTLS: the explicit setting, else on unless ``tls``."""
        return self.starttls if self.starttls is not None else not self.tls

    @property
    def effective_port(self) -> int:
        """The port to connect to."""
        if self.port is not None:
            return self.port
        if self.tls:
            return 465
        return 587 if self.use_starttls else 25

    @property
    def sender_address(self) -> str:
        """The bare address of ``sender`` (the SMTP envelope's ``MAIL FROM``)."""
        return parseaddr(self.sender)[1]


class DeliverySettings(StrictModel):
    """How deliveries behave, for every pipeline of the project."""

    failure_recipient: Email | None = None
    """Who hears about failures (and recoveries) of pipelines that have no ``owner``."""

    report_base_url: str | None = None
    """Where the reports folder is served, such as
    ``"https://bi.example.com/reports"``: messages then link to
    ``<base>/<pipeline>/<stamp>.html``."""

    max_attempts: Annotated[int, Field(ge=1, le=100)] = 8
    """How many times a message is tried before it is given up."""

    retry_delay: Duration = timedelta(minutes=1)
    """Wait before the second attempt of a failed send; doubles at each further one."""

    max_retry_delay: Duration = timedelta(hours=1)
    """The longest wait between two attempts, however many have failed."""

    webhook_timeout: Duration = timedelta(seconds=10)
    """How long a webhook may take to answer before the send counts as failed."""

    @field_validator("report_base_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/") if value else value

    @field_validator("retry_delay", "max_retry_delay", "webhook_timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value


class ProjectSettings(StrictModel):
    """The contents of ``eil.toml``."""

    smtp: SmtpSettings | None = None
    """The mail server; without it, nothing is sent by email."""

    delivery: DeliverySettings = DeliverySettings()
    """Failure recipient, report links, retries."""

    def secrets(self) -> list[str]:
        """Values that must never appear in a log, the ledger or a report."""
        if self.smtp is None:
            return []
        return [v for v in (self.smtp.username, self.smtp.password) if v]


def load_project_settings(
    root: Path | str, *, env: Mapping[str, str] | None = None
) -> ProjectSettings:
    """Read ``<root>/eil.toml``; without the file, the defaults (no SMTP server).

    Raises :class:`ConfigError` listing every problem of the file.  ``env`` is
    the environment for ``${VAR}`` references (default ``os.environ``).
    """
    from .toml_files import display_path, expand_env, pydantic_problems, read_toml

    file = Path(root).resolve() / PROJECT_FILE
    if not file.exists():
        return ProjectSettings()
    shown = display_path(file)
    raw = read_toml(file, shown)

    problems: list[tuple[str, str]] = []
    smtp = raw.get("smtp")
    if isinstance(smtp, dict):
        password = smtp.get("password")
        if isinstance(password, str) and not _ENV_ONLY.match(password.strip()):
            # Checked before expansion: after it, a secret and a literal look alike.
            problems.append(
                (
                    "smtp.password",
                    'write the password as "${ENV_VAR}" and set that variable: '
                    "secrets are never kept in files",
                )
            )
    problems.extend(expand_env(raw, os.environ if env is None else env, keys=PROJECT_ENV_KEYS))
    settings: ProjectSettings | None = None
    try:
        settings = ProjectSettings.model_validate(raw)
    except ValidationError as exc:
        for key, message in pydantic_problems(exc, raw, ProjectSettings):
            # A type error on a credential would print its value: say only what was expected.
            if key in ("smtp.password", "smtp.username"):
                message = message.split(", got ")[0]
            if (key, message) not in problems:
                problems.append((key, message))
    if settings is None or problems:
        raise ConfigError(file, problems, shown=shown)
    return settings


# --- checks of a pipeline's [[deliver]] and [alert] -----------------------------------

_PRODUCED_BY = {
    "md": "formats",
    "html": "formats",
    "pdf": "formats",
    "csv": "exports",
    "xlsx": "exports",
    "parquet": "exports",
}


def delivery_problems(
    raw: dict[str, Any], *, skip: frozenset[str] = frozenset()
) -> list[tuple[str, str]]:
    """Problems of ``[[deliver]]`` and ``[alert]`` a field validator cannot see.

    Works on the raw parsed TOML (after ``${VAR}`` expansion), like
    :func:`~eil_pipelines.spec.models.reference_problems`, so they are reported
    with the type errors of the same file.  ``skip`` holds key paths already
    reported (an unset variable), which are not checked again.  Messages never
    echo a webhook URL: it is a secret.
    """
    problems: list[tuple[str, str]] = []
    queries = raw.get("queries")
    names = sorted(queries) if isinstance(queries, dict) else []
    alert = raw.get("alert")
    if isinstance(alert, dict):
        query = alert.get("query")
        if isinstance(query, str) and isinstance(queries, dict) and query not in queries:
            from .models import _did_you_mean

            defined = ", ".join(names) if names else "none"
            problems.append(
                (
                    "alert.query",
                    f'no query named "{query}"{_did_you_mean(query, names)} '
                    f"(queries defined: {defined})",
                )
            )
        subject = alert.get("subject")
        if isinstance(subject, str):
            problems.extend(_subject_problems("alert.subject", subject))

    report = raw.get("report") if isinstance(raw.get("report"), dict) else {}
    formats = report.get("formats", ["md", "html"])
    exports = report.get("exports", [])
    deliveries = raw.get("deliver")
    if not isinstance(deliveries, list):
        return problems
    for i, item in enumerate(deliveries):
        if not isinstance(item, dict):
            continue
        key = f"deliver[{i}]"
        webhook = item.get("webhook")
        if (
            isinstance(webhook, str)
            and f"{key}.webhook" not in skip
            and not re.match(r"^https?://[^/\s]+", webhook.strip())
        ):
            problems.append((f"{key}.webhook", "expected an http:// or https:// URL"))
        subject = item.get("subject")
        if isinstance(subject, str):
            problems.extend(_subject_problems(f"{key}.subject", subject))
        attach = item.get("attach")
        if isinstance(attach, list):
            for fmt in attach:
                where = _PRODUCED_BY.get(fmt) if isinstance(fmt, str) else None
                produced = formats if where == "formats" else exports
                if where and isinstance(produced, list) and fmt not in produced:
                    problems.append(
                        (
                            f"{key}.attach",
                            f'"{fmt}" is not written by this pipeline: add it to report.{where}',
                        )
                    )
    return problems


def _subject_problems(key: str, text: str) -> list[tuple[str, str]]:
    from ..errors import RenderError
    from ..render import TemplateSource, compile_template

    try:
        compile_template(TemplateSource(key, text))
    except RenderError as exc:
        return [(key, exc.detail)]
    return []
