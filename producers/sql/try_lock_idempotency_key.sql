-- Takes the transaction-scoped advisory lock of one idempotency key without waiting;
-- false while another request with that key is in progress. PostgreSQL releases it at
-- commit or rollback, or when a crashed connection goes away, so no key stays stuck.
SELECT pg_try_advisory_xact_lock(hashtextextended('order_service.idempotency_keys/' || $1, 0))
