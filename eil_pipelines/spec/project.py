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
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from .calendars import CalendarDefinition, CalendarSettings, resolve_calendar
from .models import EMAIL_PATTERN, Duration, Email, StrictModel
from .storage import is_store_url, parse_store_url
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
    ("serve", "run_token"),
    ("ledger", "url"),
    ("storage", "reports"),
    ("storage", "endpoint_url"),
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


#: URL schemes → engine, for connections given by ``url``; any other scheme is
#: handed to SQLAlchemy (its dialect decides whether it is known).
URL_ENGINES = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
}

ENGINES = ("duckdb", "sqlite", "postgres", "mysql", "sqlalchemy")

_URL_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@:]*:([^@]*)@")


class ConnectionSettings(StrictModel):
    """One named connection: ``[connections.NAME]``.  Give ``url`` for a server,
    or ``kind`` (and ``path``) for an embedded database."""

    url: str | None = None
    """The server's URL, such as ``"postgresql://${PGUSER}:${PGPASSWORD}@db:5432/analytics"``,
    ``"mysql://…"`` or any SQLAlchemy URL whose dialect is installed.  ``${ENV_VAR}``
    is expanded; a password must be written as ``${ENV_VAR}``."""

    kind: Literal["duckdb", "sqlite", "postgres", "mysql", "sqlalchemy"] | None = None
    """The engine; default: from the URL's scheme (``postgresql``, ``mysql``,
    ``mariadb``, else SQLAlchemy), or ``duckdb`` without a URL."""

    path: str | None = None
    """For ``duckdb`` and ``sqlite``: the database file, relative to the project root
    (``${ENV_VAR}`` is expanded).  Without it, DuckDB runs in memory."""

    statement_timeout: Duration | None = timedelta(minutes=10)
    """The longest a query may run, enforced by the server (Postgres
    ``statement_timeout``, MariaDB ``max_statement_time``, MySQL
    ``MAX_EXECUTION_TIME``)."""

    pool_size: Annotated[int, Field(ge=1, le=64)] = 2
    """How many connections the scheduler keeps open (warm between runs) at most."""

    @field_validator("statement_timeout")
    @classmethod
    def _positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ConnectionSettings:
        engine = self.engine
        if engine in ("duckdb", "sqlite"):
            if self.url is not None:
                raise ValueError(f'a "{engine}" connection takes a "path", not a "url"')
            if engine == "sqlite" and not self.path:
                raise ValueError('a "sqlite" connection needs a "path"')
        else:
            if not self.url:
                raise ValueError(f'a "{engine}" connection needs a "url"')
            if self.path is not None:
                raise ValueError('"path" is for duckdb and sqlite connections; give a "url"')
        return self

    @property
    def engine(self) -> str:
        """The engine that opens this connection."""
        if self.kind is not None:
            return self.kind
        if self.url is None:
            return "duckdb"
        base, _, driver = self.url.split("://", 1)[0].lower().partition("+")
        engine = URL_ENGINES.get(base)
        # A URL naming another driver ("postgresql+pg8000://") goes to SQLAlchemy.
        if engine == "postgres" and driver in ("", "psycopg"):
            return engine
        if engine == "mysql" and driver in ("", "pymysql"):
            return engine
        return "sqlalchemy"


