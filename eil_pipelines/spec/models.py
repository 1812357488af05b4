"""The pipeline file contract, as Pydantic models.

Every field has a docstring: it becomes the field's description in the JSON
Schema and the reference in ``docs/pipeline-file.md`` (a test keeps them in
step).  The models are frozen: a loaded pipeline never changes under a run.
"""

from __future__ import annotations

import itertools
import re
import textwrap
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ..schedule.durations import check_duration, parse_duration
from ..schedule.zones import zone_problem

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
PARAM_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

#: Parameters every query and template receives; user params may not reuse them.
BUILTIN_PARAMS = (
    "run_date",
    "run_time",
    "period_start",
    "period_end",
    "prev_period_start",
    "prev_period_end",
)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _to_duration(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    return value


_DURATION_PATTERN = r"^\s*(\d+(\.\d+)?\s*(ms|w|d|h|m|s)\s*)+$"

Duration = Annotated[
    timedelta,
    BeforeValidator(_to_duration),
    AfterValidator(check_duration),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _DURATION_PATTERN,
            "examples": ["90s", "15m", "1h30m"],
        }
    ),
]


def _bounded_duration(minimum: timedelta | None, maximum: timedelta) -> Any:
    """A duration type that must lie within ``minimum`` and ``maximum`` (docs/pipeline-file.md).

    The bounds make validation total: a value that passes can be scheduled
    (an interval under 1s has no grid; a retry delay doubled ten times, or a
    timeout, past the year 9999 overflows the clock arithmetic).
    """

    def parse(value: Any) -> Any:
        if isinstance(value, str):
            return parse_duration(value, minimum=minimum, maximum=maximum)
        return value

    def check(value: timedelta) -> timedelta:
        return check_duration(value, minimum=minimum, maximum=maximum)

    return Annotated[
        timedelta,
        BeforeValidator(parse),
        AfterValidator(check),
        WithJsonSchema({"type": "string", "pattern": _DURATION_PATTERN}),
    ]


_SECOND = timedelta(seconds=1)
if TYPE_CHECKING:  # to the type checker they are durations; pydantic sees the bounds
    Interval = timedelta
    RetryDelay = timedelta
    Timeout = timedelta
    Jitter = timedelta
    WaitFor = timedelta
    CheckEvery = timedelta
else:
    #: ``every``: 1s to 366d.
    Interval = _bounded_duration(_SECOND, timedelta(days=366))
    #: ``retry_delay``: 1s to 1d (doubled at most ``MAX_RETRIES - 1`` times: 512 days).
    RetryDelay = _bounded_duration(_SECOND, timedelta(days=1))
    #: ``timeout``: 1s to 7d.
    Timeout = _bounded_duration(_SECOND, timedelta(days=7))
    #: ``jitter``: above zero, up to 1d.
    Jitter = _bounded_duration(None, timedelta(days=1))
    #: ``wait_for``: 1s to 7d.
    WaitFor = _bounded_duration(_SECOND, timedelta(days=7))
    #: ``require.every``: 1s to 1d.
    CheckEvery = _bounded_duration(_SECOND, timedelta(days=1))
#: ``retries``: at most 10.
MAX_RETRIES = 10
#: ``max_catch_up``: at most 1000 missed runs made up.
MAX_CATCH_UP = 1000
#: ``start`` of an ``every`` grid: within these years, like ``--at``.
START_YEARS = (1900, 9000)

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
NumberFormat = Literal["number", "currency", "percent", "compact"]


def _to_times(value: Any) -> Any:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        return value
    out = []
    for item in values:
        if not isinstance(item, str) or not re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", item.strip()):
            raise ValueError(f'invalid time {item!r}: expected "HH:MM", such as "08:00"')
        parts = [int(p) for p in item.strip().split(":")]
        try:
            hour, minute, *seconds = parts
            out.append(time(hour, minute, seconds[0] if seconds else 0))
        except ValueError:
            raise ValueError(f'invalid time "{item}": hour must be 0-23 and minute 0-59') from None
    return out


DailyTimes = Annotated[
    list[time],
    BeforeValidator(_to_times),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\d{1,2}:\d{2}$"},
                {"type": "array", "items": {"type": "string", "pattern": r"^\d{1,2}:\d{2}$"}},
            ],
            "examples": ["08:00", ["08:00", "17:30"]],
        }
    ),
]


