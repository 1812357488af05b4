-- Orders per hour over the 48 hours up to the end of the period (hours without orders show 0).
WITH hours AS (
    SELECT hour
    FROM range(
        date_trunc('hour', $period_end - INTERVAL 48 HOUR),
        $period_end,
        INTERVAL 1 HOUR
    ) AS t(hour)
),
counts AS (
    SELECT
        date_trunc('hour', order_ts) AS hour,
        count(*) AS orders,
        count(*) FILTER (WHERE status = 'cancelled') AS cancelled
    FROM 'data/orders.parquet'
    WHERE order_ts >= $period_end - INTERVAL 48 HOUR
      AND order_ts < $period_end
    GROUP BY ALL
)
SELECT
    hours.hour,
    coalesce(counts.orders, 0) AS orders,
    coalesce(counts.cancelled, 0) AS cancelled,
    counts.cancelled / nullif(counts.orders, 0) AS cancel_rate
FROM hours
LEFT JOIN counts USING (hour)
ORDER BY hours.hour
