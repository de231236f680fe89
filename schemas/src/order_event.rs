//! The Rust types of an order event, mirroring `avro/order_event.v2.avsc`.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Every value [`OrderEvent::event_type`] can return, for pre-registering metric label values.
pub const EVENT_TYPES: [&str; 4] = [
    "OrderCreated",
    "OrderPaid",
    "OrderShipped",
    "OrderCancelled",
];

/// One event in the life of an order (the Avro record `io.orderflow.orders.OrderEvent`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    /// Unique id of this event; consumers deduplicate on it.
    pub event_id: Uuid,
    /// The order this event belongs to; also the Kafka record key.
    pub order_id: String,
    /// When the event happened. Avro keeps milliseconds: finer precision is cut on encoding.
    pub occurred_at: DateTime<Utc>,
    /// Name of the service instance that produced the event.
    pub producer: String,
    /// Where the order was placed (web, app, store, ...), when known. Added in schema v2: events
    /// written with v1 read back as `None`.
    pub sales_channel: Option<String>,
    /// What happened.
    pub payload: OrderPayload,
}

/// What happened to the order: the union in the `payload` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum OrderPayload {
    /// The order was placed.
    Created(OrderCreated),
    /// The order was paid.
    Paid(OrderPaid),
    /// The order left the warehouse.
    Shipped(OrderShipped),
    /// The order was cancelled.
    Cancelled(OrderCancelled),
}

/// Payload of an `OrderCreated` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    /// The customer who placed the order.
    pub customer_id: String,
    /// What was ordered; at least one line.
    pub items: Vec<LineItem>,
    /// ISO 4217 currency code, three upper-case letters (e.g. `EUR`).
    pub currency: String,
    /// Order total in minor units: the sum of `quantity * unit_price_cents` over `items`.
    pub total_cents: i64,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    /// Stock keeping unit of the product.
    pub sku: String,
    /// How many units; greater than zero.
    pub quantity: i32,
    /// Price of one unit in minor units; zero or more.
    pub unit_price_cents: i64,
}

/// Payload of an `OrderPaid` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaid {
    /// Id of the payment at the payment provider.
    pub payment_id: String,
    /// Amount paid in minor units; greater than zero.
    pub amount_cents: i64,
}

/// Payload of an `OrderShipped` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderShipped {
    /// Carrier that took the parcel.
    pub carrier: String,
    /// The carrier's tracking number.
    pub tracking_number: String,
}

/// Payload of an `OrderCancelled` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    /// Why the order was cancelled.
    pub reason: String,
}

impl OrderEvent {
    /// A new event with a random `event_id`, `occurred_at` = now (whole milliseconds, so it
    /// survives the Avro round trip unchanged) and no sales channel.
    pub fn new(
        order_id: impl Into<String>,
        producer: impl Into<String>,
        payload: OrderPayload,
    ) -> Self {
        Self {
            event_id: Uuid::new_v4(),
            order_id: order_id.into(),
            occurred_at: Utc::now().trunc_subsecs(3),
            producer: producer.into(),
            sales_channel: None,
            payload,
        }
    }

    /// The event type, the name of the payload's Avro record (`"OrderCreated"`, `"OrderPaid"`,
    /// `"OrderShipped"`, `"OrderCancelled"`): the `event-type` header and a metrics label.
    pub fn event_type(&self) -> &'static str {
        self.payload.event_type()
    }
}

impl OrderPayload {
    /// The name of this payload's Avro record, one of [`EVENT_TYPES`].
    pub fn event_type(&self) -> &'static str {
        match self {
            OrderPayload::Created(_) => EVENT_TYPES[0],
            OrderPayload::Paid(_) => EVENT_TYPES[1],
            OrderPayload::Shipped(_) => EVENT_TYPES[2],
            OrderPayload::Cancelled(_) => EVENT_TYPES[3],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_names_the_payload_record() {
        let cancelled = OrderPayload::Cancelled(OrderCancelled { reason: "r".into() });
        let paid = OrderPayload::Paid(OrderPaid {
            payment_id: "p".into(),
            amount_cents: 1,
        });
        assert_eq!(
            OrderEvent::new("o", "t", cancelled).event_type(),
            "OrderCancelled"
        );
        assert_eq!(OrderEvent::new("o", "t", paid).event_type(), "OrderPaid");
    }

    #[test]
    fn new_event_time_has_whole_milliseconds() {
        let e = OrderEvent::new(
            "o",
            "t",
            OrderPayload::Cancelled(OrderCancelled { reason: "r".into() }),
        );
        assert_eq!(e.occurred_at.timestamp_subsec_nanos() % 1_000_000, 0);
        assert!(!e.event_id.is_nil());
    }
}
