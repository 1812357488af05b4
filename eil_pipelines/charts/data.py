"""From a query's DataFrame to the few arrays a chart draws.

Validation lives here too, so ``draw_chart`` and ``chart_summary`` give the
same errors for the same spec and data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from numbers import Number
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import ChartError
from ..spec.models import ChartSpec
from .style import (
    COMPACT_FROM,
    MAX_SERIES,
    PALETTE,
    TOP_CATEGORIES,
    date_labels,
    lower_words,
    point_label,
    words,
)

XKind = Literal["time", "number", "category", "none"]

_ISO_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?)?$")


@dataclass
class Series:
    """One drawn series: its label, its points and whether it is the "Other" bucket."""

    label: str
    y: np.ndarray
    x: np.ndarray | None = None  # own x positions (scatter); None: the shared ``ChartData.x``
    other: bool = False


@dataclass
class ChartData:
    """What a chart draws, already cleaned, sorted, pivoted and trimmed."""

    kind: XKind
    x: np.ndarray
    """Positions: numbers; for ``time`` numpy datetime64; for ``category`` the labels."""
    series: list[Series]
    value_name: str
    """The value column(s) in words, for summaries and axis labels."""
    x_name: str
    from_series_column: bool = False
    folded_categories: int = 0
    """How many categories went into "Other"."""
    notes: list[str] = field(default_factory=list)
    """Short remarks printed under the chart (such as values left out of a pie)."""

    def finite_values(self) -> np.ndarray:
        """Every finite value of every series, flattened."""
        parts = [s.y[np.isfinite(s.y)] for s in self.series]
        return np.concatenate(parts) if parts else np.array([], dtype=float)

    @property
    def empty(self) -> bool:
        """True when nothing would be drawn."""
        return self.finite_values().size == 0

    def category_labels(self) -> list[str]:
        """x as text: dates labelled by their spacing, numbers without separators."""
        if self.kind == "time":
            return date_labels(self.x)
        if self.kind == "number":
            return [_number_label(v) for v in self.x]
        return [str(v) for v in self.x]


def _number_label(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def describe_dtype(column: pd.Series) -> str:
    """A column's type in words a report author understands."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "true/false values"
    if isinstance(dtype, pd.CategoricalDtype):
        return "categories"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "dates"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "durations"
    values = column.dropna()
    if values.empty:
        return "no values"
    kinds = {_value_kind(v) for v in values.head(1000)}
    if len(kinds) == 1:
        return kinds.pop()
    return "mixed values: " + ", ".join(sorted(kinds))


