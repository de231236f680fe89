-- Claims up to $1 pending rows, in id order, for $2 seconds, and returns them. The
-- statement commits on its own: no lock outlives it, so a slow delivery never holds a
-- transaction, a pooled connection or another relay's round.
-- Only an order's oldest unsent row is pending (its later rows wait, see
-- migrations/0005), so an order's next event is published only after this one was
-- acknowledged and marked sent: per-order order holds even when a delivery fails and is
-- retried, and even with several relays (a row another relay has claimed, or is
-- claiming right now, is skipped until its lease ends).
-- A parked row is never claimed and keeps its order's later rows waiting.
-- A row waiting out its backoff (next_attempt_at) holds back only its own order.
WITH claimable AS (
    SELECT o.id
    FROM order_service.outbox o
    WHERE o.state = 'pending'
      AND o.next_attempt_at <= now()
      AND (o.claimed_until IS NULL OR o.claimed_until <= now())
    ORDER BY o.id
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE order_service.outbox o
SET claimed_until = now() + $2 * interval '1 second'
FROM claimable
WHERE o.id = claimable.id
RETURNING o.id, o.order_id, o.event_id, o.event_type, o.traceparent, o.tracestate, o.payload, o.attempts