class StrictModel(BaseModel):
    """Base: unknown keys are errors, types are not coerced, instances are frozen.

    Each field is documented by the docstring under it; :func:`field_docs`
    reads them for the JSON Schema and the docs tests.  (Pydantic's
    ``use_attribute_docstrings`` would do it at import, re-reading this source
    on every start of ``eil-run``.)
    """

    # defer_build: a schema is built on first use, and PipelineSpec builds the nested
    # ones as part of its own, so start-up does not build each model twice.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)


def field_docs(model: type[BaseModel]) -> dict[str, str]:
    """The docstring written under each field of ``model`` (and its bases), by field name."""
    import ast
    import inspect

    docs: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, BaseModel)) or klass is BaseModel:
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, following in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(following.value.value)
    return docs


class RequireSpec(StrictModel):
    """A freshness gate: a query that must return one true value before the run starts."""

    query: str
    """The query (in ``[queries]``) that says whether the data is ready: its first
    row's first column must be true.  Bound like any query, on the pipeline's source."""

    every: CheckEvery = timedelta(minutes=5)
    """How often the gate is checked again until ``wait_for`` runs out (1s to 1d)."""


class ScheduleSpec(StrictModel):
    """When a pipeline runs.  Give exactly one of ``cron``, ``every`` or ``daily``."""

    cron: str | None = None
    """A 5-field cron expression (names, ranges, lists, steps, ``L`` and ``#``) or an
    alias such as ``@daily``; day-of-month and day-of-week combine as in Vixie cron."""

    every: Interval | None = None
    """Run at a fixed interval of real time, such as ``"15m"`` or ``"1h30m"``, from
    1s to 366d; fire times are whole multiples of it counted from ``start``."""

    daily: DailyTimes | None = None
    """Run every day at a local time (``"08:00"``) or at each of a list of times."""

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = None
    """With ``daily``: only on these weekdays, such as ``["mon", "fri"]``."""

    timezone: str | None = None
    """IANA time zone the schedule is read in, such as ``"Europe/Berlin"``; default:
    the machine's local zone."""

    start: datetime | None = None
    """Anchor of an ``every`` grid (local time in ``timezone``), in the years 1900 to
    9000; default 2000-01-01T00:00."""

    period: Literal["interval", "day", "week", "month"] = "interval"
    """What a run covers: ``interval`` (previous fire to this fire), or the previous
    calendar ``day``, ISO ``week`` or ``month``."""

    catch_up: Literal["latest", "all", "none"] = "latest"
    """Fire times missed while the scheduler was down: run the ``latest`` one, ``all``
    of them (up to ``max_catch_up``), or ``none``."""

    max_catch_up: Annotated[int, Field(ge=1, le=MAX_CATCH_UP)] = 10
    """With ``catch_up = "all"``: at most this many missed runs, the most recent ones
    (1 to 1000)."""

    overlap: Literal["skip", "queue"] = "skip"
    """A fire time that comes while the previous run is still going is ``skip``ped
    (and logged) or ``queue``d."""

    retries: Annotated[int, Field(ge=0, le=MAX_RETRIES)] = 0
    """How many times a failed run is tried again (0 to 10)."""

    retry_delay: RetryDelay = timedelta(minutes=1)
    """Wait before the first retry, from 1s to 1d; doubles at each further attempt."""

    timeout: Timeout | None = None
    """A run still going after this long (1s to 7d) is stopped and recorded as timed out."""

    jitter: Jitter | None = None
    """A random delay of up to this long (at most 1d) before each run, to spread
    pipelines that share a fire time."""

    calendar: str | list[str] | None = None
    """A business calendar: public holidays by country code and optional subdivision
    (``"DE-BE"``, ``"US"``), a ``[calendars.NAME]`` table of eil.toml, or a list of
    them (merged).  Goes with ``cron`` or ``daily``."""

    skip_holidays: bool = False
    """With ``calendar``: a fire time on a holiday does not run; the ledger records it
    as skipped with the holiday's name.  The same as ``roll = "skip"``."""

    roll: Literal["skip", "next", "previous"] | None = None
    """With ``calendar``: a fire time on a holiday is dropped (``skip``) or moved to the
    same time on the ``next`` or ``previous`` business day (merged into that day's run
    when the schedule fires that day anyway)."""

    business_day: Annotated[int, Field(ge=-23, le=23)] | None = None
    """With ``calendar``: run on the Nth business day of each month (``1`` the first,
    ``-1`` the last) at the times of ``cron`` or ``daily``; their day fields are not used."""

    after: list[Annotated[str, StringConstraints(min_length=1, max_length=128)]] = Field(
        default_factory=list
    )
    """Pipelines that must have succeeded for this run's period before it starts (never
    earlier than its own fire time); see docs/scheduler.md for which of their runs count."""

    wait_for: WaitFor = timedelta(hours=1)
    """How long a run waits for ``after`` and ``require`` before it fails (1s to 7d)."""

    require: RequireSpec | None = None
    """A freshness gate checked before the run: ``query`` must return true."""

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str | None) -> str | None:
        if value is not None:
            from ..schedule.cron import validate_cron

            validate_cron(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            problem = zone_problem(value)
            if problem:
                raise ValueError(problem)
        return value

    @field_validator("start")
    @classmethod
    def _check_start(cls, value: datetime | None) -> datetime | None:
        low, high = START_YEARS
        if value is not None and not low <= value.year <= high:
            raise ValueError(
                f"start {value.isoformat()} is out of range: the year must be {low} to {high}"
            )
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleSpec:
        given = [k for k in ("cron", "every", "daily") if getattr(self, k) is not None]
        if len(given) != 1:
            if given:
                both = " and ".join(f'"{k}"' for k in given)
                raise ValueError(f'give exactly one of "cron", "every" or "daily", not {both}')
            raise ValueError('give exactly one of "cron", "every" or "daily"')
        if self.days is not None and self.daily is None:
            raise ValueError('"days" goes with "daily"; for cron use the day-of-week field')
        if self.start is not None and self.every is None:
            raise ValueError('"start" goes with "every"')
        self._check_calendar_keys()
        return self

    def _check_calendar_keys(self) -> None:
        used = [
            k
            for k, v in (
                ("skip_holidays", self.skip_holidays or None),
                ("roll", self.roll),
                ("business_day", self.business_day),
            )
            if v is not None
        ]
        if used and self.calendar is None:
            raise ValueError(f'"{used[0]}" needs a "calendar", such as calendar = "DE-BE"')
        if self.calendar is not None and self.every is not None:
            raise ValueError('a "calendar" goes with "cron" or "daily", not with "every"')
        if self.business_day == 0:
            raise ValueError("business_day counts from 1, or from -1 at the end of the month")
        if self.business_day is not None and (self.roll or self.skip_holidays):
            raise ValueError('"business_day" already falls on business days; drop "roll"')
        if self.skip_holidays and self.roll not in (None, "skip"):
            raise ValueError(f'skip_holidays = true and roll = "{self.roll}" disagree; keep one')
        if self.calendar is not None and not isinstance(self.calendar, str) and not self.calendar:
            raise ValueError('"calendar" needs at least one name, such as "DE-BE"')

    @property
    def holiday_roll(self) -> Literal["skip", "next", "previous"]:
        """What a holiday does to a fire time: ``roll``, or ``skip`` when only
        ``skip_holidays`` (or nothing) is given."""
        return self.roll or "skip"


class SourceSpec(StrictModel):
    """Where the queries run."""

    kind: Literal["duckdb", "sqlite"] = "duckdb"
    """The database engine: ``duckdb`` (embedded, reads CSV and Parquet files named
    in the SQL) or ``sqlite``."""

    path: str | None = None
    """Database file, relative to the project root; ``${ENV_VAR}`` is expanded.
    Opened read-only.  Without it, DuckDB runs in memory (SQLite needs a path)."""

    @model_validator(mode="after")
    def _sqlite_needs_path(self) -> SourceSpec:
        if self.kind == "sqlite" and not self.path:
            raise ValueError('a "sqlite" source needs a "path"')
        return self


ColumnFormat = Literal[
    "number", "currency", "percent", "compact", "compact_currency", "change", "id", "text", "date"
]


class ColumnSpec(StrictModel):
    """How one result column reads in the report's tables (``[queries.x.columns]``)."""

    label: str | None = None
    """The column's heading, such as ``"Change"``; default: the column's name."""

    format: ColumnFormat | None = None
    """``number``, ``currency``, ``percent`` (a fraction: 0.124 prints 12.4%),
    ``change`` (a signed percent: +12.4%), ``compact`` (1.2M), ``compact_currency``
    ($1.2M), ``id`` (no separators), ``text`` or ``date``; default: from the
    column's type and name (money, rates, counts, IDs and dates each look right)."""

    decimals: Annotated[int, Field(ge=0, le=6)] | None = None
    """Digits after the decimal point; default depends on ``format`` and the values."""


class QuerySpec(StrictModel):
    """One named query.  Give exactly one of ``sql`` or ``file``."""

    sql: str | None = None
    """The SQL text.  Parameters are written ``$name`` and always bound."""

    file: str | None = None
    """A file holding the SQL, relative to the project root."""

    show: bool = True
    """``false`` keeps this query out of the built-in template's data section
    (it still feeds metrics, charts and exports)."""

    columns: dict[str, ColumnSpec] = {}
    """Labels and formats of result columns in tables, by column name:
    ``change_pct = { label = "Change", format = "change" }``."""

    @model_validator(mode="after")
    def _one_of(self) -> QuerySpec:
        if (self.sql is None) == (self.file is None):
            which = "both" if self.sql is not None else "neither"
            raise ValueError(f'give exactly one of "sql" or "file" (got {which})')
        return self


class MetricSpec(StrictModel):
    """A KPI figure at the top of the report."""

    label: str
    """The name shown to the reader, such as ``"Revenue"``."""

    query: str
    """The query whose first row holds the value (it should return one row)."""

    column: str
    """Column holding this period's value."""

    compare: str | None = None
    """Column holding the previous period's value, for the change."""

    format: NumberFormat = "number"
    """How the value prints: ``number``, ``currency``, ``percent`` (a fraction:
    0.124 prints 12.4%) or ``compact`` (1.2M)."""

    good: Literal["up", "down"] = "up"
    """Which direction of change is good news (``down`` for costs, churn, errors)."""

    decimals: Annotated[int, Field(ge=0, le=6)] | None = None
    """Digits after the decimal point; default depends on ``format``."""


ChartType = Literal["line", "bar", "barh", "area", "scatter", "pie", "hist"]


class ChartSpec(StrictModel):
    """A chart drawn from a query's result."""

    name: Name
    """Unique within the pipeline; the image's file name and the template key
    (``charts.<name>``)."""

    query: str
    """The query whose result is drawn."""

    type: ChartType = "line"
    """``line``, ``bar``, ``barh``, ``area``, ``scatter``, ``pie`` or ``hist``."""

    x: str | None = None
    """The x-axis column (category labels for ``pie``); not used by ``hist``."""

    y: str | list[str]
    """The value column, or a list of columns drawn as separate series."""

    series: str | None = None
    """Draw one series per distinct value of this column (long-format data)."""

    title: str | None = None
    """Chart title; default: the chart name in words."""

    format: NumberFormat | None = None
    """How value-axis tick labels print; default plain numbers."""

    target: float | None = None
    """Draw a dashed target line at this value (line, bar, barh and area charts)."""

    target_label: str | None = None
    """The target line's label; default "Target"."""

    sort: Literal["asc", "desc"] | None = None
    """Bar charts: order the bars by value, ascending or descending."""

    limit: Annotated[int, Field(ge=1)] | None = None
    """Bar and pie charts: show the top N categories and fold the rest into "Other"."""

    y_zero: bool = False
    """Line charts: start the value axis at zero.  Without it the axis fits the
    data, and when it does not reach zero the chart says so in its corner
    ("Axis does not start at 0").  Bar and area charts always start at zero."""

    @model_validator(mode="after")
    def _shape(self) -> ChartSpec:
        ys = [self.y] if isinstance(self.y, str) else self.y
        if not ys:
            raise ValueError('"y" needs at least one column')
        if self.type != "hist" and self.x is None:
            raise ValueError(f'a "{self.type}" chart needs an "x" column')
        if self.series is not None and len(ys) > 1:
            raise ValueError('use either "series" or a list of "y" columns, not both')
        if self.type == "pie" and (len(ys) > 1 or self.series is not None):
            raise ValueError('a "pie" chart takes one "y" column and no "series"')
        if self.target is not None and self.type not in ("line", "bar", "barh", "area"):
            raise ValueError(f'"target" is for line, bar, barh and area charts, not "{self.type}"')
        if self.sort is not None and self.type not in ("bar", "barh"):
            raise ValueError(f'"sort" is for bar and barh charts, not "{self.type}"')
        if self.y_zero and self.type != "line":
            raise ValueError(f'"y_zero" is for line charts, not "{self.type}"')
        if self.limit is not None and self.type not in ("bar", "barh", "pie"):
            raise ValueError(f'"limit" is for bar, barh and pie charts, not "{self.type}"')
        return self

    @property
    def y_columns(self) -> list[str]:
        """``y`` as a list."""
        return [self.y] if isinstance(self.y, str) else list(self.y)


class ReportSpec(StrictModel):
    """How the report is rendered."""

    template: str | None = None
    """A Jinja template, relative to the project root; without it, the built-in
    executive template.  One template produces every format."""

    formats: Annotated[list[Literal["md", "html", "pdf"]], Field(min_length=1)] = ["md", "html"]
    """Which files to write: ``md``, ``html`` and ``pdf`` (rendered from the HTML;
    needs the ``pdf`` extra: ``pip install 'eil-pipelines[pdf]'``)."""

    exports: list[Literal["csv", "xlsx", "parquet"]] = []
    """Data files written beside the report, one per query, with every row."""

    keep: Annotated[int, Field(ge=1)] | None = None
    """Keep only the newest N reports of this pipeline (with their charts, exports
    and manifests); older ones are deleted.  Files it did not write are never touched."""

    max_rows: Annotated[int, Field(ge=1)] = 50
    """Tables show at most this many rows and say how many were left out
    (never more than 1,000: a document is not a data file; exports hold every row)."""

    data: Literal["none", "summary", "full"] = "summary"
    """The built-in template's data section: ``none``; ``summary`` (the first
    rows of each query that no chart or metric already shows, with a link to
    its export); ``full`` (every query with ``show`` left on, up to ``max_rows``)."""

    currency: str = "$"
    """Symbol used by the ``currency`` format."""

    @field_validator("formats", "exports")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each entry may appear once")
        return value


EMAIL_PATTERN = r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$"
Email = Annotated[str, StringConstraints(pattern=EMAIL_PATTERN)]


def _to_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


EmailList = Annotated[list[Email], BeforeValidator(_to_list), Field(min_length=1)]


class DeliverSpec(StrictModel):
    """One delivery of the report: by email (``to``) or to a webhook (``webhook``)."""

    to: EmailList | None = None
    """Email recipients: an address or a list of addresses."""

    webhook: str | None = None
    """A URL that receives a JSON POST; ``${ENV_VAR}`` is expanded (keep secrets there)."""

    subject: str = "{{ pipeline.title }} – {{ run.date }}"
    """The email subject or message title: a Jinja template with the report's context."""

    attach: list[Literal["md", "html", "pdf", "csv", "xlsx", "parquet"]] = []
    """Email only: report formats and exports attached; the HTML report is the body."""

    when: Literal["always", "not_empty", "changed", "changed_text"] = "always"
    """``always``; ``not_empty``: skip when every query returned no rows; ``changed``:
    skip when the data (each query's result hash and the parameters, from the
    manifest) equal those of the last report sent; ``changed_text``: skip when
    the report's text equals the last one sent (dates in it count as changes)."""

    format: Literal["slack", "json"] = "slack"
    """Webhook only: a Slack-style payload (``slack``) or a generic JSON one (``json``)."""

    @model_validator(mode="after")
    def _one_target(self) -> DeliverSpec:
        if (self.to is None) == (self.webhook is None):
            which = "both" if self.to is not None else "neither"
            raise ValueError(f'give exactly one of "to" or "webhook" (got {which})')
        if self.attach and self.webhook is not None:
            raise ValueError('"attach" is for email deliveries ("to"), not webhooks')
        if self.format != "slack" and self.to is not None:
            raise ValueError('"format" is for webhooks, not email deliveries')
        return self


class AlertSpec(StrictModel):
    """A condition: a query whose non-empty result means "alert"."""

    query: str
    """The query; each row it returns is one finding."""

    notify: EmailList
    """Who is told: an address or a list of addresses."""

    mode: Literal["on_change", "every_run"] = "on_change"
    """``on_change``: one message when the alert starts and one when it clears;
    ``every_run``: a message after every run that finds rows."""

    subject: str = "Alert: {{ pipeline.title }}"
    """The alert message's subject (Jinja, the report's context)."""


ParamValue = bool | int | float | str | date


def _source_tag(value: Any) -> str:
    return "name" if isinstance(value, str) else "table"


# A tagged union: a table is checked only as a [source] table and a string only as a
# connection name, so errors say what was wrong with the one the author wrote.
SourceField = Annotated[
    Annotated[SourceSpec, Tag("table")] | Annotated[Name, Tag("name")],
    Discriminator(_source_tag),
]


class PipelineSpec(StrictModel):
    """One report: a pipeline file."""

    title: Annotated[str, StringConstraints(min_length=1)]
    """The report's title."""

    name: Name | None = None
    """The pipeline's name; default: the file name without ``.toml``."""

    description: str = ""
    """The question the report answers, shown under the title."""

    enabled: bool = True
    """A disabled pipeline is validated but never run."""

    schedule: ScheduleSpec | None = None
    """When to run; without it the pipeline runs only on demand (``--once``)."""

    source: SourceField = SourceSpec()
    """Where the queries run: a connection's name from ``eil.toml``
    (``source = "warehouse"``), or a ``[source]`` table; default: an in-memory DuckDB."""

    params: dict[str, ParamValue] = {}
    """User parameters, bound into every query that uses them (``$name``) and
    available to templates as ``params.<name>``."""

    queries: Annotated[dict[str, QuerySpec], Field(min_length=1)]
    """Named queries; each result reaches the template as ``data.<name>``."""

    metrics: list[MetricSpec] = []
    """KPI figures at the top of the report."""

    charts: list[ChartSpec] = []
    """Charts drawn from query results."""

    report: ReportSpec = ReportSpec()
    """Template and output formats."""

    owner: Email | None = None
    """Who hears about failures of this pipeline (and its recovery); default: the
    project's ``delivery.failure_recipient``."""

    deliver: list[DeliverSpec] = []
    """Where the report goes after each scheduled run."""

    alert: AlertSpec | None = None
    """An optional condition checked after each run."""

    @field_validator("params")
    @classmethod
    def _param_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not re.match(PARAM_NAME_PATTERN, key):
                raise ValueError(
                    f'parameter name "{key}" must be a letter or _ then letters, digits or _'
                )
            if key in BUILTIN_PARAMS:
                raise ValueError(f'parameter "{key}" is built in and cannot be set')
        return value

    @field_validator("queries")
    @classmethod
    def _query_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not re.match(PARAM_NAME_PATTERN, key):
                raise ValueError(
                    f'query name "{key}" must be a letter or _ then letters, digits or _'
                )
        return value

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> PipelineSpec:
        if info.context and info.context.get("references_checked"):
            return self  # the loader reports these itself, beside every other problem
        problems = reference_problems(self.model_dump())
        if problems:
            raise ValueError("; ".join(f"{k}: {m}" for k, m in problems))
        return self


def reference_problems(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """Cross-references a field validator cannot see: metrics and charts naming
    queries that do not exist, and duplicate chart names.

    Works on the raw parsed TOML so the loader can report these together with
    the type errors of the same file.
    """
    problems: list[tuple[str, str]] = []
    queries = raw.get("queries")
    names = sorted(queries) if isinstance(queries, dict) else []
    defined = ", ".join(names) if names else "none"
    for section in ("metrics", "charts"):
        items = raw.get(section)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            query = item.get("query")
            if isinstance(query, str) and isinstance(queries, dict) and query not in queries:
                hint = _did_you_mean(query, names)
                problems.append(
                    (
                        f"{section}[{i}].query",
                        f'no query named "{query}"{hint} (queries defined: {defined})',
                    )
                )
    schedule = raw.get("schedule")
    require = schedule.get("require") if isinstance(schedule, dict) else None
    gate = require.get("query") if isinstance(require, dict) else None
    if isinstance(gate, str) and isinstance(queries, dict) and gate not in queries:
        problems.append(
            (
                "schedule.require.query",
                f'no query named "{gate}"{_did_you_mean(gate, names)} (queries defined: {defined})',
            )
        )
    charts = raw.get("charts")
    if isinstance(charts, list):
        seen: dict[str, int] = {}
        for i, item in enumerate(charts):
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str):
                if name in seen:
                    problems.append(
                        (
                            f"charts[{i}].name",
                            f'chart name "{name}" is already used by charts[{seen[name]}]',
                        )
                    )
                seen.setdefault(name, i)
    return problems


def _did_you_mean(word: str, options: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""
