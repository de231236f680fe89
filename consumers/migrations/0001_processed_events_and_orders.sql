-- Dedup table: one row per event a consumer group has applied. Written in the
-- same transaction as the effect, so a redelivered event is recognised.
CREATE TABLE processed_events (
    consumer_group TEXT        NOT NULL,
    event_id       TEXT        NOT NULL,
    topic          TEXT        NOT NULL,
    "partition"    INTEGER     NOT NULL,
    "offset"       BIGINT      NOT NULL,
    processed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, event_id)
);

-- Retention cleanup deletes by age.
CREATE INDEX processed_events_by_age ON processed_events (processed_at);

-- The order projection.
CREATE TABLE orders (
    order_id       TEXT        PRIMARY KEY,
    status         TEXT        NOT NULL CHECK (status IN ('created', 'paid', 'shipped', 'cancelled')),
    customer_id    TEXT        NOT NULL,
    currency       TEXT        NOT NULL,
    total_cents    BIGINT      NOT NULL,
    item_count     INTEGER     NOT NULL,
    events_applied INTEGER     NOT NULL,
    last_event_id  TEXT        NOT NULL,
    last_event_at  TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
