-- The next row of each order of $1 whose earlier rows are all sent becomes pending.
UPDATE order_service.outbox
SET state = 'pending'
WHERE id IN (
    SELECT min(w.id)
    FROM order_service.outbox w
    WHERE w.order_id = ANY($1) AND w.state = 'waiting'
    GROUP BY w.order_id
)
AND NOT EXISTS (
    SELECT 1 FROM order_service.outbox head
    WHERE head.order_id = outbox.order_id
      AND head.state IN ('pending', 'parked')
)
