-- Loads the decoded events in one statement and cuts them into sessions and
-- batches ($14 sessions, $15 batch size): an event's step is its rank among its
-- order's events, so batch numbers run step by step and no batch holds two
-- events of one order.
INSERT INTO pg_limit_events (seq, event_id, order_id, occurred_at, kind, customer_id, currency,
                             total_cents, item_count, amount_cents, topic, "partition", "offset",
                             session, batch_no)
SELECT seq, event_id, order_id, occurred_at, kind, customer_id, currency, total_cents,
       item_count, amount_cents, topic, part, off, session,
       (step - 1) * 1000000
           + (row_number() OVER (PARTITION BY session, step ORDER BY seq) - 1) / $15
FROM (
    SELECT e.*,
           (abs(hashtext(e.order_id)::bigint) % $14)::int AS session,
           row_number() OVER (PARTITION BY e.order_id ORDER BY e.seq) AS step
    FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
                $6::text[], $7::text[], $8::bigint[], $9::int[], $10::bigint[], $11::text[],
                $12::int[], $13::bigint[])
         AS e (seq, event_id, order_id, occurred_at, kind, customer_id, currency, total_cents,
               item_count, amount_cents, topic, part, off)
) staged
