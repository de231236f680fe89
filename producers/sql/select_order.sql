SELECT order_id, status, customer_id, currency, total_cents, created_at, updated_at
FROM order_service.orders
WHERE order_id = $1
