-- Idempotency keys of the order API (the `Idempotency-Key` header). A row is written in
-- the same transaction as the change it answers, so it exists if and only if that change
-- committed; a retry with the same key replays the stored response. Requests that fail
-- write nothing (they changed nothing), so their key stays free.
CREATE TABLE order_service.idempotency_keys (
    idempotency_key text        PRIMARY KEY,
    -- SHA-256 of method, path and the body's canonical JSON: a reuse with another
    -- request is refused.
    fingerprint     bytea       NOT NULL,
    response_status smallint    NOT NULL,
    response_body   bytea       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Expired keys are purged by age.
CREATE INDEX idempotency_keys_by_age ON order_service.idempotency_keys (created_at);