def _value_kind(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "true/false values"
    if isinstance(value, str):
        return "text"
    if isinstance(value, pd.Timestamp | np.datetime64) or hasattr(value, "isoformat"):
        return "dates"
    if isinstance(value, Number | Decimal):
        return "numbers"
    if isinstance(value, bytes):
        return "binary data"
    return "other values"


def _as_numbers(column: pd.Series) -> pd.Series | None:
    """The column as float64 with NaN for missing, or None if it is not numeric.

    Object columns of Python numbers (SQLite, DECIMAL) count as numeric;
    true/false and text do not.
    """
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return None
    if pd.api.types.is_numeric_dtype(dtype):
        out = column.astype("float64")
    elif pd.api.types.is_object_dtype(dtype):
        values = column.dropna()
        if not all(
            isinstance(v, Number | Decimal) and not isinstance(v, bool | np.bool_) for v in values
        ):
            return None
        out = pd.to_numeric(column, errors="coerce").astype("float64")
    else:
        return None
    return out.replace([np.inf, -np.inf], np.nan)


def _as_times(column: pd.Series) -> pd.Series | None:
    """The column as naive datetime64, or None if it does not hold dates.

    Text in ISO form counts (SQLite has no date type), as do ``date`` objects.
    """
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        out = column
    elif column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
        values = column.dropna()
        if values.empty:
            return None
        if all(isinstance(v, str) for v in values):
            if not all(_ISO_DATE.match(v.strip()) for v in values):
                return None
        elif not all(hasattr(v, "isoformat") and not isinstance(v, str) for v in values):
            return None
        try:
            out = pd.to_datetime(column, errors="raise", format="mixed")
        except (ValueError, TypeError, OverflowError):
            return None
    else:
        return None
    if getattr(out.dt, "tz", None) is not None:
        # Wall-clock time where the data was recorded is what readers expect.
        out = out.dt.tz_localize(None)
    return out.astype("datetime64[ns]")


def check_columns(spec: ChartSpec, df: pd.DataFrame, where: str) -> None:
    """Raise :class:`ChartError` naming every column the spec uses that ``df`` lacks."""
    roles: list[tuple[str, str]] = []
    if spec.type != "hist" and spec.x is not None:
        roles.append((spec.x, "x"))
    roles += [(c, "y") for c in spec.y_columns]
    if spec.series is not None:
        roles.append((spec.series, "series"))
    missing = [(c, r) for c, r in roles if c not in df.columns]
    if not missing:
        for c, r in roles:
            if int((df.columns == c).sum()) > 1:
                raise ChartError(
                    spec.name,
                    f'column "{c}" ({r}) appears more than once in {where}; '
                    "give each column its own name (SELECT … AS other_name)",
                )
        return
    available = ", ".join(str(c) for c in df.columns) or "none"
    named = " and ".join(f'"{c}" ({r})' for c, r in missing)
    verb = "is" if len(missing) == 1 else "are"
    noun = "column" if len(missing) == 1 else "columns"
    raise ChartError(
        spec.name, f"{noun} {named} {verb} not in {where}; available columns: {available}"
    )


def prepare(
    spec: ChartSpec, df: pd.DataFrame, where: str, *, currency: str = "$"
) -> ChartData | None:
    """Validate ``df`` against ``spec`` and shape it for drawing.

    Returns ``None`` when there is nothing to draw (no rows, no columns, or no
    finite values), so the caller shows "No data" instead of failing a report.
    """
    if len(df.columns) == 0:
        return None
    check_columns(spec, df, where)
    # Rows are matched by position below; an index with repeats would multiply them.
    df = df.reset_index(drop=True)

    values: dict[str, pd.Series] = {}
    for col in spec.y_columns:
        numbers = _as_numbers(df[col])
        if numbers is None:
            raise ChartError(
                spec.name,
                f'column "{col}" (y) is not numeric (it holds {describe_dtype(df[col])}); '
                "choose a numeric column for y",
            )
        values[col] = numbers
    if df.empty:
        return None

    value_name = " and ".join(lower_words(c) for c in spec.y_columns)
    if spec.type == "hist":
        data = _hist_data(spec, df, values, value_name)
    else:
        data = _xy_data(spec, df, values, value_name)
    if data.empty:
        return None
    if spec.type == "pie":
        _note_negative_slices(data, spec.format, currency)
    return data


def _series_keys(column: pd.Series) -> pd.Series:
    """Series names as text; missing ones read "(blank)" rather than vanish."""
    return column.map(_key_text).astype(object)


def _key_text(value: object) -> str:
    if _missing(value):
        return "(blank)"
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))  # a year stored as 2025.0 reads "2025"
    return str(value)


def _missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _hist_data(
    spec: ChartSpec, df: pd.DataFrame, values: dict[str, pd.Series], value_name: str
) -> ChartData:
    groups: list[tuple[str, np.ndarray]] = []
    if spec.series is not None:
        col = spec.y_columns[0]
        keys = _series_keys(df[spec.series])
        for key, part in values[col].groupby(keys, sort=False):
            groups.append((str(key), part.to_numpy(dtype=float)))
    else:
        groups = [(words(c), v.to_numpy(dtype=float)) for c, v in values.items()]
    series = [Series(label, y[np.isfinite(y)]) for label, y in groups]
    series = _fold_series(series, pool=True)
    return ChartData(
        kind="none",
        x=np.array([]),
        series=series,
        value_name=value_name,
        x_name="",
        from_series_column=spec.series is not None,
    )


