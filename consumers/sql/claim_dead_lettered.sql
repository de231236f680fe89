-- Claims source records for the group's dead-letter writes; returns the ones that
-- were new. A row another transaction inserted and has not committed yet (another
-- owner writing the same record) makes this wait for its outcome. Rows are taken
-- in key order so two claims never wait on each other in a cycle.
INSERT INTO dead_lettered (consumer_group, topic, "partition", "offset")
SELECT $1, s.topic, s.part, s.off
FROM UNNEST($2::text[], $3::int[], $4::bigint[]) AS s (topic, part, off)
ORDER BY s.topic, s.part, s.off
ON CONFLICT (consumer_group, topic, "partition", "offset") DO NOTHING
RETURNING topic, "partition", "offset"
