-- Dedup rows for events; returns the ones that were new. A row another transaction
-- inserted and has not committed yet (another owner applying the same event) makes
-- this wait for its outcome. Rows go in key order so two inserts never wait on each
-- other in a cycle. $7: rows from before the key held the order id remain (their
-- order id is ''); an event with one of those is not new either.
INSERT INTO processed_events (consumer_group, order_id, event_id, topic, "partition", "offset")
SELECT $1, e.order_id, e.event_id, e.topic, e.part, e.off
FROM UNNEST($2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[])
    AS e (order_id, event_id, topic, part, off)
WHERE NOT $7::boolean
   OR NOT EXISTS (
        SELECT 1 FROM processed_events l
        WHERE l.consumer_group = $1 AND l.order_id = '' AND l.event_id = e.event_id
   )
ORDER BY e.order_id, e.event_id
ON CONFLICT (consumer_group, order_id, event_id) DO NOTHING
RETURNING event_id
