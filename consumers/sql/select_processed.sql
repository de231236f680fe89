SELECT event_id
FROM processed_events
WHERE consumer_group = $1 AND event_id = ANY($2::text[])
