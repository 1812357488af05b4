"""Templates: loading, the sandboxed Jinja environment, rendering, errors.

One template produces both formats.  It is Markdown with Jinja and is
rendered twice: for ``md`` the output is the report; for ``html`` the
output Markdown (with raw HTML blocks from filters and chart embeds) goes
through markdown-it and into a self-contained HTML document.

Security rules, and why:

* The environment is an :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`
  (templates are project files, but reports are mailed to people who did
  not write them): no attribute starting with ``_``, no ``str.format``
  escapes, no ``list.append``/``dict.update`` on values.
* pandas and numpy objects (``data.orders``, a column, a cell) allow only
  the read-only attributes in :data:`SAFE_DATA_ATTRIBUTES`, plus column
  names on a DataFrame (``data.orders.revenue``) and labels on a row
  (``data.orders.iloc[0].revenue``).  An allow-list, not a block-list: ``to_csv``,
  ``to_pickle``, ``ndarray.tofile`` write files, ``query``/``eval`` evaluate
  strings with access to the caller's frame, ``apply``/``agg`` look methods
  up by name (``df.agg("to_csv", ...)``), ``style`` and ``plot`` lead to
  more writers.  Of the ``to_*`` methods only ``to_dict`` and ``to_list``
  are allowed.
* ``StrictUndefined``: a misspelt name is an error, never an empty string.
* In the Markdown rendering every printed value that is not
  :class:`~markupsafe.Markup` (tables, code blocks and chart embeds from the
  filters are) is escaped for Markdown: ``\\``, `````, ``*``, ``[``,
  ``]`` and ``|`` get a backslash, ``<`` becomes ``&lt;``, a leading ``#`` or
  ``>`` a backslash, and line breaks become spaces.  A row value
  ``![img](http://…)``, ``<!-- x`` or ``<script>`` prints as text, never as an
  image, a comment or HTML, and cannot start a block of its own.
* Size limits: a string or list repeated with ``*`` may hold at most
  :data:`MAX_REPEAT_LENGTH` items, a power ``**`` an exponent of at most
  :data:`MAX_EXPONENT`, and a rendered report at most :data:`MAX_OUTPUT_CHARS`
  characters; past them rendering stops with a :class:`RenderError`.
* Every ``href`` and ``src`` of the HTML report is checked against a list of
  safe schemes (:mod:`.links`).
* In the HTML rendering autoescape is on, and every printed value that is
  not :class:`~markupsafe.Markup` is also kept from acting as Markdown: ``[``,
  ``]``, ``\\`` and line breaks are written as character references, so a
  value can neither become a link or image (an outside request) nor break
  out of the line or HTML block it is printed in.  Markup from filters and
  chart embeds is trusted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from jinja2 import FunctionLoader, StrictUndefined, Template, TemplateNotFound
from jinja2.exceptions import (
    SecurityError,
    TemplateError,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape

from .._lazy import LazyModule
from ..errors import RenderError
from .assets import NamedResults, chart_set
from .filters import DOCUMENT_MAX_ROWS, TemplateDataError, make_filters
from .markdown import escape_markdown, html_document, markdown_to_html, tidy_markdown

# pandas loads only when a report renders: `eil-run validate` compiles templates without it.
pd = LazyModule("pandas")

Format = Literal["md", "html"]
FORMATS: tuple[str, ...] = ("md", "html")

#: How errors name the built-in template.
BUILTIN_NAME = "<built-in executive>"

#: What a template may read or call on a pandas or numpy object.
SAFE_DATA_ATTRIBUTES = frozenset(
    {
        # shape and labels
        "columns", "index", "shape", "size", "ndim", "empty", "dtype", "dtypes",
        "name", "names", "values", "array",
        # selecting rows and columns
        "iloc", "loc", "at", "iat", "head", "tail", "get", "nlargest", "nsmallest",
        "sort_values", "sort_index", "drop", "dropna", "drop_duplicates", "fillna",
        "filter", "rename", "reset_index", "set_index", "isin", "between", "isna",
        "notna", "isnull", "notnull", "astype", "round", "abs", "clip",
        # summaries
        "sum", "mean", "median", "min", "max", "count", "nunique", "unique",
        "value_counts", "describe", "std", "var", "quantile", "prod", "mode", "any",
        "all", "cumsum", "pct_change", "diff", "shift", "rank", "idxmax", "idxmin",
        "groupby",
        # iterating and converting
        "items", "keys", "iterrows", "itertuples", "tolist", "to_list", "to_dict", "item",
        # dates (the .dt accessor, Timestamp, Timedelta)
        "dt", "date", "year", "month", "day", "hour", "minute", "second", "quarter",
        "dayofweek", "weekday", "day_name", "month_name", "strftime", "isoformat",
        "normalize", "days", "total_seconds", "to_pydatetime",
        # text (the .str accessor)
        "str", "upper", "lower", "title", "capitalize", "strip", "len", "contains",
        "startswith", "endswith", "replace", "slice", "split",
    }
)  # fmt: skip

_DATA_LIBRARIES = ("pandas", "numpy")

# DataFrame methods that loop over rows in a template: capped at DOCUMENT_MAX_ROWS.
_ROW_LOOPS = frozenset({"iterrows", "itertuples"})

# Characters that would make an escaped value act as Markdown (see the module docstring).
_MARKDOWN_ACTIVE = str.maketrans(
    {"[": "&#91;", "]": "&#93;", "\\": "&#92;", "\n": "&#10;", "\r": ""}
)


#: The most items (characters of a string) a ``*`` repetition may produce in a template.
MAX_REPEAT_LENGTH = 1_000_000

#: The largest exponent of ``**`` in a template (``10 ** 10**8`` would take minutes).
MAX_EXPONENT = 1_000

#: The most characters one rendered report (Markdown, or the HTML before its
#: document wrapper) may hold: 50 million, far above any report people read.
MAX_OUTPUT_CHARS = 50_000_000


class ReportEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox, with pandas and numpy objects held to an allow-list,
    and ``*`` and ``**`` held to a size."""

    intercepted_binops = frozenset({"*", "**"})

    code_key: tuple[Any, ...] | None = None
    """The settings compiled code depends on (format, max_rows, currency), set by
    :func:`create_environment`; ``None`` compiles every time."""

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Refuse a repetition longer than :data:`MAX_REPEAT_LENGTH` or a power
        above :data:`MAX_EXPONENT` before computing it."""
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                if (
                    isinstance(sequence, str | bytes | list | tuple)
                    and isinstance(count, int)
                    and len(sequence) * count > MAX_REPEAT_LENGTH
                ):
                    raise TemplateDataError(
                        f"a repetition with * would make {len(sequence) * count:,} items; "
                        f"the limit is {MAX_REPEAT_LENGTH:,}"
                    )
        elif (
            operator == "**"
            and isinstance(right, int | float)
            and not isinstance(right, bool)
            and abs(right) > MAX_EXPONENT
        ):
            raise TemplateDataError(f"an exponent above {MAX_EXPONENT:,} is not allowed in **")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Call as the sandbox does, but a row loop (``iterrows``, ``itertuples``)
        reads at most :data:`DOCUMENT_MAX_ROWS` rows: a document is not a data
        file, and a loop over 100,000 rows took 22 s and 1 GB."""
        owner = getattr(__obj, "__self__", None)
        if (
            getattr(__obj, "__name__", None) in _ROW_LOOPS
            and isinstance(owner, pd.DataFrame)
            and len(owner) > DOCUMENT_MAX_ROWS
        ):
            __obj = getattr(owner.head(DOCUMENT_MAX_ROWS), __obj.__name__)
        return super().call(__context, __obj, *args, **kwargs)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """Refuse private attributes, mutators, and anything on a DataFrame,
        Series or array that is not in :data:`SAFE_DATA_ATTRIBUTES`."""
        if not super().is_safe_attribute(obj, attr, value):
            return False
        # Rows from itertuples() are namedtuples made inside pandas: their fields are data.
        if isinstance(obj, tuple):
            return True
        if type(obj).__module__.partition(".")[0] not in _DATA_LIBRARIES:
            return True
        if attr in SAFE_DATA_ATTRIBUTES:
            return True
        # df.revenue is a column and row.revenue a cell: data, unless a method hides the label.
        if callable(value):
            return False
        if isinstance(obj, pd.DataFrame):
            return attr in obj.columns
        return isinstance(obj, pd.Series) and attr in obj.index


