-- Rows to be published (pending, or waiting behind their order's earlier row), and rows parked.
SELECT count(*) FILTER (WHERE state IN ('pending', 'waiting')), count(*) FILTER (WHERE state = 'parked')
FROM order_service.outbox
WHERE sent_at IS NULL
