SELECT count(*) FROM order_service.outbox WHERE sent_at IS NULL
