"""Data exports: each query's full result as CSV, Excel or Parquet, and its hash.

Exports always hold every row (tables in the report stop at ``max_rows``).
Bytes are deterministic for the same data and scheduled time, so exported
files can live in git beside the reports:

* CSV: UTF-8 without BOM, a header row, ``,`` and ``\\n``, no index column;
  floats printed exactly (round-trip), missing values empty.
* Parquet: written by pyarrow (no timestamps in the file), no index; needs the
  ``parquet`` extra.
* Excel: one sheet named after the query with a bold, frozen header row; the
  workbook's creation date is the scheduled time and the zip entries carry
  it too, where openpyxl would stamp the wall clock.  Needs the ``xlsx`` extra.

pyarrow and openpyxl are optional extras (``[parquet]``, ``[xlsx]``, or
``[exports]`` for both): without them the reports are the same and the install
is about 170 MB smaller.  :func:`export_problems` names the missing extra when
``eil-run validate`` sees a pipeline asking for such an export.

The result hash in the manifest is the SHA-256 of the CSV bytes, so anyone
can check an exported CSV against the manifest with ``sha256sum``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import re
import zipfile
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from ..errors import OutputError

if TYPE_CHECKING:
    import pandas as pd

#: The export formats, in the order files are written.
EXPORT_FORMATS = ("csv", "xlsx", "parquet")

#: The export formats that need an optional extra: format -> (module, extra).
EXPORT_EXTRAS = {"parquet": ("pyarrow", "parquet"), "xlsx": ("openpyxl", "xlsx")}

#: Rows an Excel sheet holds (the header takes one of them).
XLSX_MAX_ROWS = 1_048_576


@cache
def _installed(module: str) -> bool:
    # find_spec does not import the module: validate stays fast and pyarrow-free.
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def export_unavailable_reason(fmt: str) -> str | None:
    """Why the ``fmt`` export cannot be written here, or ``None`` when it can.

    Such as ``the "parquet" export needs pyarrow: pip install
    'eil-pipelines[parquet]' (or [exports] for every export format)``.
    """
    needed = EXPORT_EXTRAS.get(fmt)
    if needed is None or _installed(needed[0]):
        return None
    module, extra = needed
    return (
        f"the \"{fmt}\" export needs {module}: pip install 'eil-pipelines[{extra}]' "
        "(or [exports] for every export format)"
    )


def export_problems(pipeline: Any) -> list[tuple[str, str]]:
    """``eil-run validate``'s check of a pipeline's exports, as ``(key path, message)``
    pairs: a ``parquet`` or ``xlsx`` export without its extra is a problem at
    ``report.exports``.  Imports neither library."""
    problems = []
    for fmt in pipeline.spec.report.exports:
        reason = export_unavailable_reason(fmt)
        if reason is not None:
            problems.append(("report.exports", reason))
    return problems


def data_dir_name(stamp: str) -> str:
    """``2026-11-27`` → ``2026-11-27_data``: the folder beside the report holding its exports."""
    return f"{stamp}_data"


def csv_bytes(df: pd.DataFrame) -> bytes:
    """A result as CSV bytes (the ``csv`` export and the input of :func:`result_sha256`)."""
    # pandas writes floats with repr(), which round-trips exactly.
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8")


def result_sha256(df: pd.DataFrame, csv: bytes | None = None) -> str:
    """SHA-256 of a result's CSV bytes: the same rows in the same order give the same hash."""
    return hashlib.sha256(csv if csv is not None else csv_bytes(df)).hexdigest()


def column_types(df: pd.DataFrame) -> dict[str, str]:
    """Each column's pandas dtype by name, in result order, for the manifest."""
    return {str(name): str(dtype) for name, dtype in df.dtypes.items()}


def export_results(
    pipeline: str,
    data: Mapping[str, pd.DataFrame],
    formats: Iterable[str],
    *,
    scheduled_at: datetime,
    zone: ZoneInfo,
    csv_cache: Mapping[str, bytes] | None = None,
) -> dict[str, bytes]:
    """Serialise every query's result in every format: ``{"orders.csv": b"..."}``.

    ``csv_cache`` holds CSV bytes already made for the result hashes, so a
    result is turned into CSV once.  Raises :class:`OutputError` naming the
    pipeline, query and format when a result cannot be written.
    """
    files: dict[str, bytes] = {}
    formats = list(formats)
    for fmt in formats:
        # Before any file is made: a missing extra is a clear error, not an ImportError.
        reason = export_unavailable_reason(fmt)
        if reason is not None:
            raise OutputError(f'pipeline "{pipeline}": {reason}')
    for fmt in formats:
        for query, df in data.items():
            try:
                if fmt == "csv":
                    cached = csv_cache.get(query) if csv_cache else None
                    content = cached if cached is not None else csv_bytes(df)
                elif fmt == "parquet":
                    content = parquet_bytes(df)
                elif fmt == "xlsx":
                    content = xlsx_bytes(df, query, scheduled_at=scheduled_at, zone=zone)
                else:
                    raise ValueError(f"unknown export format {fmt!r}")
            except OutputError as exc:
                raise OutputError(f'pipeline "{pipeline}", query "{query}": {exc}') from None
            except (ValueError, TypeError, OverflowError, ImportError) as exc:
                raise OutputError(
                    f'pipeline "{pipeline}", query "{query}": cannot export as {fmt}: {exc}'
                ) from None
            files[f"{query}.{fmt}"] = content
    return files


