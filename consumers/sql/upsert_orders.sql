INSERT INTO orders (order_id, status, customer_id, currency, total_cents, item_count,
                    events_applied, last_event_id, last_event_at, updated_at)
SELECT o.order_id, o.status, o.customer_id, o.currency, o.total_cents, o.item_count,
       o.events_applied, o.last_event_id, o.last_event_at, now()
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::int[],
            $7::int[], $8::text[], $9::timestamptz[])
     AS o (order_id, status, customer_id, currency, total_cents, item_count,
           events_applied, last_event_id, last_event_at)
ON CONFLICT (order_id) DO UPDATE SET
    status = EXCLUDED.status,
    events_applied = EXCLUDED.events_applied,
    last_event_id = EXCLUDED.last_event_id,
    last_event_at = EXCLUDED.last_event_at,
    updated_at = EXCLUDED.updated_at
-- Optimistic check: only overwrite the row this transaction read (and locked).
-- A row that appeared since (a concurrent creation) is left alone, the caller
-- sees fewer rows written and retries. An uncorrelated IN, so PostgreSQL builds
-- one hash of the expected pairs: a subquery correlated on order_id scanned the
-- whole array once per conflicting row, quadratic in the batch (5,000 orders:
-- 15 s against 0.4 s).
WHERE (orders.order_id, orders.events_applied) IN (
    SELECT e.order_id, e.expected FROM UNNEST($1::text[], $10::int[]) AS e (order_id, expected)
)
