package io.orderflow.bench;

import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.sql.Array;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * A plain exactly-once consumer the way a capable Java team writes one: poll up to
 * 5,000 records, apply them in one transaction (dedup insert with ON CONFLICT DO NOTHING
 * RETURNING, then the new events folded per order: one locking read, one upsert),
 * commit the transaction, then commitSync the offsets. Same tables and rules as
 * order-consumer (consumers/migrations, consumers/sql); events that break the rules
 * are skipped (the engine dead-letters them) and leave no dedup row, as there.
 *
 * <p>Usage: BaselineConsumer --topic T --group G --database-url postgres://... 
 * --registry-url URL --brokers B --expect N [--idle-ms 10000] [--max-poll-records 5000]
 * [--kafka-option key=value ...]. Stops after N records were done (or after idle-ms
 * without records once started) and prints one JSON line.
 */
public final class BaselineConsumer {
    private static final String INSERT_PROCESSED = """
        INSERT INTO processed_events (consumer_group, order_id, event_id, topic, "partition", "offset")
        SELECT ?, e.order_id, e.event_id, ?, e.part, e.off
        FROM UNNEST(?::text[], ?::text[], ?::int[], ?::bigint[]) AS e (order_id, event_id, part, off)
        ON CONFLICT (consumer_group, order_id, event_id) DO NOTHING
        RETURNING event_id""";
    private static final String LOCK_ORDERS = """
        SELECT order_id, status, customer_id, currency, total_cents, item_count, events_applied,
               last_event_id, (extract(epoch FROM last_event_at) * 1000)::bigint AS last_ms
        FROM orders WHERE order_id = ANY(?::text[]) ORDER BY order_id FOR UPDATE""";
    private static final String UPSERT_ORDERS = """
        INSERT INTO orders (order_id, status, customer_id, currency, total_cents, item_count,
                            events_applied, last_event_id, last_event_at, updated_at)
        SELECT o.order_id, o.status, o.customer_id, o.currency, o.total_cents, o.item_count,
               o.events_applied, o.last_event_id,
               timestamptz 'epoch' + o.last_ms * interval '1 millisecond', now()
        FROM UNNEST(?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::int[], ?::int[],
                    ?::text[], ?::bigint[])
             AS o (order_id, status, customer_id, currency, total_cents, item_count,
                   events_applied, last_event_id, last_ms)
        ON CONFLICT (order_id) DO UPDATE SET
            status = EXCLUDED.status, events_applied = EXCLUDED.events_applied,
            last_event_id = EXCLUDED.last_event_id, last_event_at = EXCLUDED.last_event_at,
            updated_at = EXCLUDED.updated_at""";
    private static final String FORGET_PROCESSED =
        """
        DELETE FROM processed_events p USING UNNEST(?::text[], ?::text[]) AS e (order_id, event_id)
        WHERE p.consumer_group = ? AND p.order_id = e.order_id AND p.event_id = e.event_id""";

    private final Connection db;
    private final String group;
    private final String topic;
    private final OrderEventCodec codec;
    long applied;
    long duplicates;
    long skipped;

