-- Makes pending the oldest unsent row of every order of the slots $1 when it is
-- 'waiting': the slot relay publishes rows whatever their state, but `orderflow outbox
-- list` and an older binary's relay (during a rolling upgrade) read the state, and a
-- head fixed by hand or an older binary's rows leave such rows. Run by each relay for
-- the slots it owns only. Reads the unsent rows only. Returns the ids promoted.
UPDATE order_service.outbox o
SET state = 'pending'
WHERE o.id IN (
    SELECT DISTINCT ON (u.order_id) u.id
    FROM order_service.outbox u
    WHERE u.sent_at IS NULL AND u.slot = ANY($1)
    ORDER BY u.order_id, u.id
)
AND o.state = 'waiting'
RETURNING o.id
