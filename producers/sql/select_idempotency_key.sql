-- The stored answer to a key, if it has not expired ($2 = the retention in seconds).
SELECT fingerprint, response_status, response_body
FROM order_service.idempotency_keys
WHERE idempotency_key = $1
  AND created_at > now() - $2 * interval '1 second'
