-- Takes the transaction-scoped advisory lock of one client's ($1) idempotency key ($2)
-- without waiting; false while another request of that client with that key is in
-- progress. Client names hold no '/', so the string names one (client, key) pair.
-- PostgreSQL releases it at commit or rollback, or when a crashed connection goes away,
-- so no key stays stuck.
SELECT pg_try_advisory_xact_lock(
    hashtextextended('order_service.idempotency_keys/' || $1 || '/' || $2, 0)
)
