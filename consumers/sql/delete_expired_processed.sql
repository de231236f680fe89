DELETE FROM processed_events
WHERE ctid IN (
    SELECT ctid FROM processed_events
    WHERE consumer_group = $1 AND processed_at < now() - make_interval(secs => $2)
    LIMIT $3
)
