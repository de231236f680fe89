-- Stores the answer to a key. A row still present under the key has expired (the
-- lookup ignored it), so it is replaced.
INSERT INTO order_service.idempotency_keys
    (idempotency_key, fingerprint, response_status, response_body)
VALUES ($1, $2, $3, $4)
ON CONFLICT (idempotency_key) DO UPDATE
SET fingerprint = EXCLUDED.fingerprint,
    response_status = EXCLUDED.response_status,
    response_body = EXCLUDED.response_body,
    created_at = now()
