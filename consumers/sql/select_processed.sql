-- The events among ($2 order ids, $3 event ids) that group $1 already processed.
SELECT p.event_id
FROM processed_events p
JOIN UNNEST($2::text[], $3::text[]) AS e (order_id, event_id)
  ON p.order_id = e.order_id AND p.event_id = e.event_id
WHERE p.consumer_group = $1
