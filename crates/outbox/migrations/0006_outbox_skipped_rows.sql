-- An operator can take a parked row out of the queue without publishing it, so that its
-- order's later events move on (`orderflow outbox skip`):
--   state  parked -> skipped. A skipped row is no longer unsent (sent_at records when it
--          left the queue) and is deleted after the retention like a sent row; its
--          last_error keeps why it was parked.
ALTER TABLE order_service.outbox DROP CONSTRAINT outbox_state_check;
ALTER TABLE order_service.outbox
    ADD CONSTRAINT outbox_state_check
        CHECK (state IN ('waiting', 'pending', 'sent', 'parked', 'skipped'));

ALTER TABLE order_service.outbox DROP CONSTRAINT outbox_sent_state;
ALTER TABLE order_service.outbox
    ADD CONSTRAINT outbox_sent_state CHECK ((state IN ('sent', 'skipped')) = (sent_at IS NOT NULL));
