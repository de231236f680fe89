-- The caller holds the order's row lock (it inserted or locked the order in this
-- transaction): the row is the relay's candidate ('pending') unless an earlier row of
-- the order is still unsent, then it waits for it ('waiting').
INSERT INTO order_service.outbox (order_id, event_id, event_type, traceparent, tracestate, payload, state)
VALUES (
    $1, $2, $3, $4, $6, $5,
    CASE
        WHEN EXISTS (
            SELECT 1 FROM order_service.outbox unsent
            WHERE unsent.order_id = $1 AND unsent.sent_at IS NULL
        ) THEN 'waiting'
        ELSE 'pending'
    END
)
