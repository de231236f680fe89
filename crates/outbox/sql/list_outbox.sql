-- Unsent rows, oldest first: parked ones, pending ones, or both ($1 NULL).
SELECT id, order_id, event_id, event_type, state, attempts, last_error,
       created_at, next_attempt_at, parked_at, claimed_until
FROM order_service.outbox
WHERE sent_at IS NULL
  AND ($1::text IS NULL OR state = $1)
ORDER BY id
LIMIT $2