class LedgerSettings(StrictModel):
    """Where the run ledger lives: ``[ledger]``.  Without it, the SQLite file
    ``reports/.eil/ledger.sqlite3`` of one machine."""

    url: str | None = None
    """The ledger shared by several runners, such as
    ``"postgresql://${EIL_LEDGER_USER}:${EIL_LEDGER_PASSWORD}@pg.internal/eil"``
    (``${ENV_VAR}`` is expanded; a password must be written as ``${ENV_VAR}``),
    or ``"sqlite:///path/to/ledger.sqlite3"``.  Default: the SQLite file under
    the reports folder."""

    lease: Duration = timedelta(seconds=30)
    """How long a runner keeps its runs without a heartbeat: a runner that stops
    (killed, cut off) loses them to another runner after this."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        scheme = value.split("://", 1)[0].lower() if "://" in value else ""
        if scheme not in ("postgresql", "postgres", "sqlite"):
            raise ValueError("expected a postgresql:// or sqlite:/// URL")
        return value

    @field_validator("lease")
    @classmethod
    def _long_enough(cls, value: timedelta) -> timedelta:
        # The heartbeat beats three times per lease; below a second it would be a busy loop.
        if value < timedelta(seconds=1):
            raise ValueError("must be at least 1s")
        return value


class StorageSettings(StrictModel):
    """Where reports are published: ``[storage]``.  Without it, the reports folder
    (``--reports``, or ``reports/`` in the project root)."""

    reports: str | None = None
    """A folder every runner sees (NFS, EFS, SMB), the default of ``--reports``,
    relative to the project root; or an object store, ``"s3://bucket/prefix"``,
    which runners publish each report to and ``serve`` and ``send`` read from
    (docs/several-machines.md).  ``${ENV_VAR}`` is expanded."""

    endpoint_url: str | None = None
    """The address of an S3-compatible server other than Amazon S3 (MinIO, Ceph),
    such as ``"https://minio.internal:9000"``.  Credentials are never written
    here: the AWS SDK's standard chain supplies them (``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY``, a profile, an instance role)."""

    region: str | None = None
    """The bucket's region (default ``us-east-1``)."""

    @field_validator("reports")
    @classmethod
    def _check_reports(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.strip():
            raise ValueError("expected a folder or an s3://bucket/prefix URL, not an empty string")
        if is_store_url(value):
            if not value.startswith("s3://"):
                raise ValueError("expected a folder or an s3://bucket/prefix URL")
            parse_store_url(value)
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// address")
        return value

    @property
    def store_url(self) -> str | None:
        """The object store's URL, or ``None`` when reports go to a folder."""
        return self.reports if self.reports and is_store_url(self.reports) else None


class TargetSettings(StrictModel):
    """One target: ``[targets.NAME]``, chosen by ``--target NAME`` or ``EIL_TARGET``."""

    connections: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per connection, the keys that replace the ones in ``[connections.NAME]``
    for this target (``url``, ``path``, ``statement_timeout`` …)."""


class ServeSettings(StrictModel):
    """``[serve]``: the status pages of ``eil-run serve`` (docs/status.md)."""

    run_token: str | None = None
    """A bearer token that lets a client not on this machine ask for "run now"
    (``Authorization: Bearer …``, with ``serve --allow-run``).  Written as
    ``"${ENV_VAR}"``: a secret is never kept in the file, nor logged."""


class ProjectSettings(StrictModel):
    """The contents of ``eil.toml``."""

    smtp: SmtpSettings | None = None
    """The mail server; without it, nothing is sent by email."""

    delivery: DeliverySettings = DeliverySettings()
    """Failure recipient, report links, retries."""

    connections: dict[str, ConnectionSettings] = Field(default_factory=dict)
    """Named connections pipelines use with ``source = "NAME"``."""

    ledger: LedgerSettings = LedgerSettings()
    """Where the run ledger lives (default: the SQLite file under the reports folder)."""

    storage: StorageSettings = StorageSettings()
    """Where reports are published: a shared folder or an object store."""

    targets: dict[str, TargetSettings] = Field(default_factory=dict)
    """Overrides of connections per environment (``dev``, ``prod`` …), as dbt's targets."""

    calendars: dict[str, CalendarSettings] = Field(default_factory=dict)
    """Company calendars schedules name with ``calendar = "NAME"``: public holidays,
    shutdown days and extra business days."""

    serve: ServeSettings = ServeSettings()
    """The status pages of ``eil-run serve``: the "run now" token."""

    target: str | None = None
    """The target in force (set by the loader from ``--target`` or ``EIL_TARGET``,
    not written in the file)."""

    def secrets(self) -> list[str]:
        """Values that must never appear in a log, the ledger or a report."""
        found: list[str] = []
        if self.smtp is not None:
            found += [v for v in (self.smtp.username, self.smtp.password) if v]
        if self.serve.run_token:
            found.append(self.serve.run_token)
        urls = [connection.url for connection in self.connections.values() if connection.url]
        if self.ledger.url:
            urls.append(self.ledger.url)
        for url in urls:
            if url:
                found.append(url)
                match = _URL_PASSWORD.match(url)
                if match and match.group(1):
                    from urllib.parse import unquote

                    found += [match.group(1), unquote(match.group(1))]
        return found


def read_dotenv(file: Path) -> dict[str, str]:
    """``KEY=value`` lines of a ``.env`` file (``export``, quotes and ``#`` comments allowed)."""
    values: dict[str, str] = {}
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return values
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].strip()
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = re.sub(r"\s+#.*$", "", value)
        values[key] = value
    return values


