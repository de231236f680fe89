INSERT INTO order_service.outbox (order_id, event_id, event_type, traceparent, payload)
VALUES ($1, $2, $3, $4, $5)
