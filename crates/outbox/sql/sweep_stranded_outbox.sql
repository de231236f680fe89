-- Makes pending the oldest unsent row of every order when it is 'waiting' although no
-- earlier row of its order is unsent: a head fixed by hand (a parked row marked sent by
-- an operator) or rows written by an older binary leave such rows, and nothing else
-- would ever promote them. Reads the unsent rows only (the partial index on them), never
-- the sent history. Returns the ids promoted.
UPDATE order_service.outbox o
SET state = 'pending'
WHERE o.id IN (
    SELECT DISTINCT ON (u.order_id) u.id
    FROM order_service.outbox u
    WHERE u.sent_at IS NULL
    ORDER BY u.order_id, u.id
)
AND o.state = 'waiting'
RETURNING o.id