def parquet_bytes(df: pd.DataFrame) -> bytes:
    """A result as Parquet bytes (pyarrow; no index column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise ValueError(str(exc)) from None
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def xlsx_bytes(df: pd.DataFrame, sheet: str, *, scheduled_at: datetime, zone: ZoneInfo) -> bytes:
    """A result as an Excel workbook of one sheet, deterministic for a scheduled time.

    Excel has no time zones: aware timestamps are written as local times in
    ``zone`` (the pipeline's), the way the SQL boundary shows them.
    """
    if len(df) + 1 > XLSX_MAX_ROWS:
        raise OutputError(
            f"{len(df):,} rows do not fit an xlsx sheet (at most {XLSX_MAX_ROWS - 1:,}): "
            "export this result as csv or parquet"
        )
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(title=_sheet_title(sheet))
    worksheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for name in df.columns:
        cell = WriteOnlyCell(worksheet, value=_clean_text(str(name)))
        cell.font = bold
        header.append(cell)
    worksheet.append(header)
    try:
        for row in df.itertuples(index=False, name=None):
            worksheet.append([_excel_value(value, zone) for value in row])
    except BaseException:
        # Close the sheet's streaming writer, or it complains when garbage-collected.
        with contextlib.suppress(Exception):
            worksheet.close()
        raise

    # openpyxl writes these as UTC ("Z"); the zip entries take local time, as zip tools show it.
    utc = scheduled_at.astimezone(UTC).replace(tzinfo=None, microsecond=0)
    workbook.properties.creator = "eil-pipelines"
    workbook.properties.created = utc
    buffer = io.BytesIO()
    workbook.save(buffer)
    local = scheduled_at.astimezone(zone).replace(tzinfo=None)
    return _fix_zip_times(buffer.getvalue(), local, utc)


def _sheet_title(name: str) -> str:
    # Excel sheet names: at most 31 characters, none of []:*?/\ .
    return re.sub(r"[\[\]:*?/\\]", "_", name)[:31] or "data"


# Characters XML 1.0 cannot hold; openpyxl refuses them rather than dropping them.
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _clean_text(text: str) -> str:
    return _ILLEGAL_XML.sub("", text)


def _excel_value(value: Any, zone: ZoneInfo) -> Any:
    """A pandas/numpy cell as a value openpyxl writes (missing values become empty cells)."""
    import pandas as pd

    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        if value is pd.NaT:
            return None
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(zone).replace(tzinfo=None)
        return value
    if isinstance(value, pd.Timedelta):
        return None if value is pd.NaT else value.to_pytimedelta()
    if isinstance(value, (str, bool, int, float, Decimal, date, time, timedelta)):
        if isinstance(value, float) and value != value:  # NaN
            return None
        return _clean_text(value) if isinstance(value, str) else value
    if hasattr(value, "tolist"):  # numpy scalars and arrays (DuckDB lists arrive as arrays)
        value = value.tolist()
        if not isinstance(value, (list, tuple, dict)):
            return _excel_value(value, zone)
    if isinstance(value, (list, tuple, dict)):
        # Lists, structs and maps (DuckDB's nested types): their JSON text.
        return _clean_text(json.dumps(value, default=str, ensure_ascii=False))
    try:
        if pd.isna(value):  # pd.NA and friends
            return None
    except (TypeError, ValueError):
        pass
    return _clean_text(str(value))


_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")


def _fix_zip_times(data: bytes, moment: datetime, utc: datetime) -> bytes:
    """Rewrite an xlsx (a zip) so no wall-clock reading is left in it.

    openpyxl sets the workbook's "modified" property to now on save, and
    zipfile dates each entry now: both become the scheduled time.
    """
    stamp = (max(moment.year, 1980), moment.month, moment.day, moment.hour, moment.minute, 0)
    modified = utc.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=stamp)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = _MODIFIED.sub(rb"\g<1>" + modified + rb"\g<2>", content)
            target.writestr(fixed, content)
    return out.getvalue()
