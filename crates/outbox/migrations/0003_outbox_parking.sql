-- Outbox rows that cannot be published are parked instead of retried forever.
--   state            pending -> sent, or pending -> parked (after --relay-max-attempts
--                    permanent failures, e.g. a record too large for the topic);
--                    `last_error` then holds the reason and `attempts` the count.
--   next_attempt_at  a failed row waits out its own backoff, so it never slows the
--                    rows of other orders.
-- A parked row still counts as unsent, so its order's later events wait behind it.
ALTER TABLE order_service.outbox
    ADD COLUMN state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sent', 'parked')),
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN parked_at timestamptz NULL;

UPDATE order_service.outbox SET state = 'sent' WHERE sent_at IS NOT NULL;

ALTER TABLE order_service.outbox
    ADD CONSTRAINT outbox_sent_state CHECK ((state = 'sent') = (sent_at IS NOT NULL));

-- Housekeeping deletes sent rows by age.
CREATE INDEX outbox_sent_by_age ON order_service.outbox (sent_at) WHERE sent_at IS NOT NULL;