def _xy_data(
    spec: ChartSpec, df: pd.DataFrame, values: dict[str, pd.Series], value_name: str
) -> ChartData:
    assert spec.x is not None  # the spec validator guarantees it for every type but hist
    raw_x = df[spec.x]
    times = _as_times(raw_x)
    numbers = None if times is not None else _as_numbers(raw_x)
    kind: XKind
    if times is not None:
        kind, x = "time", times
    elif numbers is not None and spec.type not in ("bar", "barh", "pie"):
        kind, x = "number", numbers
    elif numbers is not None:
        # Numeric labels on a bar chart (years, store numbers) are categories
        # in query order, not a scale.
        kind, x = "category", raw_x.map(lambda v: "(blank)" if _missing(v) else _number_label(v))
    else:
        if spec.type == "scatter":
            raise ChartError(
                spec.name,
                f'column "{spec.x}" (x) is not numeric (it holds {describe_dtype(raw_x)}); '
                "a scatter plot needs numbers or dates on x",
            )
        kind, x = "category", _series_keys(raw_x)

    frame = pd.DataFrame({"__x": x.to_numpy()}, index=df.index)
    for col, v in values.items():
        frame[col] = v
    if kind != "category":
        frame = frame[frame["__x"].notna()]

    if spec.type == "scatter":
        return _scatter_data(spec, df, frame, kind, value_name)

    if spec.series is not None:
        col = spec.y_columns[0]
        frame["__s"] = _series_keys(df[spec.series]).loc[frame.index]
        wide = (
            frame.groupby(["__x", "__s"], sort=False)[col]
            .sum(min_count=1)
            .unstack("__s")
            .reindex(columns=pd.unique(frame["__s"]))
        )
        labels = [str(c) for c in wide.columns]
    else:
        # Several rows for one x (no series column) are added up: a daily
        # chart of per-region rows shows the daily total.
        wide = frame.groupby("__x", sort=False)[spec.y_columns].sum(min_count=1)
        labels = [words(c) for c in spec.y_columns]

    if kind != "category":
        wide = wide.sort_index()
    positions = wide.index.to_numpy()
    series = [
        Series(label, wide[c].to_numpy(dtype=float))
        for label, c in zip(labels, wide.columns, strict=True)
    ]
    series = _fold_series(series, pool=False)

    data = ChartData(
        kind=kind,
        x=positions if kind != "time" else positions.astype("datetime64[ns]"),
        series=series,
        value_name=value_name,
        x_name=lower_words(spec.x),
        from_series_column=spec.series is not None,
    )
    reordered = spec.sort is not None or spec.limit is not None
    if kind != "category" and (spec.type == "pie" or (spec.type in ("bar", "barh") and reordered)):
        # Slices, and bars put in another order than time's, have no scale:
        # dates are just their names here (labelled in time order first).
        data.x = np.array(data.category_labels(), dtype=object)
        data.kind = kind = "category"
    if kind == "category" and spec.type in TOP_CATEGORIES:
        _fold_categories(data, _kept_categories(spec), always_sort=spec.type == "pie")
        if spec.sort is not None:
            _sort_categories(data, descending=spec.sort == "desc")
    return data


def _kept_categories(spec: ChartSpec) -> int:
    """How many named categories a bar or pie chart keeps before "Other".

    ``limit`` overrides the default (the top N, then "Other"), except that a
    pie never shows more slices than the palette has distinct colours.
    """
    default = TOP_CATEGORIES[spec.type] - 1
    if spec.limit is None:
        return default
    if spec.type == "pie":
        return min(spec.limit, len(PALETTE) - 1)
    return spec.limit


def _scatter_data(
    spec: ChartSpec, df: pd.DataFrame, frame: pd.DataFrame, kind: XKind, value_name: str
) -> ChartData:
    series: list[Series] = []
    col_x = frame["__x"]
    if spec.series is not None:
        col = spec.y_columns[0]
        keys = _series_keys(df[spec.series]).loc[frame.index]
        for key, part in frame.groupby(keys, sort=False):
            series.append(Series(str(key), part[col].to_numpy(float), part["__x"].to_numpy()))
    else:
        for col in spec.y_columns:
            series.append(Series(words(col), frame[col].to_numpy(float), col_x.to_numpy()))
    series = _fold_series(series, pool=True)
    if kind == "time":
        for s in series:
            s.x = np.asarray(s.x).astype("datetime64[ns]")
    else:
        for s in series:
            s.x = np.asarray(s.x, dtype=float)
    return ChartData(
        kind=kind,
        x=col_x.to_numpy(),
        series=series,
        value_name=value_name,
        x_name=lower_words(spec.x or ""),
        from_series_column=spec.series is not None,
    )


