package io.orderflow.bench;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Decodes order events in the Confluent wire format (magic 0, 4-byte schema id, Avro
 * body) written with schemas/avro/order_event.v1 or v2. The writer schema is fetched
 * from the registry once per id and must be one of those two layouts; the body is
 * read field by field, as the generated reader of a code-first team would.
 */
final class OrderEventCodec {
    /** The payload branches, in union order. */
    enum Kind { CREATED, PAID, SHIPPED, CANCELLED }

    /** A decoded event: what the projection needs plus the fields validation looks at. */
    record Event(String eventId, String orderId, long occurredAtMillis, String producer,
                 Kind kind, String customerId, String currency, long totalCents, long itemsSum,
                 int itemCount, int itemCountBad, String paymentId, long amountCents,
                 String carrier, String trackingNumber, String reason, String salesChannel) {}

    /** A record that cannot be decoded or breaks the contract (the engine dead-letters it). */
    static final class PoisonException extends Exception {
        PoisonException(String message) { super(message); }
    }

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final String registryUrl;
    /** Schema id -> true when the layout has v2's trailing sales_channel. */
    private final Map<Integer, Boolean> layouts = new ConcurrentHashMap<>();

    OrderEventCodec(String registryUrl) {
        this.registryUrl = registryUrl.endsWith("/") ? registryUrl.substring(0, registryUrl.length() - 1) : registryUrl;
    }

    Event decode(byte[] key, byte[] value) throws PoisonException, IOException, InterruptedException {
        if (value == null) throw new PoisonException("record has no value (tombstone)");
        if (value.length < 5 || value[0] != 0) throw new PoisonException("not the Confluent wire format");
        int id = ((value[1] & 0xff) << 24) | ((value[2] & 0xff) << 16) | ((value[3] & 0xff) << 8) | (value[4] & 0xff);
        Boolean v2 = layouts.get(id);
        if (v2 == null) {
            v2 = fetchLayout(id);
            layouts.put(id, v2);
        }
        Event event = new Reader(value, 5).event(v2);
        validate(event);
        if (key == null || key.length == 0) throw new PoisonException("record has no key");
        if (!new String(key, StandardCharsets.UTF_8).equals(event.orderId())) {
            throw new PoisonException("record key is not the event's order_id");
        }
        return event;
    }

    private boolean fetchLayout(int id) throws IOException, InterruptedException, PoisonException {
        HttpRequest request = HttpRequest.newBuilder(URI.create(registryUrl + "/schemas/ids/" + id))
            .timeout(Duration.ofSeconds(10)).GET().build();
        HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() == 404) throw new PoisonException("unknown schema id " + id);
        if (response.statusCode() != 200) throw new IOException("registry answered " + response.statusCode());
        String schema = response.body();
        // Only our own two layouts are known to this reader; anything else fails loudly
        // rather than being misread.
        if (!schema.contains("OrderEvent") || !schema.contains("OrderCancelled")) {
            throw new PoisonException("schema id " + id + " is not an order event schema");
        }
        return schema.contains("sales_channel");
    }

    /** The same rules as schemas/src/validation.rs. */
    private static void validate(Event e) throws PoisonException {
        if (e.eventId().equals("00000000-0000-0000-0000-000000000000")) throw new PoisonException("nil event_id");
        requireText("order_id", e.orderId());
        requireText("producer", e.producer());
        if (e.salesChannel() != null) requireText("sales_channel", e.salesChannel());
        switch (e.kind()) {
            case CREATED -> {
                requireText("customer_id", e.customerId());
                String c = e.currency();
                if (c.length() != 3 || !c.chars().allMatch(ch -> ch >= 'A' && ch <= 'Z')) {
                    throw new PoisonException("currency must be three upper-case letters");
                }
                if (e.itemCount() == 0 && e.itemCountBad() == 0) throw new PoisonException("no line items");
                if (e.itemCountBad() != 0) throw new PoisonException("bad line item");
                if (e.itemsSum() != e.totalCents()) throw new PoisonException("total mismatch");
            }
            case PAID -> {
                requireText("payment_id", e.paymentId());
                if (e.amountCents() <= 0) throw new PoisonException("amount_cents must be > 0");
            }
            case SHIPPED -> {
                requireText("carrier", e.carrier());
                requireText("tracking_number", e.trackingNumber());
            }
            case CANCELLED -> requireText("reason", e.reason());
        }
    }

    private static void requireText(String field, String value) throws PoisonException {
        if (value.isBlank()) throw new PoisonException(field + " must not be empty");
    }

    /** Avro binary decoding of the order event layout. */
    private static final class Reader {
        private final byte[] buf;
        private int pos;

        Reader(byte[] buf, int pos) { this.buf = buf; this.pos = pos; }

        Event event(boolean v2) throws PoisonException {
            try {
                String eventId = string();
                String orderId = string();
                long occurredAt = varLong();
                String producer = string();
                long branch = varLong();
                String customerId = null, currency = null, paymentId = null, carrier = null, tracking = null, reason = null;
                long total = 0, sum = 0, amount = 0;
                int count = 0, bad = 0, items = 0;
                Kind kind;
                switch ((int) branch) {
                    case 0 -> {
                        kind = Kind.CREATED;
                        customerId = string();
                        for (long block = varLong(); block != 0; block = varLong()) {
                            if (block < 0) { block = -block; varLong(); }
                            for (long i = 0; i < block; i++) {
                                String sku = string();
                                int quantity = (int) varLong();
                                long price = varLong();
                                items++;
                                if (sku.isBlank() || quantity <= 0 || price < 0) bad++;
                                count = saturatingAdd(count, quantity);
                                sum = Math.addExact(sum, Math.multiplyExact(price, (long) quantity));
                            }
                        }
                        currency = string();
                        total = varLong();
                        if (items == 0) count = 0;
                    }
                    case 1 -> { kind = Kind.PAID; paymentId = string(); amount = varLong(); }
                    case 2 -> { kind = Kind.SHIPPED; carrier = string(); tracking = string(); }
                    case 3 -> { kind = Kind.CANCELLED; reason = string(); }
                    default -> throw new PoisonException("unknown payload branch " + branch);
                }
                String channel = null;
                if (v2) {
                    long c = varLong();
                    if (c == 1) channel = string();
                    else if (c != 0) throw new PoisonException("bad sales_channel branch");
                }
                if (items == 0 && kind == Kind.CREATED) count = 0;
                return new Event(eventId, orderId, occurredAt, producer, kind, customerId, currency, total, sum,
                    items == 0 ? 0 : count, bad, paymentId, amount, carrier, tracking, reason, channel);
            } catch (ArithmeticException e) {
                throw new PoisonException("line items overflow a 64-bit cent amount");
            } catch (ArrayIndexOutOfBoundsException | NegativeArraySizeException e) {
                throw new PoisonException("truncated Avro body");
            }
        }

        private static int saturatingAdd(int a, int b) {
            long r = (long) a + b;
            return r > Integer.MAX_VALUE ? Integer.MAX_VALUE : r < Integer.MIN_VALUE ? Integer.MIN_VALUE : (int) r;
        }

        private long varLong() {
            long raw = 0;
            int shift = 0;
            while (true) {
                byte b = buf[pos++];
                raw |= (long) (b & 0x7f) << shift;
                if ((b & 0x80) == 0) break;
                shift += 7;
            }
            return (raw >>> 1) ^ -(raw & 1);
        }

        private String string() {
            int len = (int) varLong();
            String s = new String(buf, pos, len, StandardCharsets.UTF_8);
            pos += len;
            return s;
        }
    }
}
