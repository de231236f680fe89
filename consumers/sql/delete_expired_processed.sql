-- A slice of the group's dedup rows that are older than the retention and whose
-- offset the group has committed past on their partition ($3/$4: partitions and
-- committed offsets; a partition without a commit keeps all its rows). The slice
-- is named by primary key, which a table distributed by order id can route.
DELETE FROM processed_events
WHERE (consumer_group, order_id, event_id) IN (
    SELECT e.consumer_group, e.order_id, e.event_id
    FROM processed_events e
    JOIN unnest($3::integer[], $4::bigint[]) AS c("partition", committed)
      ON e."partition" = c."partition"
    WHERE e.consumer_group = $1
      AND e.topic = $2
      AND e."offset" < c.committed
      AND e.processed_at < now() - make_interval(secs => $5)
    LIMIT $6
)
