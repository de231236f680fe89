-- The order service's own tables: the orders it owns and the transactional outbox the
-- relay publishes from. Every write to `orders` inserts its event into `outbox` in the
-- same transaction. They live in the schema `order_service` (created by the migrator,
-- which also keeps this history in `order_service._sqlx_migrations`), so the consumer's
-- tables can share the database.

CREATE TABLE order_service.orders (
    order_id    text        PRIMARY KEY,
    status      text        NOT NULL CHECK (status IN ('created', 'paid', 'shipped', 'cancelled')),
    customer_id text        NOT NULL,
    currency    char(3)     NOT NULL,
    total_cents bigint      NOT NULL CHECK (total_cents >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- payload holds the record value exactly as it goes to Kafka: the Confluent wire format
-- (magic byte, schema id, Avro body), encoded when the row is written. The relay then
-- never needs the registry and publishes byte-identical retries.
CREATE TABLE order_service.outbox (
    id          bigserial   PRIMARY KEY,
    order_id    text        NOT NULL REFERENCES order_service.orders (order_id),
    event_id    uuid        NOT NULL UNIQUE,
    event_type  text        NOT NULL,
    traceparent text        NOT NULL,
    payload     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz NULL,
    attempts    integer     NOT NULL DEFAULT 0,
    last_error  text        NULL
);

-- The relay's scan: unsent rows in id order, and "is there an older unsent row of this
-- order" for each candidate. Partial, so sent rows cost nothing.
CREATE INDEX outbox_unsent_by_id ON order_service.outbox (id) WHERE sent_at IS NULL;
CREATE INDEX outbox_unsent_by_order ON order_service.outbox (order_id, id) WHERE sent_at IS NULL;
