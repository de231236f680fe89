UPDATE order_service.outbox
SET sent_at = now(), state = 'sent', attempts = attempts + 1, last_error = NULL
WHERE id = ANY($1)
