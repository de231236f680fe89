-- The parked rows among $1 are deleted unpublished.
DELETE FROM order_service.outbox
WHERE id = ANY($1) AND sent_at IS NULL AND state = 'parked'
RETURNING id
