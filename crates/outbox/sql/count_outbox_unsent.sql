-- Rows to be published (pending, or waiting behind their order's earlier row), rows
-- parked, and when the oldest unsent row was written: one pass over the unsent rows
-- (the partial index on them), never over the sent history.
SELECT count(*) FILTER (WHERE state IN ('pending', 'waiting')),
       count(*) FILTER (WHERE state = 'parked'),
       min(created_at)
FROM order_service.outbox
WHERE sent_at IS NULL
