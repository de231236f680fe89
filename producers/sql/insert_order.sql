INSERT INTO order_service.orders (order_id, status, customer_id, currency, total_cents, client_id)
VALUES ($1, 'created', $2, $3, $4, $5)
