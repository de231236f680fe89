-- Dedup rows for events; returns the ones that were new. A row another transaction
-- inserted and has not committed yet (another owner applying the same event) makes
-- this wait for its outcome. Rows go in key order so two inserts never wait on each
-- other in a cycle.
INSERT INTO processed_events (consumer_group, event_id, topic, "partition", "offset")
SELECT $1, e.event_id, e.topic, e.part, e.off
FROM UNNEST($2::text[], $3::text[], $4::int[], $5::bigint[]) AS e (event_id, topic, part, off)
ORDER BY e.event_id
ON CONFLICT (consumer_group, event_id) DO NOTHING
RETURNING event_id
