-- Orders and idempotency keys belong to the API client that wrote them: the client name
-- of its bearer token (`name:token`), or `default` when the API runs without tokens.
-- Another client finds neither: its reads and changes of the order answer 404, and the
-- same Idempotency-Key is a key of its own.
--
-- Rows written before this migration (and rows inserted by hand, by tools that name no
-- client) belong to the client `default`: give the client that wrote them a token named
-- `default` to keep reaching them. A key's stored answer follows the same rule, so a
-- client other than `default` retrying across the upgrade makes its change again; keys
-- live 24 h, so upgrade when no client retries (or name its token `default`).
ALTER TABLE order_service.orders ADD COLUMN client_id text NOT NULL DEFAULT 'default';

ALTER TABLE order_service.idempotency_keys ADD COLUMN client_id text NOT NULL DEFAULT 'default';
ALTER TABLE order_service.idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE order_service.idempotency_keys ADD PRIMARY KEY (client_id, idempotency_key);
