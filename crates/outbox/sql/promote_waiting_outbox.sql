-- The next row of each order of $1 whose earlier rows are all sent becomes pending.
-- Both sides say `sent_at IS NULL` although `state` implies it: the planner cannot see
-- that, and only the partial index on unsent rows (order_id, id) serves the lookup by
-- order; without it each order costs a scan of the whole retained history.
UPDATE order_service.outbox
SET state = 'pending'
WHERE id IN (
    SELECT min(w.id)
    FROM order_service.outbox w
    WHERE w.order_id = ANY($1) AND w.sent_at IS NULL AND w.state = 'waiting'
    GROUP BY w.order_id
)
AND NOT EXISTS (
    SELECT 1 FROM order_service.outbox head
    WHERE head.order_id = outbox.order_id
      AND head.sent_at IS NULL
      AND head.state IN ('pending', 'parked')
)
