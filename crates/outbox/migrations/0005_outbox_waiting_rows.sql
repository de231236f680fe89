-- Only the oldest unsent row of each order is a candidate of the relay:
--   state  waiting -> pending -> sent, or pending -> parked. An order's later rows are
--          'waiting' while an earlier one is unsent; sending a row makes the next one
--          of its order 'pending'. The relay's claim is then a plain scan of the pending
--          rows in id order that stops after one batch, whatever the backlog and
--          whatever the planner's statistics (a claim that looked for "no earlier
--          unsent row of this order" itself could scan the whole backlog per round).
-- The API writes an order's rows while holding the order's row lock, and the relay
-- takes the same locks before it promotes, so no row is left waiting behind a sent one.
ALTER TABLE order_service.outbox DROP CONSTRAINT outbox_state_check;
ALTER TABLE order_service.outbox
    ADD CONSTRAINT outbox_state_check CHECK (state IN ('waiting', 'pending', 'sent', 'parked'));

UPDATE order_service.outbox o
SET state = 'waiting'
WHERE o.state = 'pending'
  AND EXISTS (
      SELECT 1 FROM order_service.outbox earlier
      WHERE earlier.order_id = o.order_id
        AND earlier.sent_at IS NULL
        AND earlier.id < o.id
  );

DROP INDEX order_service.outbox_unsent_by_id;
CREATE INDEX outbox_pending_by_id ON order_service.outbox (id) WHERE state = 'pending';

-- A queue table: rows change state within seconds. Vacuum and analyze it often, so
-- dead row versions and stale statistics do not pile up between autovacuum's defaults.
ALTER TABLE order_service.outbox SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.02
);
