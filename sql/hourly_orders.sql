-- Hourly Operations Check: the last interval against the one before.
-- Parameters: $period_start, $period_end, $prev_period_start, $prev_period_end (built in),
-- $cancel_rate_alert and $min_orders_for_alert (pipeline [params]).
WITH o AS (
    SELECT
        order_ts >= $period_start AS is_current,
        status,
        fulfillment_hours
    FROM 'data/orders.parquet'
    WHERE (order_ts >= $period_start AND order_ts < $period_end)
       OR (order_ts >= $prev_period_start AND order_ts < $prev_period_end)
),
figures AS (
    SELECT
        count(*) FILTER (WHERE is_current) AS orders,
        count(*) FILTER (WHERE NOT is_current) AS prev_orders,
        count(*) FILTER (WHERE is_current AND status = 'cancelled') AS cancellations,
        count(*) FILTER (WHERE NOT is_current AND status = 'cancelled') AS prev_cancellations,
        quantile_cont(fulfillment_hours, 0.9) FILTER (WHERE is_current) AS p90_fulfillment_hours,
        quantile_cont(fulfillment_hours, 0.9) FILTER (WHERE NOT is_current) AS prev_p90_fulfillment_hours
    FROM o
)
SELECT
    orders,
    prev_orders,
    cancellations,
    prev_cancellations,
    cancellations / nullif(orders, 0) AS cancel_rate,
    prev_cancellations / nullif(prev_orders, 0) AS prev_cancel_rate,
    p90_fulfillment_hours,
    prev_p90_fulfillment_hours,
    coalesce(
        orders >= $min_orders_for_alert AND cancellations / nullif(orders, 0) > $cancel_rate_alert,
        false
    ) AS cancel_alert
FROM figures
