-- The relay claims rows with a lease instead of holding their locks for a whole round:
--   claimed_until  the row is being published by a relay until then (its delivery may
--                  still be in flight); no relay claims it again before. A relay that
--                  crashed leaves the lease to expire, and the row is published again
--                  (at least once; consumers deduplicate on event_id).
-- Sent, failed and parked rows give the lease up.
ALTER TABLE order_service.outbox ADD COLUMN claimed_until timestamptz NULL;
