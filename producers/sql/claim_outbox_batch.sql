-- Claims the oldest unsent row of each order, in id order, for $2 seconds, and returns
-- them. The statement commits on its own: no lock outlives it, so a slow delivery never
-- holds a transaction, a pooled connection or another relay's round.
-- Only an order's oldest unsent row is eligible, so its next event is published only
-- after this one was acknowledged and marked sent: per-order order holds even when a
-- delivery fails and is retried, and even with several relays (a row another relay has
-- claimed, or is claiming right now, is skipped, and the rows after it are not eligible
-- while it is unsent).
-- A parked row is never claimed and, being unsent, keeps its order's later rows back.
-- A row waiting out its backoff (next_attempt_at) holds back only its own order.
WITH claimable AS (
    SELECT o.id
    FROM order_service.outbox o
    WHERE o.sent_at IS NULL
      AND o.state = 'pending'
      AND o.next_attempt_at <= now()
      AND (o.claimed_until IS NULL OR o.claimed_until <= now())
      AND NOT EXISTS (
          SELECT 1 FROM order_service.outbox earlier
          WHERE earlier.order_id = o.order_id
            AND earlier.sent_at IS NULL
            AND earlier.id < o.id
      )
    ORDER BY o.id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE order_service.outbox o
SET claimed_until = now() + $2 * interval '1 second'
FROM claimable
WHERE o.id = claimable.id
RETURNING o.id, o.order_id, o.event_id, o.event_type, o.traceparent, o.payload, o.attempts
