-- The dedup key carries the order id, so every key of the consumer's tables holds
-- the order id and both tables can be distributed by it (a distributed PostgreSQL
-- such as Citus requires the distribution column in every unique key): all of a
-- batch's statements then reach one order's rows through the order id.
--
-- Rows written before this migration have no order id: they keep '' and stay
-- recognised (the consumer checks a redelivered event against them while any
-- remain; retention deletes them like any other row). Rebuilding the primary key
-- reads the whole table once: minutes on tens of millions of rows.
ALTER TABLE processed_events ADD COLUMN order_id TEXT NOT NULL DEFAULT '';
ALTER TABLE processed_events ALTER COLUMN order_id DROP DEFAULT;
ALTER TABLE processed_events
    DROP CONSTRAINT processed_events_pkey,
    ADD PRIMARY KEY (consumer_group, order_id, event_id);
