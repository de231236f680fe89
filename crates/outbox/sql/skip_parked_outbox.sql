-- The parked rows among $1 leave the queue unpublished: 'skipped', kept (with the reason
-- they were parked) until the retention deletes them like sent rows.
UPDATE order_service.outbox
SET state = 'skipped', sent_at = now(), claimed_until = NULL,
    last_error = 'skipped by an operator; parked after: ' || coalesce(last_error, 'unknown')
WHERE id = ANY($1) AND sent_at IS NULL AND state = 'parked'
RETURNING id
