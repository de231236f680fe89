-- A consumer group other than $1 with rows in this database, if any. The smallest and
-- largest group of each dedup table are reads of the primary key's first column, so
-- the check stays cheap on a table of millions of rows of one group.
SELECT consumer_group
FROM (
    (SELECT min(consumer_group) AS consumer_group FROM processed_events)
    UNION ALL (SELECT max(consumer_group) FROM processed_events)
    UNION ALL (SELECT min(consumer_group) FROM dead_lettered)
    UNION ALL (SELECT max(consumer_group) FROM dead_lettered)
) AS edges
WHERE consumer_group <> $1
LIMIT 1
