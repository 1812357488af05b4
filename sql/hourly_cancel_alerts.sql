-- Hours in the last 48 whose cancellation rate on Web and Mobile (the channels that pay
-- online) was above $cancel_rate_alert, with at least $min_orders_for_alert orders.
-- Several in a row usually mean a payment provider problem.
SELECT
    date_trunc('hour', order_ts) AS hour,
    count(*) AS orders,
    count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
    count(*) FILTER (WHERE status = 'cancelled') / count(*) AS cancel_rate
FROM 'data/orders.parquet'
WHERE channel IN ('Web', 'Mobile')
  AND order_ts >= $period_end - INTERVAL 48 HOUR
  AND order_ts < $period_end
GROUP BY ALL
HAVING count(*) >= $min_orders_for_alert
   AND count(*) FILTER (WHERE status = 'cancelled') / count(*) > $cancel_rate_alert
ORDER BY hour DESC