def _finalize_markdown(value: Any) -> Any:
    if hasattr(value, "__html__"):  # the filters' tables and code blocks, chart embeds
        return value
    return escape_markdown(value)


def _finalize_html(value: Any) -> Any:
    if hasattr(value, "__html__"):
        return value
    return Markup(str(escape(value)).translate(_MARKDOWN_ACTIVE))


def _no_includes(name: str) -> None:
    raise TemplateDataError(
        f"{{% include %}}, {{% import %}} and {{% extends %}} are not supported "
        f"(asked for {name!r}): a report template is one file"
    )


def create_environment(
    fmt: Format, *, max_rows: int = 50, currency: str = "$"
) -> ReportEnvironment:
    """The Jinja environment for one rendering in ``fmt``, with the report filters."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    env = ReportEnvironment(
        undefined=StrictUndefined,
        autoescape=fmt == "html",
        finalize=_finalize_html if fmt == "html" else _finalize_markdown,
        loader=FunctionLoader(_no_includes),
        # Jinja's default whitespace rules (no trim_blocks/lstrip_blocks), the ones
        # its documentation teaches: templates control newlines with "-" markers.
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters.update(make_filters(fmt, max_rows=max_rows, currency=currency))
    # What shapes compiled code: Jinja folds filters over constants at compile time.
    env.code_key = (fmt, max_rows, currency)
    return env


@dataclass(frozen=True)
class TemplateSource:
    """A report template's text and the name errors show for it."""

    name: str
    """``templates/weekly.md.j2`` as the project names it, or ``<built-in executive>``."""

    text: str
    """The template source."""

    path: Path | None = None
    """The file it was read from; ``None`` for the built-in template."""


