-- Gives back claims whose DLQ write did not happen (failed, or the partition moved
-- on), before the claiming transaction commits the others.
DELETE FROM dead_lettered
WHERE consumer_group = $1
  AND (topic, "partition", "offset") IN (
      SELECT s.topic, s.part, s.off
      FROM UNNEST($2::text[], $3::int[], $4::bigint[]) AS s (topic, part, off)
  )
