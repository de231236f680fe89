SELECT count(*) FROM outbox WHERE sent_at IS NULL
