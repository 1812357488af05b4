"""The sample data generator is deterministic and data/orders.parquet matches its README."""

from __future__ import annotations

import hashlib
import importlib.util
from datetime import date, datetime
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make_sample_data.py"
DATA = ROOT / "data" / "orders.parquet"

#: The documented columns (data/README.md) and their Arrow types as read back.
COLUMNS = {
    "order_id": pa.int64(),
    "order_ts": pa.timestamp("ms"),  # second precision; Parquet stores seconds as milliseconds
    "order_date": pa.date32(),
    "region": pa.string(),
    "country": pa.string(),
    "channel": pa.string(),
    "product": pa.string(),
    "category": pa.string(),
    "quantity": pa.int64(),
    "unit_price": pa.float64(),
    "discount": pa.float64(),
    "revenue": pa.float64(),
    "cost": pa.float64(),
    "status": pa.string(),
    "customer_id": pa.int64(),
    "fulfillment_hours": pa.float64(),
}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sample_data", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def table() -> pa.Table:
    if not DATA.exists():
        pytest.fail("data/orders.parquet is missing: run python scripts/make_sample_data.py")
    return pq.read_table(DATA)


def test_generator_is_byte_identical_across_runs(script: ModuleType, tmp_path: Path) -> None:
    args = ["--start", "2026-11-01", "--end", "2026-11-30", "--seed", "7", "--quiet"]
    first, second = tmp_path / "a" / "orders.parquet", tmp_path / "b" / "orders.parquet"
    assert script.main(["--out", str(first), *args]) == 0
    assert script.main(["--out", str(second), *args]) == 0
    assert sha256(first) == sha256(second)
    month = pq.read_table(first)
    assert 5_000 < month.num_rows < 20_000
    assert pc.min(month["order_date"]).as_py() == date(2026, 11, 1)
    assert pc.max(month["order_date"]).as_py() == date(2026, 11, 30)


def test_seed_changes_the_data(script: ModuleType, tmp_path: Path) -> None:
    args = ["--start", "2026-11-01", "--end", "2026-11-07", "--quiet"]
    script.main(["--out", str(tmp_path / "a.parquet"), "--seed", "7", *args])
    script.main(["--out", str(tmp_path / "b.parquet"), "--seed", "8", *args])
    assert sha256(tmp_path / "a.parquet") != sha256(tmp_path / "b.parquet")


def test_file_has_no_creation_metadata() -> None:
    meta = pq.ParquetFile(DATA).metadata
    assert set(meta.metadata or {}) <= {b"ARROW:schema"}  # no pandas block with versions
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_columns_and_types(table: pa.Table) -> None:
    assert dict(zip(table.schema.names, table.schema.types, strict=True)) == COLUMNS


def test_columns_are_documented() -> None:
    readme = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    for column in COLUMNS:
        assert f"`{column}`" in readme, column


def test_size_and_row_count(table: pa.Table) -> None:
    assert 200_000 <= table.num_rows <= 300_000
    assert DATA.stat().st_size < 6_000_000


def test_date_range(table: pa.Table) -> None:
    assert pc.min(table["order_date"]).as_py() == date(2024, 1, 1)
    assert pc.max(table["order_date"]).as_py() == date(2026, 12, 31)
    assert pc.min(table["order_ts"]).as_py() >= datetime(2024, 1, 1)
    assert pc.max(table["order_ts"]).as_py() < datetime(2027, 1, 1)
    same_day = pc.equal(pc.cast(table["order_ts"], pa.date32()), table["order_date"])
    assert pc.all(same_day).as_py()


def test_values(table: pa.Table) -> None:
    assert set(pc.unique(table["status"]).to_pylist()) == {"completed", "cancelled", "refunded"}
    assert set(pc.unique(table["region"]).to_pylist()) == {"EMEA", "AMER", "APAC", "LATAM"}
    assert set(pc.unique(table["channel"]).to_pylist()) == {"Web", "Mobile", "Retail", "Partner"}
    assert 4 <= len(pc.unique(table["category"])) <= 5
    completed = pc.mean(pc.cast(pc.equal(table["status"], "completed"), pa.float64())).as_py()
    assert 0.9 < completed < 0.96
    assert pc.min(table["revenue"]).as_py() >= 0
    assert pc.min(table["quantity"]).as_py() >= 1
    assert 0 <= pc.min(table["discount"]).as_py() <= pc.max(table["discount"]).as_py() <= 0.3
    assert pc.all(pc.is_valid(table["order_id"])).as_py()
    assert len(pc.unique(table["order_id"])) == table.num_rows
    # Fulfilment hours are missing exactly for cancelled orders.
    cancelled = pc.equal(table["status"], "cancelled")
    assert pc.all(pc.equal(cancelled, pc.is_null(table["fulfillment_hours"]))).as_py()


def test_revenue_is_quantity_times_price_less_discount(table: pa.Table) -> None:
    expected = pc.multiply(
        pc.multiply(pc.cast(table["quantity"], pa.float64()), table["unit_price"]),
        pc.subtract(1.0, table["discount"]),
    )
    error = pc.max(pc.abs(pc.subtract(expected, table["revenue"]))).as_py()
    assert error <= 0.005 + 1e-9