def _size(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.abs(finite).sum()) if finite.size else 0.0


def _fold_series(series: list[Series], *, pool: bool) -> list[Series]:
    """Order series largest first and fold those beyond the palette into "Other".

    ``pool`` joins the folded points (scatter, histogram) instead of adding
    them up per x (line, bar, area).
    """
    ranked = sorted(series, key=lambda s: -_size(s.y))  # stable: ties keep query order
    if len(ranked) <= MAX_SERIES:
        return ranked
    keep, rest = ranked[: MAX_SERIES - 1], ranked[MAX_SERIES - 1 :]
    label = f"Other ({len(rest)})"
    if pool:
        ys = np.concatenate([s.y for s in rest])
        xs = None
        if all(s.x is not None for s in rest):
            xs = np.concatenate([np.asarray(s.x) for s in rest])
        keep.append(Series(label, ys, xs, other=True))
    else:
        stacked = np.vstack([s.y for s in rest])
        total = np.where(np.isfinite(stacked).any(axis=0), np.nansum(stacked, axis=0), np.nan)
        keep.append(Series(label, total, other=True))
    return keep


def _fold_categories(data: ChartData, keep: int, *, always_sort: bool) -> None:
    """Keep the ``keep`` largest categories and add the rest up as "Other (n)".

    A lone category past ``keep`` is shown under its own name: "Other (1)"
    would take the same room and hide the name.  Without folding the query's
    order is kept (it may be meaningful, such as months or a ranking), except
    for pies, which read best largest first.  Size is the absolute value,
    added up over the series.
    """
    n = len(data.x)
    stacked = np.vstack([s.y for s in data.series])
    size = np.nansum(np.abs(stacked), axis=0)
    if n <= keep + 1:
        if always_sort:
            order = np.argsort(-size, kind="stable")
            data.x = data.x[order]
            for s in data.series:
                s.y = s.y[order]
        return
    order = np.argsort(-size, kind="stable")
    top, rest = order[:keep], order[keep:]
    data.folded_categories = len(rest)
    data.x = np.append(data.x[top], f"Other ({len(rest)})").astype(object)
    for s in data.series:
        folded = s.y[rest]
        other = np.nansum(folded) if np.isfinite(folded).any() else np.nan
        s.y = np.append(s.y[top], other)


def _sort_categories(data: ChartData, *, descending: bool) -> None:
    """Order the bars by value (the total over the series); "Other" stays last.

    Categories without any value go last in either order; ties keep their
    current order.
    """
    real = len(data.x) - (1 if data.folded_categories else 0)
    stacked = np.vstack([s.y[:real] for s in data.series])
    has_value = np.isfinite(stacked).any(axis=0)
    total = np.where(has_value, np.nansum(stacked, axis=0), 0.0)
    key = -total if descending else total
    # lexsort's last key is the primary one: valued categories first, then by value.
    order = np.lexsort((np.arange(real), key, ~has_value))
    order = np.concatenate([order, np.arange(real, len(data.x))])
    data.x = data.x[order]
    for s in data.series:
        s.y = s.y[order]


def _note_negative_slices(data: ChartData, fmt: str | None, currency: str) -> None:
    """A pie cannot show negative values; say which were left out."""
    s = data.series[0]
    labels = data.category_labels()
    negatives = [j for j, v in enumerate(s.y) if np.isfinite(v) and v < 0]
    if not negatives:
        return
    values = data.finite_values()
    large = float(np.max(np.abs(values))) >= COMPACT_FROM
    shown = ", ".join(
        f"{labels[j]} {point_label(s.y[j], fmt, currency, large=large)}" for j in negatives[:3]
    )
    more = f" and {len(negatives) - 3} more" if len(negatives) > 3 else ""
    noun = "value" if len(negatives) == 1 else "values"
    data.notes.append(f"Not shown: {len(negatives)} negative {noun} ({shown}{more})")
