-- The W3C tracestate that goes with the row's traceparent: the trace context of the
-- request that wrote the row, stored in the same transaction so the relay's publish
-- span continues that trace (vendors' sampling and routing state rides along).
-- Nullable: most traces carry no state, and rows written before this migration have none.
ALTER TABLE order_service.outbox ADD COLUMN tracestate text;
