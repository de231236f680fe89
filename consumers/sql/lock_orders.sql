SELECT order_id, status, customer_id, currency, total_cents, item_count, events_applied,
       last_event_id, last_event_at
FROM orders
WHERE order_id = ANY($1::text[])
ORDER BY order_id
FOR UPDATE
