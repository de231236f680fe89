-- Takes back dedup rows this transaction inserted for events it did not apply
-- (they broke the lifecycle rules and are dead-lettered instead).
DELETE FROM processed_events
WHERE consumer_group = $1 AND event_id = ANY($2::text[])
