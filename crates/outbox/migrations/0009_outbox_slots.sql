-- The relay publishes by slot: every row belongs to one of 64 slots, derived from its
-- order id, and each slot is published by one relay at a time (the owner of a
-- session-level advisory lock, with a transactional producer of its own; see the
-- relay's module documentation). An order's rows all share a slot, so one owner reads
-- them in id order and may have several in flight at once.
--
-- The slot is Kafka's murmur2 of the order id's UTF-8 bytes, made positive, modulo 64:
-- the same hash the Java client and our producer use to pick a partition. It is a
-- generated column, so every writer (an older binary during a rolling upgrade, an
-- operator's INSERT) gets it right without knowing about it.
CREATE FUNCTION order_service.outbox_slot(order_id text) RETURNS smallint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    -- 32-bit arithmetic in bigint: a product of two values below 2^32 and 2^31 fits,
    -- and masking keeps the low 32 bits, as Java's int overflow does.
    data    bytea  := convert_to(order_id, 'UTF8');
    len     int    := length(data);
    m       bigint := 1540483477;  -- 0x5bd1e995
    mask    bigint := 4294967295;
    h       bigint := (2538058380 # len) & 4294967295;  -- seed 0x9747b28c
    k       bigint;
    i       int    := 0;
    tail    int    := len % 4;
    tail_at int    := len - len % 4;
BEGIN
    WHILE i + 4 <= len LOOP
        k := get_byte(data, i)::bigint
             | (get_byte(data, i + 1)::bigint << 8)
             | (get_byte(data, i + 2)::bigint << 16)
             | (get_byte(data, i + 3)::bigint << 24);
        k := (k * m) & mask;
        k := k # (k >> 24);
        k := (k * m) & mask;
        h := (h * m) & mask;
        h := h # k;
        i := i + 4;
    END LOOP;
    IF tail = 3 THEN
        h := h # (get_byte(data, tail_at + 2)::bigint << 16);
    END IF;
    IF tail >= 2 THEN
        h := h # (get_byte(data, tail_at + 1)::bigint << 8);
    END IF;
    IF tail >= 1 THEN
        h := h # get_byte(data, tail_at)::bigint;
        h := (h * m) & mask;
    END IF;
    h := h # (h >> 13);
    h := (h * m) & mask;
    h := h # (h >> 15);
    RETURN ((h & 2147483647) % 64)::smallint;
END
$$;

ALTER TABLE order_service.outbox
    ADD COLUMN slot smallint NOT NULL GENERATED ALWAYS AS (order_service.outbox_slot(order_id)) STORED;

-- The owner's read: its slot's unsent rows in id order. Partial, so the sent history
-- costs nothing.
CREATE INDEX outbox_unsent_by_slot ON order_service.outbox (slot, id) WHERE sent_at IS NULL;
