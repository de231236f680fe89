-- Deletes keys older than the retention ($1, in seconds).
DELETE FROM order_service.idempotency_keys WHERE created_at <= now() - $1 * interval '1 second'
