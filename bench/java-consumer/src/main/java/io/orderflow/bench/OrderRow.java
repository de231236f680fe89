package io.orderflow.bench;

/**
 * One row of the orders table and the lifecycle rules (created -> paid -> shipped |
 * cancelled), the same as consumers/src/projection.rs.
 */
record OrderRow(String orderId, String status, String customerId, String currency, long totalCents,
                int itemCount, int eventsApplied, String lastEventId, long lastEventAtMillis) {

    /** The row after {@code e}, or null when the event makes no sense for the state (dead-lettered). */
    static OrderRow apply(OrderRow current, OrderEventCodec.Event e) {
        String now = current == null ? null : current.status();
        String next = switch (e.kind()) {
            case CREATED -> now == null ? "created" : null;
            case PAID -> "created".equals(now) ? "paid" : null;
            case SHIPPED -> "paid".equals(now) ? "shipped" : null;
            case CANCELLED -> "created".equals(now) || "paid".equals(now) ? "cancelled" : null;
        };
        if (next == null) return null;
        if (e.kind() == OrderEventCodec.Kind.PAID && e.amountCents() != current.totalCents()) return null;
        if (current == null) {
            return new OrderRow(e.orderId(), next, e.customerId(), e.currency(), e.totalCents(), e.itemCount(), 1,
                e.eventId(), e.occurredAtMillis());
        }
        return new OrderRow(current.orderId(), next, current.customerId(), current.currency(), current.totalCents(),
            current.itemCount(), current.eventsApplied() + 1, e.eventId(), e.occurredAtMillis());
    }
}
