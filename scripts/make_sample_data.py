"""Generate the sample orders data set used by the example pipelines.

    python scripts/make_sample_data.py
    python scripts/make_sample_data.py --out data/orders.parquet \\
        --start 2024-01-01 --end 2026-12-31 --seed 7

The output is byte-identical on every run for the same arguments (and the same
numpy / pyarrow versions): one seeded generator drawn in a fixed order, rows
sorted by a stable key, zstd compression, and no creation time or pandas
metadata in the file.  Columns are documented in ``data/README.md``.

What the data is meant to look like: an online-and-retail business selling a
dozen products in five categories in four regions, growing about 20% a year,
with weekly patterns that differ by channel, a Q4 peak with a Black Friday /
Cyber Monday spike, a quieter January and August, and a handful of incidents
(listed in ``INCIDENTS``) so the reports have something to say.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

#: Day 0 of the growth curve: rates do not depend on the chosen --start.
EPOCH = date(2024, 1, 1)
#: Expected orders per day at EPOCH, before seasonality (calibrated to ~250k rows
#: over 2024-2026).
BASE_ORDERS_PER_DAY = 171.0

REGIONS = ("EMEA", "AMER", "APAC", "LATAM")
REGION_SHARE = np.array([0.31, 0.41, 0.18, 0.10])
#: Yearly growth rate per region (overall ~20%).
REGION_GROWTH = np.array([0.12, 0.16, 0.29, 0.24])
COUNTRIES = {
    "EMEA": (("Germany", "United Kingdom", "France", "Netherlands", "Spain", "Sweden"),
             (0.28, 0.26, 0.18, 0.11, 0.10, 0.07)),
    "AMER": (("United States", "Canada"), (0.86, 0.14)),
    "APAC": (("Japan", "Australia", "Singapore", "India", "South Korea"),
             (0.30, 0.25, 0.12, 0.20, 0.13)),
    "LATAM": (("Brazil", "Mexico", "Chile", "Colombia"), (0.45, 0.30, 0.13, 0.12)),
}  # fmt: skip

CHANNELS = ("Web", "Mobile", "Retail", "Partner")
#: Channel share at the start and at the end of three years: mobile grows.
CHANNEL_SHARE_START = np.array([0.47, 0.24, 0.18, 0.11])
CHANNEL_SHARE_END = np.array([0.39, 0.35, 0.15, 0.11])
#: Region x channel tweak (APAC is mobile-first, LATAM has little partner business).
REGION_CHANNEL = np.array(
    [
        [1.00, 0.95, 1.05, 1.10],  # EMEA
        [1.00, 1.00, 1.00, 1.05],  # AMER
        [0.85, 1.35, 0.80, 0.90],  # APAC
        [1.05, 1.15, 1.00, 0.50],  # LATAM
    ]
)
#: Mon..Sun multipliers per channel (normalised to mean 1 below).
WEEKLY = np.array(
    [
        [1.06, 1.05, 1.03, 1.02, 0.97, 0.86, 0.92],  # Web: weekday shopping from the desk
        [0.90, 0.90, 0.93, 0.96, 1.06, 1.23, 1.25],  # Mobile: evenings and weekends
        [0.82, 0.88, 0.90, 0.95, 1.12, 1.50, 0.55],  # Retail: Saturday peak, Sunday closures
        [1.22, 1.26, 1.22, 1.20, 1.05, 0.18, 0.08],  # Partner: business days only
    ]
)
WEEKLY = WEEKLY / WEEKLY.mean(axis=1, keepdims=True)

#: Share of orders per hour of the day (naive local time), per channel.
_CONSUMER = np.array(
    [0.6, 0.35, 0.2, 0.15, 0.15, 0.25, 0.6, 1.6, 3.2, 4.8, 6.0, 6.6,
     6.2, 5.4, 4.6, 4.3, 4.5, 5.0, 5.9, 6.8, 7.2, 6.4, 4.4, 2.1]
)  # fmt: skip
_MOBILE = np.array(
    [1.2, 0.7, 0.35, 0.25, 0.2, 0.3, 0.8, 1.9, 2.8, 3.4, 4.2, 5.0,
     5.4, 4.8, 4.0, 3.9, 4.3, 5.2, 6.4, 7.6, 8.4, 8.1, 6.5, 3.6]
)  # fmt: skip
_RETAIL = np.array(
    [0, 0, 0, 0, 0, 0, 0, 0, 0.2, 2.5, 6.0, 8.2,
     9.0, 8.3, 7.4, 7.0, 7.6, 8.5, 8.8, 7.2, 4.5, 1.2, 0, 0]
)  # fmt: skip
_PARTNER = np.array(
    [0, 0, 0, 0, 0, 0, 0.2, 1.5, 6.0, 10.5, 12.0, 11.5,
     7.5, 9.5, 11.0, 10.0, 8.5, 4.5, 1.2, 0.4, 0.2, 0, 0, 0]
)  # fmt: skip
HOURLY = np.vstack([_CONSUMER, _MOBILE, _RETAIL, _PARTNER])
HOURLY = HOURLY / HOURLY.sum(axis=1, keepdims=True)

# name, category, list price 2024, unit cost as a share of list price
PRODUCTS = (
    ("Aurora Laptop", "Electronics", 1299.0, 0.80),
    ("Nimbus Tablet", "Electronics", 549.0, 0.72),
    ("Pulse Headphones", "Electronics", 199.0, 0.55),
    ("Atlas Office Chair", "Home & Office", 349.0, 0.52),
    ("Harbor Coffee Maker", "Home & Office", 129.0, 0.58),
    ("Cedar Desk Lamp", "Home & Office", 59.0, 0.45),
    ("Trail Jacket", "Apparel", 179.0, 0.42),
    ("Summit Sneakers", "Apparel", 119.0, 0.47),
    ("Everyday Tee", "Apparel", 25.0, 0.35),
    ("Glow Serum", "Beauty", 39.0, 0.28),
    ("Daily SPF Cream", "Beauty", 22.0, 0.30),
    ("Care Plan (1 year)", "Services", 89.0, 0.15),
    ("Setup Service", "Services", 49.0, 0.35),
)
PRODUCT_NAMES = tuple(p[0] for p in PRODUCTS)
PRODUCT_CATEGORY = tuple(p[1] for p in PRODUCTS)
LIST_PRICE = np.array([p[2] for p in PRODUCTS])
COST_SHARE = np.array([p[3] for p in PRODUCTS])
#: Base popularity, then multipliers per channel and per month.
PRODUCT_WEIGHT = np.array([2.2, 3.6, 9.0, 2.5, 6.0, 8.0, 5.0, 7.0, 14.0, 11.0, 10.0, 5.0, 3.0])
PRODUCT_BY_CHANNEL = np.array(
    [
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],  # Web
        [0.6, 0.9, 1.2, 0.5, 0.8, 0.9, 1.1, 1.3, 1.3, 1.4, 1.4, 0.8, 0.6],  # Mobile
        [0.8, 0.9, 1.1, 0.7, 1.2, 1.1, 1.5, 1.6, 1.5, 1.2, 1.2, 0.6, 0.4],  # Retail
        [4.0, 2.5, 1.0, 4.5, 1.0, 0.8, 0.1, 0.1, 0.2, 0.1, 0.1, 3.0, 5.0],  # Partner (B2B)
    ]
)
_ELEC_Q4 = np.array([1.0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1.35, 1.6])
_JACKET = np.array([1.6, 1.3, 1.0, 0.7, 0.4, 0.25, 0.2, 0.3, 0.8, 1.4, 1.8, 1.9])
_SPF = np.array([0.5, 0.6, 0.9, 1.2, 1.6, 1.9, 2.0, 1.7, 1.1, 0.7, 0.5, 0.5])
PRODUCT_BY_MONTH = np.ones((12, len(PRODUCTS)))
PRODUCT_BY_MONTH[:, 0:3] = _ELEC_Q4[:, None]
PRODUCT_BY_MONTH[:, 6] = _JACKET
PRODUCT_BY_MONTH[:, 10] = _SPF
#: Mean extra units beyond the first, per product (Partner orders buy more).
EXTRA_UNITS = np.array([0.05, 0.1, 0.25, 0.1, 0.2, 0.4, 0.2, 0.25, 1.2, 0.8, 0.9, 0.0, 0.0])

STATUSES = ("completed", "cancelled", "refunded")
CANCEL_RATE = 0.045
REFUND_RATE = 0.02

#: Incidents: (first day, last day, regions or None, channels or None, demand multiplier).
DEMAND_INCIDENTS = (
    (date(2024, 7, 19), date(2024, 7, 19), None, ("Retail", "Partner"), 0.35),  # POS/IT outage
    (date(2025, 3, 11), date(2025, 3, 11), None, ("Web",), 0.40),  # website down most of the day
    (date(2025, 9, 2), date(2025, 9, 3), ("LATAM",), None, 0.45),  # carrier strike in Brazil
    (date(2026, 2, 9), date(2026, 2, 9), ("EMEA",), ("Mobile",), 0.50),  # app release bug
    (date(2026, 8, 5), date(2026, 8, 6), ("APAC",), None, 0.40),  # typhoon closes stores and DC
)
#: Payment outages: (day, from hour, to hour exclusive, cancellation probability on Web/Mobile).
PAYMENT_OUTAGES = (
    (date(2025, 6, 17), 14, 17, 0.55),
    (date(2026, 11, 18), 13, 16, 0.60),
)
#: Fulfilment backlogs: (first day, last day, regions or None, multiplier on hours).
FULFILMENT_BACKLOGS = (
    (date(2025, 12, 8), date(2025, 12, 19), None, 1.5),  # peak season carrier delays
    (date(2026, 2, 10), date(2026, 2, 13), ("EMEA",), 3.0),  # warehouse system migration
    (date(2026, 12, 7), date(2026, 12, 18), None, 1.5),
)

SCHEMA = pa.schema(
    [
        ("order_id", pa.int64()),
        ("order_ts", pa.timestamp("s")),
        ("order_date", pa.date32()),
        ("region", pa.string()),
        ("country", pa.string()),
        ("channel", pa.string()),
        ("product", pa.string()),
        ("category", pa.string()),
        ("quantity", pa.int64()),
        ("unit_price", pa.float64()),
        ("discount", pa.float64()),
        ("revenue", pa.float64()),
        ("cost", pa.float64()),
        ("status", pa.string()),
        ("customer_id", pa.int64()),
        ("fulfillment_hours", pa.float64()),
    ]
)


def thanksgiving(year: int) -> date:
    """The fourth Thursday of November."""
    first = date(year, 11, 1)
    return first + timedelta(days=(3 - first.weekday()) % 7 + 21)


def seasonality(days: list[date]) -> np.ndarray:
    """Demand multiplier per day: smooth yearly wave plus calendar events."""
    doy = np.array([d.timetuple().tm_yday for d in days], dtype=float)
    month = np.array([d.month for d in days])
    out = 1.0 + 0.07 * np.cos(2 * np.pi * (doy - 335) / 365.25)
    out *= np.select(
        [month == 1, month == 8, month == 10, month == 11, month == 12],
        [0.90, 0.93, 1.04, 1.12, 1.22],
        1.0,
    )
    for i, d in enumerate(days):
        tg = thanksgiving(d.year)
        offset = (d - tg).days
        cyber_week = {0: 1.25, 1: 2.7, 2: 1.9, 3: 1.7, 4: 2.3, 5: 1.4, 6: 1.2}
        if offset in cyber_week:
            out[i] *= cyber_week[offset]
        elif d.month == 12 and d.day in (24, 25, 26, 31):
            out[i] *= {24: 0.55, 25: 0.30, 26: 0.70, 31: 0.75}[d.day]
        elif d.month == 12 and d.day >= 27:
            out[i] *= 0.85
        elif d.month == 1 and d.day == 1:
            out[i] *= 0.40
    return out


def _draw_categorical(rng: np.random.Generator, cdf: np.ndarray) -> np.ndarray:
    """One draw per row from per-row cumulative probabilities (rows x options)."""
    u = rng.random(cdf.shape[0])
    return np.minimum((u[:, None] > cdf).sum(axis=1), cdf.shape[1] - 1)


def generate(start: date, end: date, seed: int = 7) -> pa.Table:
    """The orders table for ``start``..``end`` (both inclusive)."""
    if end < start:
        raise ValueError("end is before start")
    rng = np.random.default_rng(seed)
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    years = np.array([(d - EPOCH).days / 365.25 for d in days])
    weekday = np.array([d.weekday() for d in days])

    # Expected orders per (day, region, channel), then Poisson counts.
    frac = np.clip(years / 3.0, 0.0, 1.0)[:, None]
    channel_share = CHANNEL_SHARE_START * (1 - frac) + CHANNEL_SHARE_END * frac  # (D, C)
    growth = (1.0 + REGION_GROWTH)[None, :] ** years[:, None]  # (D, R)
    lam = (
        BASE_ORDERS_PER_DAY
        * seasonality(days)[:, None, None]
        * (REGION_SHARE[None, :] * growth)[:, :, None]
        * (channel_share[:, None, :] * REGION_CHANNEL[None, :, :])
        * WEEKLY.T[weekday][:, None, :]
    )
    day_index = {d: i for i, d in enumerate(days)}
    for first, last, regions, channels, factor in DEMAND_INCIDENTS:
        r_idx = [REGIONS.index(r) for r in regions] if regions else list(range(len(REGIONS)))
        c_idx = [CHANNELS.index(c) for c in channels] if channels else list(range(len(CHANNELS)))
        for k in range((last - first).days + 1):
            i = day_index.get(first + timedelta(days=k))
            if i is not None:
                lam[np.ix_([i], r_idx, c_idx)] *= factor
    counts = rng.poisson(lam)  # (D, R, C)

    cell = np.repeat(np.arange(counts.size), counts.ravel())
    d_i, r_i, c_i = np.unravel_index(cell, counts.shape)
    n = cell.size

    # Time of day, by channel profile.
    hour_cdf = np.cumsum(HOURLY, axis=1)[c_i]
    hour = _draw_categorical(rng, hour_cdf)
    second = rng.integers(0, 3600, size=n)
    day_np = np.array(days, dtype="datetime64[D]")
    ts = day_np[d_i].astype("datetime64[s]") + (hour * 3600 + second).astype("timedelta64[s]")

    # Stable time order fixes the row order and the order ids.
    order = np.argsort(ts, kind="stable")
    ts, d_i, r_i, c_i, hour = ts[order], d_i[order], r_i[order], c_i[order], hour[order]
    month = np.array([d.month for d in days])[d_i]
    year = np.array([d.year for d in days])[d_i]

    # Country within region.
    country = np.empty(n, dtype=object)
    for r, region in enumerate(REGIONS):
        names, weights = COUNTRIES[region]
        mask = r_i == r
        picks = rng.choice(len(names), size=int(mask.sum()), p=np.array(weights))
        country[mask] = np.array(names, dtype=object)[picks]

    # Product: base popularity x channel x month.
    weights = PRODUCT_WEIGHT[None, :] * PRODUCT_BY_CHANNEL[c_i] * PRODUCT_BY_MONTH[month - 1]
    product = _draw_categorical(
        rng, np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    )

    # Quantity: 1 + Poisson extra, more for partners.
    extra = EXTRA_UNITS[product] * np.where(c_i == CHANNELS.index("Partner"), 6.0, 1.0)
    quantity = 1 + rng.poisson(extra)

    # Prices rise ~3% each January; list prices end in .99.
    price = np.round(np.round(LIST_PRICE[product] * 1.03 ** (year - EPOCH.year)) - 0.01, 2)
    unit_cost = LIST_PRICE[product] * COST_SHARE[product] * 1.025 ** (year - EPOCH.year)

    # Discounts: most orders pay list price; promotions in cyber week, partners get contract rates.
    levels = np.array([0.05, 0.10, 0.15, 0.20, 0.25, 0.30])
    promo_day = np.zeros(len(days), dtype=bool)
    for i, d in enumerate(days):
        promo_day[i] = 1 <= (d - thanksgiving(d.year)).days <= 4
    p_discount = np.where(promo_day[d_i], 0.75, 0.22)
    discounted = rng.random(n) < p_discount
    level = levels[rng.choice(len(levels), size=n, p=[0.32, 0.28, 0.16, 0.12, 0.07, 0.05])]
    level = np.where(promo_day[d_i], np.maximum(level, 0.20), level)
    discount = np.where(discounted, level, 0.0)
    partner = c_i == CHANNELS.index("Partner")
    discount = np.where(partner, np.maximum(discount, rng.choice([0.10, 0.15], size=n)), discount)

    revenue = np.round(quantity * price * (1.0 - discount), 2)
    cost = np.round(quantity * unit_cost, 2)

    # Status: payment outages raise cancellations on Web and Mobile for a few hours.
    p_cancel = np.full(n, CANCEL_RATE)
    p_cancel = np.where(c_i == CHANNELS.index("Retail"), 0.012, p_cancel)
    online = (c_i == CHANNELS.index("Web")) | (c_i == CHANNELS.index("Mobile"))
    for day, h0, h1, p in PAYMENT_OUTAGES:
        i = day_index.get(day)
        if i is not None:
            p_cancel = np.where((d_i == i) & (hour >= h0) & (hour < h1) & online, p, p_cancel)
    u = rng.random(n)
    status = np.where(u < p_cancel, 1, np.where(u < p_cancel + REFUND_RATE, 2, 0))
    # Apparel is returned more often.
    apparel = np.isin(product, [i for i, c in enumerate(PRODUCT_CATEGORY) if c == "Apparel"])
    extra_refund = apparel & (status == 0) & (rng.random(n) < 0.03)
    status = np.where(extra_refund, 2, status)

    # Customers: a growing base; returning orders favour recent customers.
    p_new = 0.42 - 0.10 * np.clip(years[d_i] / 3.0, 0.0, 1.0)
    is_new = rng.random(n) < p_new
    is_new[0] = True
    known = np.cumsum(is_new)  # customers known after each order
    returning_pick = np.floor(known * rng.random(n) ** 0.6).astype(np.int64) + 1
    customer_id = np.where(is_new, known, np.minimum(returning_pick, known)).astype(np.int64)
    # Partner orders come from a small pool of business accounts with ids from 9_000_001.
    customer_id = np.where(partner, 9_000_001 + rng.zipf(1.6, size=n) % 400, customer_id)

    # Fulfilment hours: retail is handed over at the till, shipping takes a day or more.
    region_hours = np.array([26.0, 30.0, 40.0, 55.0])[r_i]
    hours = region_hours * rng.lognormal(0.0, 0.45, size=n)
    hours = np.where(c_i == CHANNELS.index("Retail"), rng.gamma(2.0, 0.15, size=n), hours)
    backlog = np.ones(n)
    for first, last, regions, factor in FULFILMENT_BACKLOGS:
        i0, i1 = (first - start).days, (last - start).days
        in_days = (d_i >= i0) & (d_i <= i1)
        if regions:
            in_days &= np.isin(r_i, [REGIONS.index(r) for r in regions])
        backlog = np.where(in_days & (c_i != CHANNELS.index("Retail")), factor, backlog)
    fulfillment = np.round(hours * backlog, 1)
    fulfillment_mask = status == 1  # cancelled orders are never fulfilled

    columns = [
        pa.array(np.arange(1, n + 1, dtype=np.int64) + 100_000),
        pa.array(ts, type=pa.timestamp("s")),
        pa.array(day_np[d_i], type=pa.date32()),
        pa.array(np.array(REGIONS, dtype=object)[r_i], type=pa.string()),
        pa.array(country, type=pa.string()),
        pa.array(np.array(CHANNELS, dtype=object)[c_i], type=pa.string()),
        pa.array(np.array(PRODUCT_NAMES, dtype=object)[product], type=pa.string()),
        pa.array(np.array(PRODUCT_CATEGORY, dtype=object)[product], type=pa.string()),
        pa.array(quantity.astype(np.int64)),
        pa.array(price),
        pa.array(np.round(discount, 2)),
        pa.array(revenue),
        pa.array(cost),
        pa.array(np.array(STATUSES, dtype=object)[status], type=pa.string()),
        pa.array(customer_id),
        pa.array(fulfillment, mask=fulfillment_mask, type=pa.float64()),
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def write(table: pa.Table, out: Path) -> None:
    """Write deterministically: fixed row groups, zstd, no pandas metadata."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    pq.write_table(
        table.replace_schema_metadata(None),
        tmp,
        compression="zstd",
        compression_level=9,
        row_group_size=131_072,
        use_dictionary=True,
        write_statistics=True,
    )
    tmp.replace(out)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/orders.parquet"))
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 12, 31))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quiet", action="store_true", help="print nothing")
    args = parser.parse_args(argv)
    if args.end < args.start:
        parser.error("--end is before --start")
    table = generate(args.start, args.end, args.seed)
    write(table, args.out)
    if not args.quiet:
        size = args.out.stat().st_size
        print(
            f"wrote {args.out}: {table.num_rows:,} rows, {size / 1e6:.2f} MB, "
            f"sha256 {sha256(args.out)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
