-- Rows waiting to be published, and rows parked.
SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'parked')
FROM order_service.outbox
WHERE sent_at IS NULL