@cache
def _builtin_report_text() -> str:
    # A package file: it does not change while the process runs.
    return resources.files(__package__).joinpath("builtin/executive.md.j2").read_text("utf-8")


def load_template(path: Path | None = None, display_name: str | None = None) -> TemplateSource:
    """Read a template file, or the built-in executive template when ``path`` is None.

    ``display_name`` is how errors name the file (the path relative to the
    project root); default: ``path`` as given.  Raises :class:`RenderError`
    when the file cannot be read.
    """
    if path is None:
        text = _builtin_report_text()
        return TemplateSource(display_name or BUILTIN_NAME, text, None)
    path = Path(path)
    name = display_name or path.as_posix()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RenderError(name, "template file not found") from None
    except UnicodeDecodeError as exc:
        raise RenderError(
            name, f"template is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except OSError as exc:
        raise RenderError(name, f"cannot read template: {exc.strerror or exc}") from None
    return TemplateSource(name, text, path)


def _compile(env: ReportEnvironment, source: TemplateSource) -> Template:
    try:
        code = _compiled(env, source.text, source.name)
    except TemplateSyntaxError as exc:
        raise RenderError(source.name, f"template syntax error: {exc.message}", exc.lineno) from exc
    return env.template_class.from_code(env, code, env.make_globals(None), None)


# Compiled code by what shapes it: the template's text and name and the settings of
# its environment (format, max_rows and currency: Jinja folds filters over constants
# while compiling).  A scheduler running the same template every few seconds compiles
# it once.
_CODE_CACHE: dict[tuple[Any, ...], Any] = {}
_CODE_CACHE_LIMIT = 256


def _compiled(env: ReportEnvironment, text: str, name: str) -> Any:
    options = getattr(env, "code_key", None)
    if options is None:
        return env.compile(text, name=name, filename=name)
    key = (options, name, text)
    code = _CODE_CACHE.get(key)
    if code is None:
        code = env.compile(text, name=name, filename=name)
        if len(_CODE_CACHE) >= _CODE_CACHE_LIMIT:
            _CODE_CACHE.clear()
        _CODE_CACHE[key] = code
    return code


def compile_template(source: TemplateSource) -> None:
    """Check a template's syntax without rendering it (``eil-run validate``).

    Also catches unknown filter names.  Raises :class:`RenderError` with the
    template name and line.
    """
    _compile(create_environment("md"), source)


def _template_line(exc: BaseException, name: str) -> int | None:
    # Jinja rewrites the traceback so template frames carry the template's
    # file name and line; the innermost such frame is where it failed.
    line = None
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == name:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _render_error(source: TemplateSource, exc: Exception) -> RenderError:
    if isinstance(exc, TemplateSyntaxError):
        return RenderError(source.name, f"template syntax error: {exc.message}", exc.lineno)
    if isinstance(exc, SecurityError):
        message = f"sandbox violation: {exc.message}"
    elif isinstance(exc, UndefinedError):
        message = f"undefined template variable: {exc.message}"
    elif isinstance(exc, TemplateDataError):
        message = str(exc.message)
    elif isinstance(exc, TemplateError):
        message = f"template error: {exc.message}"
    else:
        message = f"error while rendering: {type(exc).__name__}: {exc}"
    return RenderError(source.name, message, _template_line(exc, source.name))


def _title(context: Mapping[str, Any]) -> str:
    pipeline = context.get("pipeline")
    if isinstance(pipeline, Mapping):
        title = pipeline.get("title")
    else:
        title = getattr(pipeline, "title", None)
    return str(title) if title else "Report"


def _template_values(context: Mapping[str, Any], fmt: Format) -> dict[str, Any]:
    values = dict(context)
    for key, empty in (
        ("pipeline", {}),
        ("run", {}),
        ("params", {}),
        ("sql", {}),
        ("metrics", []),
        ("insights", []),
    ):
        if values.get(key) is None:
            values[key] = empty
    values["data"] = NamedResults("query", "queries", dict(context.get("data") or {}))
    if values.get("tables") is None:
        # Without the run's choice (report.data, show = false), every result, as before.
        values["tables"] = [
            {"name": name, "title": name, "frame": frame, "rows": None}
            for name, frame in values["data"].items()
        ]
    values["charts"] = chart_set(context.get("charts"), fmt)
    values["format"] = fmt
    return values


def render_report(
    source: TemplateSource,
    context: Mapping[str, Any],
    fmt: Format,
    *,
    max_rows: int = 50,
    currency: str = "$",
) -> str:
    """Render a report and return the whole file's text.

    ``context`` holds what the template sees: ``pipeline`` (a dict, or an
    object with attributes; its ``title`` is also the HTML ``<title>``),
    ``run``, ``params`` and ``sql`` (dicts), ``data`` (query name →
    DataFrame), ``charts`` (name → :class:`ChartAsset`), ``metrics`` (metric
    objects), ``insights`` (strings) and ``tables`` (the results the data
    section shows: dicts of ``name``, ``title``, ``frame`` and ``rows``; by
    default every result).  Missing ones are empty.  The
    template also gets ``format`` (``"md"`` or ``"html"``).

    For ``md`` the result is the Markdown report, tidied for linting; for
    ``html`` a complete HTML document.  Every template failure is raised as
    :class:`RenderError` naming the template and, when known, the line.
    """
    env = create_environment(fmt, max_rows=max_rows, currency=currency)
    template = _compile(env, source)
    values = _template_values(context, fmt)
    try:
        text = _render_capped(template, values, source)
    except RenderError:
        raise
    except Exception as exc:
        raise _render_error(source, exc) from exc
    if fmt == "md":
        return tidy_markdown(text)
    # Not tidied: collapsing blank lines would change code inside <pre> blocks.
    return html_document(_title(context), markdown_to_html(text))


def _render_capped(template: Template, values: dict[str, Any], source: TemplateSource) -> str:
    """Render piece by piece, stopping as soon as the text passes :data:`MAX_OUTPUT_CHARS`."""
    pieces: list[str] = []
    size = 0
    for piece in template.generate(values):
        size += len(piece)
        if size > MAX_OUTPUT_CHARS:
            raise RenderError(
                source.name,
                f"the report is larger than {MAX_OUTPUT_CHARS:,} characters, the limit: "
                "show fewer rows (the full data belongs in exports)",
            )
        pieces.append(piece)
    return "".join(pieces)


# --- the engine's own pages ---------------------------------------------------------

#: The names of the built-in page templates in ``render/builtin/``.
_PAGE_NAME = re.compile(r"[a-z][a-z0-9_]*\.(?:html|txt)\.j2")


def _builtin_page(name: str) -> tuple[str, str | None, Callable[[], bool]]:
    if not _PAGE_NAME.fullmatch(name):
        raise TemplateNotFound(name)
    path = resources.files(__package__).joinpath("builtin", name)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise TemplateNotFound(name) from None
    # Package files do not change while the process runs: never reload.
    return text, None, lambda: True


def _page_autoescape(name: str | None) -> bool:
    # Escaping is on for everything but the plain-text templates.
    return not (name or "").endswith(".txt.j2")


@cache
def page_environment() -> ReportEnvironment:
    """The environment for the engine's own pages: the report site and the email body.

    The same sandbox as reports (:class:`ReportEnvironment`, ``StrictUndefined``),
    with autoescape on for ``*.html.j2`` (and off for ``*.txt.j2``), and a loader
    that reads only the built-in templates in ``render/builtin/``, so pages may
    ``{% extends %}`` and ``{% import %}`` one another.  No report filters and
    no Markdown escaping: these templates write HTML, not Markdown.  Block tags
    on a line of their own leave nothing behind (``trim_blocks``,
    ``lstrip_blocks``).  Built once per process and shared: its settings never
    change and Jinja's template cache is thread-safe.
    """
    return ReportEnvironment(
        undefined=StrictUndefined,
        autoescape=_page_autoescape,
        loader=FunctionLoader(_builtin_page),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )


def render_page(name: str, values: Mapping[str, Any]) -> str:
    """Render the built-in page template ``name`` (``site_index.html.j2`` …) with ``values``."""
    return page_environment().get_template(name).render(values)
