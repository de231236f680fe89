-- The orders of the parked rows among $1, to lock before the rows leave the queue.
SELECT DISTINCT order_id FROM order_service.outbox
WHERE id = ANY($1) AND sent_at IS NULL AND state = 'parked'
