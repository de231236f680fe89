-- consumer-bench pg-limit: the exactly-once consumer's batch transaction run by
-- PostgreSQL alone, on events already decoded into a staging table. Created in
-- the bench's own fresh database, next to the consumer's tables.

-- The seeded events, decoded. `session` splits the orders between the parallel
-- sessions (the engine's --db-concurrency); `batch_no` cuts each session's events
-- into batches as the engine does: at most --batch-size events, at most one event
-- of an order per batch, an order's events in offset order across batches.
CREATE TABLE pg_limit_events (
    seq          BIGINT      NOT NULL,
    event_id     TEXT        NOT NULL,
    order_id     TEXT        NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    kind         TEXT        NOT NULL,
    customer_id  TEXT,
    currency     TEXT,
    total_cents  BIGINT,
    item_count   INTEGER,
    amount_cents BIGINT,
    topic        TEXT        NOT NULL,
    "partition"  INTEGER     NOT NULL,
    "offset"     BIGINT      NOT NULL,
    session      INTEGER     NOT NULL,
    batch_no     INTEGER     NOT NULL,
    PRIMARY KEY (session, batch_no, seq)
);

-- One session's share of the events, batch after batch, each batch in its own
-- transaction with the consumer's four statements, passed in verbatim from
-- consumers/sql/ (effect_batch.rs runs them in this order):
--   1. lock_orders.sql       lock and read the batch's orders
--   2. select_processed.sql  the dedup check, after the locks (as the engine does)
--   3. insert_processed.sql  the dedup rows (every one must be new)
--   4. upsert_orders.sql     the orders' new state, overwriting only the rows read
--                            (events_applied as read, 0 for a new order)
-- The lifecycle rules (OrderStatus::after and the paid-amount check, applied in
-- Rust by projection::apply) are the CASE below, evaluated on the locked rows in
-- the same statement as step 1. Every seeded event is new, so step 2 must find
-- none (the run aborts otherwise) and step 1 need not exclude any. A batch holds at most one event per order, so one
-- rule step per order suffices. An event that breaks the rules aborts the run: the
-- seeded events are all valid, so one would mean these rules differ from Rust's.
CREATE PROCEDURE pg_limit_apply(
    p_group TEXT,
    p_session INTEGER,
    select_processed TEXT,
    lock_orders TEXT,
    insert_processed TEXT,
    upsert_orders TEXT
)
LANGUAGE plpgsql AS $proc$
DECLARE
    batch INTEGER;
    event_ids TEXT[];
    order_ids TEXT[];
    event_orders TEXT[];
    seen TEXT[];
    invalid BIGINT;
    ids TEXT[];
    topics TEXT[];
    parts INTEGER[];
    offs BIGINT[];
    o_ids TEXT[];
    o_status TEXT[];
    o_customer TEXT[];
    o_currency TEXT[];
    o_total BIGINT[];
    o_items INTEGER[];
    o_applied INTEGER[];
    o_expected INTEGER[];
    o_last_at TIMESTAMPTZ[];
    inserted BIGINT;
BEGIN
    FOR batch IN
        SELECT DISTINCT e.batch_no FROM pg_limit_events e
        WHERE e.session = p_session ORDER BY e.batch_no
    LOOP
        SELECT array_agg(e.event_id ORDER BY e.seq), array_agg(e.order_id ORDER BY e.order_id),
               array_agg(e.order_id ORDER BY e.seq)
        INTO event_ids, order_ids, event_orders
        FROM pg_limit_events e
        WHERE e.session = p_session AND e.batch_no = batch;

        EXECUTE 'WITH cur AS MATERIALIZED (' || lock_orders || '),
            next AS (
                SELECT e.seq, e.event_id, e.topic, e."partition", e."offset", e.order_id,
                       e.occurred_at,
                       coalesce(c.customer_id, e.customer_id) AS customer_id,
                       coalesce(c.currency, e.currency) AS currency,
                       coalesce(c.total_cents, e.total_cents) AS total_cents,
                       coalesce(c.item_count, e.item_count) AS item_count,
                       coalesce(c.events_applied, 0) + 1 AS events_applied,
                       coalesce(c.events_applied, 0) AS expected,
                       CASE
                           WHEN e.kind = ''created'' AND c.order_id IS NULL THEN ''created''
                           WHEN e.kind = ''paid'' AND c.status = ''created''
                                AND e.amount_cents = c.total_cents THEN ''paid''
                           WHEN e.kind = ''shipped'' AND c.status = ''paid'' THEN ''shipped''
                           WHEN e.kind = ''cancelled'' AND c.status IN (''created'', ''paid'')
                                THEN ''cancelled''
                       END AS status
                FROM pg_limit_events e
                LEFT JOIN cur c ON c.order_id = e.order_id
                WHERE e.session = $2 AND e.batch_no = $3
            )
            SELECT count(*) FILTER (WHERE status IS NULL),
                   array_agg(event_id ORDER BY seq) FILTER (WHERE status IS NOT NULL),
                   array_agg(topic ORDER BY seq) FILTER (WHERE status IS NOT NULL),
                   array_agg("partition" ORDER BY seq) FILTER (WHERE status IS NOT NULL),
                   array_agg("offset" ORDER BY seq) FILTER (WHERE status IS NOT NULL),
                   array_agg(order_id ORDER BY seq) FILTER (WHERE status IS NOT NULL),
                   array_agg(status ORDER BY seq) FILTER (WHERE status IS NOT NULL),
                   array_agg(customer_id ORDER BY seq) FILTER (WHERE status IS NOT NULL),
                   array_agg(currency ORDER BY seq) FILTER (WHERE status IS NOT NULL),
                   array_agg(total_cents ORDER BY seq) FILTER (WHERE status IS NOT NULL),
                   array_agg(item_count ORDER BY seq) FILTER (WHERE status IS NOT NULL),
                   array_agg(events_applied ORDER BY seq) FILTER (WHERE status IS NOT NULL),
                   array_agg(expected ORDER BY seq) FILTER (WHERE status IS NOT NULL),
                   array_agg(occurred_at ORDER BY seq) FILTER (WHERE status IS NOT NULL)
            FROM next'
        INTO invalid, ids, topics, parts, offs, o_ids, o_status, o_customer, o_currency,
             o_total, o_items, o_applied, o_expected, o_last_at
        USING order_ids, p_session, batch;
        IF invalid > 0 THEN
            RAISE EXCEPTION 'batch % of session %: % events break the lifecycle rules',
                batch, p_session, invalid;
        END IF;

        EXECUTE 'SELECT coalesce(array_agg(event_id), ''{}'') FROM (' || select_processed || ') s'
        INTO seen
        USING p_group, event_orders, event_ids;
        IF cardinality(seen) > 0 THEN
            RAISE EXCEPTION 'batch % of session %: % events were already processed',
                batch, p_session, cardinality(seen);
        END IF;

        EXECUTE insert_processed USING p_group, o_ids, ids, topics, parts, offs, false;
        GET DIAGNOSTICS inserted = ROW_COUNT;
        IF inserted <> coalesce(cardinality(ids), 0) THEN
            RAISE EXCEPTION 'batch % of session %: % of % dedup rows were new',
                batch, p_session, inserted, cardinality(ids);
        END IF;

        EXECUTE upsert_orders
        USING o_ids, o_status, o_customer, o_currency, o_total, o_items, o_applied, ids, o_last_at,
              o_expected;
        GET DIAGNOSTICS inserted = ROW_COUNT;
        IF inserted <> coalesce(cardinality(o_ids), 0) THEN
            RAISE EXCEPTION 'batch % of session %: % of % orders written',
                batch, p_session, inserted, cardinality(o_ids);
        END IF;
        COMMIT;
    END LOOP;
END
$proc$;
