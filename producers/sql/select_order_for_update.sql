-- The order, locked, if it belongs to the client $2: another client's order is not found.
SELECT order_id, status, customer_id, currency, total_cents, created_at, updated_at
FROM order_service.orders
WHERE order_id = $1 AND client_id = $2
FOR UPDATE
