-- The next rows of slot $1 to publish, up to $3, in id order: its unsent rows, except
-- those already published and not yet recorded ($2, the owner's acknowledged rows whose
-- `mark_outbox_sent` has not succeeded yet: they are recorded, not sent again).
-- Only the slot's owner (the holder of its advisory lock) runs this, so no row lock or
-- lease is taken: rows are read, published in one Kafka transaction, then marked sent.
-- A row is held back while it, or an earlier unsent row of its order, is parked (until
-- an operator retries, skips or discards it) or waits out its backoff after a failed
-- delivery (next_attempt_at): an order's events never overtake each other, and every
-- other order of the slot flows on.
-- Served by the partial index on unsent rows by (slot, id); the look-up of an earlier
-- row by the one on unsent rows by (order_id, id).
SELECT o.id, o.order_id, o.event_id, o.event_type, o.traceparent, o.tracestate, o.payload, o.attempts,
       o.created_at
FROM order_service.outbox o
WHERE o.slot = $1
  AND o.sent_at IS NULL
  AND o.id <> ALL($2)
  AND NOT EXISTS (
      SELECT 1 FROM order_service.outbox held
      WHERE held.order_id = o.order_id
        AND held.sent_at IS NULL
        AND held.id <= o.id
        AND (held.state = 'parked' OR held.next_attempt_at > now())
  )
ORDER BY o.id
LIMIT $3
