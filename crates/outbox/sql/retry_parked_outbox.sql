-- Parked rows become pending again with a fresh count of attempts: all of them ($1
-- NULL), or those with the given ids. Their orders' later rows follow once they are sent.
-- `sent_at IS NULL` (implied by the state) lets the plan read only the unsent rows'
-- index instead of the whole history.
UPDATE order_service.outbox
SET state = 'pending', attempts = 0, next_attempt_at = now(), parked_at = NULL,
    claimed_until = NULL
WHERE state = 'parked'
  AND sent_at IS NULL
  AND ($1::bigint[] IS NULL OR id = ANY($1))
RETURNING id