    private BaselineConsumer(Connection db, String group, String topic, OrderEventCodec codec) {
        this.db = db;
        this.group = group;
        this.topic = topic;
        this.codec = codec;
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = new HashMap<>();
        List<String> kafkaOptions = new ArrayList<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            if (argv[i].equals("--kafka-option")) kafkaOptions.add(argv[i + 1]);
            else args.put(argv[i].substring(2), argv[i + 1]);
        }
        String topic = require(args, "topic");
        String group = require(args, "group");
        long expect = Long.parseLong(args.getOrDefault("expect", "0"));
        long idleMs = Long.parseLong(args.getOrDefault("idle-ms", "10000"));
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args.getOrDefault("brokers", "127.0.0.1:9092"));
        props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, args.getOrDefault("max-poll-records", "5000"));
        for (String option : kafkaOptions) {
            String[] kv = option.split("=", 2);
            props.put(kv[0], kv[1]);
        }
        try (Connection db = connect(require(args, "database-url"));
             KafkaConsumer<byte[], byte[]> consumer =
                 new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            db.setAutoCommit(false);
            BaselineConsumer worker =
                new BaselineConsumer(db, group, topic, new OrderEventCodec(require(args, "registry-url")));
            consumer.subscribe(List.of(topic));
            long first = 0;
            long last = 0;
            long done = 0;
            int batches = 0;
            // A member of a group whose partitions hold nothing for it (the others were
            // done first) is idle from its assignment on, not from a first record.
            long assigned = 0;
            while (expect == 0 || done < expect) {
                ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(500));
                if (records.isEmpty()) {
                    if (assigned == 0 && !consumer.assignment().isEmpty()) assigned = System.nanoTime();
                    long since = first != 0 ? last : assigned;
                    if (since != 0 && System.nanoTime() - since > idleMs * 1_000_000L) break;
                    continue;
                }
                if (first == 0) first = System.nanoTime();
                worker.applyBatch(records);
                consumer.commitSync();
                done += records.count();
                batches++;
                last = System.nanoTime();
            }
            double secs = Math.max((last - first) / 1e9, 1e-9);
            System.out.printf("{\"mode\":\"java\",\"records\":%d,\"processed\":%d,\"duplicates\":%d,"
                    + "\"skipped\":%d,\"batches\":%d,\"active_secs\":%.3f,\"records_per_sec\":%.0f}%n",
                done, worker.applied, worker.duplicates, worker.skipped, batches, secs, done / secs);
        }
    }

    /** One poll batch, one transaction; retried as a whole on a serialization failure or deadlock. */
    private void applyBatch(ConsumerRecords<byte[], byte[]> records) throws Exception {
        List<OrderEventCodec.Event> events = new ArrayList<>(records.count());
        List<Integer> partitions = new ArrayList<>(records.count());
        List<Long> offsets = new ArrayList<>(records.count());
        // Records come partition by partition in offset order: an order's events stay in order.
        for (ConsumerRecord<byte[], byte[]> record : records) {
            try {
                events.add(codec.decode(record.key(), record.value()));
                partitions.add(record.partition());
                offsets.add(record.offset());
            } catch (OrderEventCodec.PoisonException e) {
                skipped++;
            }
        }
        for (int attempt = 1; ; attempt++) {
            try {
                applyInTransaction(events, partitions, offsets);
                db.commit();
                return;
            } catch (SQLException e) {
                db.rollback();
                String state = e.getSQLState();
                boolean retryable = "40001".equals(state) || "40P01".equals(state);
                if (!retryable || attempt >= 5) throw e;
            }
        }
    }

    private void applyInTransaction(List<OrderEventCodec.Event> events, List<Integer> partitions, List<Long> offsets)
        throws SQLException {
        int n = events.size();
        String[] ids = new String[n];
        String[] orders = new String[n];
        Integer[] parts = partitions.toArray(new Integer[0]);
        Long[] offs = offsets.toArray(new Long[0]);
        for (int i = 0; i < n; i++) {
            ids[i] = events.get(i).eventId();
            orders[i] = events.get(i).orderId();
        }
        Set<String> fresh = new HashSet<>();
        try (PreparedStatement st = db.prepareStatement(INSERT_PROCESSED)) {
            st.setString(1, group);
            st.setString(2, topic);
            st.setArray(3, db.createArrayOf("text", orders));
            st.setArray(4, db.createArrayOf("text", ids));
            st.setArray(5, db.createArrayOf("int4", parts));
            st.setArray(6, db.createArrayOf("int8", offs));
            try (ResultSet rs = st.executeQuery()) {
                while (rs.next()) fresh.add(rs.getString(1));
            }
        }
        // The same event twice in one batch inserts one row: only its first copy is new.
        List<OrderEventCodec.Event> newEvents = new ArrayList<>(fresh.size());
        for (OrderEventCodec.Event e : events) {
            if (fresh.remove(e.eventId())) newEvents.add(e);
        }
        int batchDuplicates = n - newEvents.size();
        Set<String> orderIds = new HashSet<>();
        for (OrderEventCodec.Event e : newEvents) orderIds.add(e.orderId());
        Map<String, OrderRow> rows = lockOrders(orderIds);
        Map<String, OrderRow> changed = new LinkedHashMap<>();
        List<String> invalid = new ArrayList<>();
        List<String> invalidOrders = new ArrayList<>();
        for (OrderEventCodec.Event e : newEvents) {
            OrderRow next = OrderRow.apply(rows.get(e.orderId()), e);
            if (next == null) {
                invalid.add(e.eventId());
                invalidOrders.add(e.orderId());
                continue;
            }
            rows.put(e.orderId(), next);
            changed.put(e.orderId(), next);
        }
        if (!invalid.isEmpty()) {
            try (PreparedStatement st = db.prepareStatement(FORGET_PROCESSED)) {
                st.setArray(1, db.createArrayOf("text", invalidOrders.toArray()));
                st.setArray(2, db.createArrayOf("text", invalid.toArray()));
                st.setString(3, group);
                st.executeUpdate();
            }
        }
        upsertOrders(changed.values());
        applied += newEvents.size() - invalid.size();
        duplicates += batchDuplicates;
        skipped += invalid.size();
    }

    private Map<String, OrderRow> lockOrders(Set<String> orderIds) throws SQLException {
        Map<String, OrderRow> rows = new HashMap<>();
        if (orderIds.isEmpty()) return rows;
        try (PreparedStatement st = db.prepareStatement(LOCK_ORDERS)) {
            st.setArray(1, db.createArrayOf("text", orderIds.toArray()));
            try (ResultSet rs = st.executeQuery()) {
                while (rs.next()) {
                    OrderRow row = new OrderRow(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4),
                        rs.getLong(5), rs.getInt(6), rs.getInt(7), rs.getString(8), rs.getLong(9));
                    rows.put(row.orderId(), row);
                }
            }
        }
        return rows;
    }

    private void upsertOrders(java.util.Collection<OrderRow> rows) throws SQLException {
        if (rows.isEmpty()) return;
        int n = rows.size();
        String[] id = new String[n], status = new String[n], customer = new String[n], currency = new String[n],
            lastId = new String[n];
        Long[] total = new Long[n], lastMs = new Long[n];
        Integer[] items = new Integer[n], applied = new Integer[n];
        int i = 0;
        for (OrderRow r : rows) {
            id[i] = r.orderId();
            status[i] = r.status();
            customer[i] = r.customerId();
            currency[i] = r.currency();
            total[i] = r.totalCents();
            items[i] = r.itemCount();
            applied[i] = r.eventsApplied();
            lastId[i] = r.lastEventId();
            lastMs[i] = r.lastEventAtMillis();
            i++;
        }
        try (PreparedStatement st = db.prepareStatement(UPSERT_ORDERS)) {
            Array[] arrays = {
                db.createArrayOf("text", id), db.createArrayOf("text", status), db.createArrayOf("text", customer),
                db.createArrayOf("text", currency), db.createArrayOf("int8", total), db.createArrayOf("int4", items),
                db.createArrayOf("int4", applied), db.createArrayOf("text", lastId), db.createArrayOf("int8", lastMs)};
            for (int k = 0; k < arrays.length; k++) st.setArray(k + 1, arrays[k]);
            st.executeUpdate();
        }
    }

    private static String require(Map<String, String> args, String name) {
        String value = args.get(name);
        if (value == null) throw new IllegalArgumentException("missing --" + name);
        return value;
    }

    /** postgres://user:pass@host:port/db?sslmode=... -> a JDBC connection. */
    private static Connection connect(String url) throws SQLException {
        URI uri = URI.create(url);
        Properties props = new Properties();
        String userInfo = uri.getRawUserInfo();
        if (userInfo != null) {
            String[] parts = userInfo.split(":", 2);
            props.setProperty("user", URLDecoder.decode(parts[0], StandardCharsets.UTF_8));
            if (parts.length == 2) props.setProperty("password", URLDecoder.decode(parts[1], StandardCharsets.UTF_8));
        }
        int port = uri.getPort() < 0 ? 5432 : uri.getPort();
        String jdbc = "jdbc:postgresql://" + uri.getHost() + ":" + port + uri.getRawPath();
        if (uri.getRawQuery() != null) jdbc += "?" + uri.getRawQuery();
        return DriverManager.getConnection(jdbc, props);
    }
}
