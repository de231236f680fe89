-- Takes back dedup rows this transaction inserted for events it did not apply
-- (they broke the lifecycle rules and are dead-lettered instead): $2 order ids and
-- $3 event ids, pairwise.
DELETE FROM processed_events p
USING UNNEST($2::text[], $3::text[]) AS e (order_id, event_id)
WHERE p.consumer_group = $1 AND p.order_id = e.order_id AND p.event_id = e.event_id
