-- Stores the answer to a client's key. A row still present under the client's key has
-- expired (the lookup ignored it), so it is replaced.
INSERT INTO order_service.idempotency_keys
    (client_id, idempotency_key, fingerprint, response_status, response_body)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (client_id, idempotency_key) DO UPDATE
SET fingerprint = EXCLUDED.fingerprint,
    response_status = EXCLUDED.response_status,
    response_body = EXCLUDED.response_body,
    created_at = now()
