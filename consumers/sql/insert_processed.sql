INSERT INTO processed_events (consumer_group, event_id, topic, "partition", "offset")
SELECT $1, e.event_id, e.topic, e.part, e.off
FROM UNNEST($2::text[], $3::text[], $4::int[], $5::bigint[]) AS e (event_id, topic, part, off)
ON CONFLICT (consumer_group, event_id) DO NOTHING
RETURNING event_id
