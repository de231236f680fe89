-- Locks the orders $1 (in order_id order, so two relays never deadlock) for the
-- transaction that marks their rows sent and promotes their next rows: the API holds
-- the same lock while it adds a row, so the promotion sees every row added before it.
SELECT order_id FROM order_service.orders
WHERE order_id = ANY($1)
ORDER BY order_id
FOR UPDATE
