-- The row's last attempt failed permanently: park it with the reason.
UPDATE order_service.outbox
SET attempts = attempts + 1, last_error = $2, state = 'parked', parked_at = now(),
    claimed_until = NULL
WHERE id = $1 AND state = 'pending'