def project_environment(root: Path | str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for ``${VAR}``: the ``.env`` beside ``eil.toml``, then the
    real environment on top (it wins)."""
    merged = read_dotenv(Path(root).resolve() / ".env")
    merged.update(os.environ if env is None else env)
    return merged


def _connection_problems(
    raw: dict[str, Any], env: Mapping[str, str], target: str | None
) -> list[tuple[str, str]]:
    """Check literal passwords, apply the target's overrides, expand ``${VAR}``, in place."""
    from .loader import expand_env

    problems: list[tuple[str, str]] = []
    connections = raw.get("connections")
    targets = raw.get("targets")
    if target is not None:
        if not isinstance(targets, dict) or target not in targets:
            defined = (
                ", ".join(sorted(targets)) if isinstance(targets, dict) and targets else "none"
            )
            problems.append(("targets", f'no target named "{target}" (targets defined: {defined})'))
        elif isinstance(targets[target], dict) and isinstance(connections, dict):
            overrides = targets[target].get("connections", {})
            if isinstance(overrides, dict):
                for name, values in overrides.items():
                    if name not in connections:
                        problems.append(
                            (
                                f"targets.{target}.connections.{name}",
                                f'no connection named "{name}" in [connections]',
                            )
                        )
                    elif isinstance(values, dict) and isinstance(connections[name], dict):
                        connections[name] = {**connections[name], **values}
    if isinstance(targets, dict):
        for tname, tvalue in targets.items():
            tconns = tvalue.get("connections") if isinstance(tvalue, dict) else None
            for name, values in (tconns or {}).items() if isinstance(tconns, dict) else ():
                problems.extend(_password_problem(f"targets.{tname}.connections.{name}", values))
    if not isinstance(connections, dict):
        return problems
    for name, values in connections.items():
        if not isinstance(values, dict):
            continue
        key = f"connections.{name}"
        problems.extend(_password_problem(key, values))
        for field_key, message in expand_env(values, env, keys=(("url",), ("path",))):
            problems.append((f"{key}.{field_key}", message))
    return problems


def _password_problem(key: str, values: Any) -> list[tuple[str, str]]:
    url = values.get("url") if isinstance(values, dict) else None
    if not isinstance(url, str):
        return []
    match = _URL_PASSWORD.match(url.strip())
    if match and match.group(1) and not _ENV_ONLY.match(match.group(1)):
        # Checked before expansion; the message never shows the URL.
        return [
            (
                f"{key}.url",
                'write the password as "${ENV_VAR}" (in the environment or .env): '
                "secrets are never kept in files",
            )
        ]
    return []


def _ledger_url_problems(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A literal password in ``[ledger] url`` (checked before ``${ENV}`` expansion)."""
    ledger = raw.get("ledger")
    url = ledger.get("url") if isinstance(ledger, dict) else None
    if not isinstance(url, str):
        return []
    match = _URL_PASSWORD.match(url)
    if match and match.group(1) and not _ENV_ONLY.match(match.group(1)):
        return [
            (
                "ledger.url",
                'write the password as "${ENV_VAR}" and set that variable: '
                "secrets are never kept in files",
            )
        ]
    return []


def load_project_settings(
    root: Path | str,
    *,
    env: Mapping[str, str] | None = None,
    target: str | None = None,
) -> ProjectSettings:
    """Read ``<root>/eil.toml``; without the file, the defaults (no SMTP server).

    Raises :class:`ConfigError` listing every problem of the file.  ``env`` is
    the environment for ``${VAR}`` references (default ``os.environ``), over
    the ``.env`` file beside ``eil.toml``.  ``target`` (default: ``EIL_TARGET``)
    selects the ``[targets.NAME]`` overrides of the connections.
    """
    from .toml_files import display_path, expand_env, pydantic_problems, read_toml

    file = Path(root).resolve() / PROJECT_FILE
    if not file.exists():
        return ProjectSettings()
    shown = display_path(file)
    raw = read_toml(file, shown)
    env = project_environment(root, env)
    target = target if target is not None else (env.get("EIL_TARGET") or None)

    problems: list[tuple[str, str]] = []
    problems.extend(_connection_problems(raw, env, target))
    if target is not None:
        raw["target"] = target
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
    serve = raw.get("serve")
    if isinstance(serve, dict):
        token = serve.get("run_token")
        if isinstance(token, str) and not _ENV_ONLY.match(token.strip()):
            problems.append(
                (
                    "serve.run_token",
                    'write the token as "${ENV_VAR}" and set that variable: '
                    "secrets are never kept in files",
                )
            )
    problems.extend(_ledger_url_problems(raw))
    problems.extend(expand_env(raw, env, keys=PROJECT_ENV_KEYS))
    settings: ProjectSettings | None = None
    try:
        settings = ProjectSettings.model_validate(raw)
    except ValidationError as exc:
        for key, message in pydantic_problems(exc, raw, ProjectSettings):
            # A type error on a credential would print its value: say only what was expected.
            if key in ("smtp.password", "smtp.username", "serve.run_token", "ledger.url") or (
                key.startswith("connections.") and key.endswith(".url")
            ):
                message = message.split(", got ")[0]
            if (key, message) not in problems:
                problems.append((key, message))
    if settings is None or problems:
        raise ConfigError(file, problems, shown=shown)
    return settings


def load_ledger_settings(
    root: Path | str, *, env: Mapping[str, str] | None = None
) -> LedgerSettings:
    """Only ``[ledger]`` of ``<root>/eil.toml`` (the defaults without it), for the
    commands that read the run ledger and nothing else (``list``, ``history``,
    ``status``, the status page): a variable another table names but this
    shell does not set (an SMTP password) does not stop them.

    Raises :class:`ConfigError` for a problem of ``[ledger]`` itself.
    """
    return _load_table(root, "ledger", LedgerSettings, env, _ledger_url_problems)


def load_storage_settings(
    root: Path | str, *, env: Mapping[str, str] | None = None
) -> StorageSettings:
    """Only ``[storage]`` of ``<root>/eil.toml`` (the defaults without it): where
    the reports go, for every command that writes or reads them.

    Raises :class:`ConfigError` for a problem of ``[storage]`` itself.
    """
    return _load_table(root, "storage", StorageSettings, env, lambda raw: [])


def _load_table(
    root: Path | str,
    table: str,
    model: type[Any],
    env: Mapping[str, str] | None,
    before_expansion: Any,
) -> Any:
    """One table of eil.toml, validated by ``model``, its ``${ENV}`` values expanded."""
    from .toml_files import display_path, expand_env, pydantic_problems, read_toml

    file = Path(root).resolve() / PROJECT_FILE
    if not file.exists():
        return model()
    shown = display_path(file)
    values = read_toml(file, shown).get(table, {})
    if not isinstance(values, dict):
        raise ConfigError(file, [(table, f"expected a table ([{table}])")], shown=shown)
    raw: dict[str, Any] = {table: values}
    problems = before_expansion(raw)
    keys = tuple(key for key in PROJECT_ENV_KEYS if key[0] == table)
    problems.extend(expand_env(raw, project_environment(root, env), keys=keys))
    settings = None
    if not problems:
        try:
            settings = model.model_validate(raw[table])
        except ValidationError as exc:
            for key, message in pydantic_problems(exc, raw[table], model):
                # A URL may hold a secret once expanded: say only what was expected.
                problems.append((f"{table}.{key}", message.split(", got ")[0]))
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

    report: dict[str, Any] = raw["report"] if isinstance(raw.get("report"), dict) else {}
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


# --- a pipeline's source = "NAME" -----------------------------------------------------


def source_problems(
    raw: dict[str, Any], root: Path, env: Mapping[str, str]
) -> list[tuple[str, str]]:
    """A pipeline's ``source = "NAME"`` must name a connection of ``eil.toml``.

    Problems of ``eil.toml`` itself are reported against that file (by
    ``validate``), so here they only say the name cannot be checked.
    """
    name = raw.get("source")
    if not isinstance(name, str):
        return []
    try:
        settings = load_project_settings(root, env=env)
    except ConfigError:
        return [("source", f'cannot check connection "{name}": eil.toml has problems')]
    if name in settings.connections:
        return []
    from .models import _did_you_mean

    names = sorted(settings.connections)
    defined = ", ".join(names) or "none"
    where = (
        "eil.toml" if (Path(root) / PROJECT_FILE).exists() else "eil.toml (there is no eil.toml)"
    )
    return [
        (
            "source",
            f'no connection named "{name}" in {where}{_did_you_mean(name, names)} '
            f"(connections defined: {defined})",
        )
    ]


# --- a schedule's calendar ------------------------------------------------------------


def resolve_schedule_calendar(
    raw: dict[str, Any], root: Path, env: Mapping[str, str]
) -> tuple[CalendarDefinition | None, list[tuple[str, str]]]:
    """The calendar a pipeline's ``[schedule] calendar`` names, or the problems with it.

    Names are looked up in eil.toml's ``[calendars]`` first, then as public
    holiday codes of the ``holidays`` package.
    """
    schedule = raw.get("schedule")
    names = schedule.get("calendar") if isinstance(schedule, dict) else None
    if names is None or not isinstance(names, (str, list)):
        return None, []
    custom: dict[str, CalendarSettings] = {}
    if (Path(root) / PROJECT_FILE).exists():
        try:
            custom = load_project_settings(root, env=env).calendars
        except ConfigError:
            return None, [("schedule.calendar", "cannot check the calendar: eil.toml has problems")]
    try:
        return resolve_calendar(names, custom), []
    except ValueError as exc:
        return None, [("schedule.calendar", str(exc))]
