-- Deletes up to $2 rows sent more than $1 seconds ago (in batches, so no delete holds
-- locks for long).
DELETE FROM order_service.outbox
WHERE id IN (
    SELECT id FROM order_service.outbox
    WHERE sent_at IS NOT NULL AND sent_at <= now() - $1 * interval '1 second'
    LIMIT $2
)
