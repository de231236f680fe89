-- The Kafka transaction that published these rows committed. A row already marked keeps its
-- first sent_at.
UPDATE order_service.outbox
SET sent_at = now(), state = 'sent', attempts = attempts + 1, last_error = NULL,
    claimed_until = NULL
WHERE id = ANY($1) AND sent_at IS NULL
