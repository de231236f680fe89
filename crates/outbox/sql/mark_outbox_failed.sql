-- A failed attempt: the row stays pending, gives its claim up and waits $3 seconds
-- before its next one.
UPDATE order_service.outbox
SET attempts = attempts + 1,
    last_error = $2,
    next_attempt_at = now() + $3 * interval '1 second',
    claimed_until = NULL
WHERE id = $1 AND state = 'pending'
