-- Deletes up to $2 rows sent more than $1 seconds ago, oldest first (in batches, so no
-- delete holds locks for long). The batch is collected first (ARRAY(...)), walking the
-- index of sent rows by age and stopping after one batch, then deleted by primary key:
-- a join would let the plan scan the whole history when it guesses the batch large.
DELETE FROM order_service.outbox
WHERE id = ANY(ARRAY(
    SELECT id FROM order_service.outbox
    WHERE sent_at IS NOT NULL AND sent_at <= now() - $1 * interval '1 second'
    ORDER BY sent_at
    LIMIT $2
))
