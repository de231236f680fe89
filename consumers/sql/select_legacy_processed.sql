-- Whether group $1 has dedup rows from before the key held the order id.
SELECT EXISTS (
    SELECT 1 FROM processed_events WHERE consumer_group = $1 AND order_id = ''
)
