-- The stored answer to a client's ($1) key ($2), if it has not expired ($3 = the
-- retention in seconds). Another client's use of the same key is not seen.
SELECT fingerprint, response_status, response_body
FROM order_service.idempotency_keys
WHERE client_id = $1
  AND idempotency_key = $2
  AND created_at > now() - $3 * interval '1 second'
