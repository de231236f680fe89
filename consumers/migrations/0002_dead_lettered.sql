-- The dead-letter ledger: one row per source record a consumer group wrote to its
-- dead-letter topic. The row is inserted in a transaction that commits only after
-- the DLQ write was acked, so a record redelivered to another owner (its offset
-- was not committed yet) is recognised and not dead-lettered twice.
CREATE TABLE dead_lettered (
    consumer_group   TEXT        NOT NULL,
    topic            TEXT        NOT NULL,
    "partition"      INTEGER     NOT NULL,
    "offset"         BIGINT      NOT NULL,
    dead_lettered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, "partition", "offset")
);
