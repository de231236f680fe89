-- A slice of the group's dead-letter ledger rows that are older than the retention
-- and whose offset the group has committed past on their partition ($3/$4:
-- partitions and committed offsets; a partition without a commit keeps all its
-- rows). The same rule as delete_expired_processed.sql.
DELETE FROM dead_lettered
WHERE ctid IN (
    SELECT d.ctid
    FROM dead_lettered d
    JOIN unnest($3::integer[], $4::bigint[]) AS c("partition", committed)
      ON d."partition" = c."partition"
    WHERE d.consumer_group = $1
      AND d.topic = $2
      AND d."offset" < c.committed
      AND d.dead_lettered_at < now() - make_interval(secs => $5)
    LIMIT $6
)
