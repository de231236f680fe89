//! Deterministic order lifecycles: a seeded stream of [`OrderEvent`]s in which every order
//! goes `OrderCreated -> OrderPaid -> OrderShipped`, or is cancelled after it was created
//! or after it was paid, and the events of many orders are interleaved.
//!
//! The generator keeps a fixed number of orders open at once. Each step picks one open
//! order at random and emits its next event; an order that reached a final state
//! (shipped or cancelled) is replaced by a new one. So the events of one order always come
//! in lifecycle order, while consecutive events mostly belong to different orders, as
//! they would in a shop with many customers.
//!
//! The same seed gives the same orders, ids, amounts and order of events; only
//! `occurred_at` (the wall clock) differs between runs.

use chrono::{SubsecRound, Utc};
use orderflow_schemas::{
    LineItem, OrderCancelled, OrderCreated, OrderEvent, OrderPaid, OrderPayload, OrderShipped,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

/// Share of orders that are shipped; the rest are cancelled (half before payment, half after).
const SHIPPED_SHARE: f64 = 0.8;
const CURRENCIES: [&str; 4] = ["EUR", "EUR", "USD", "GBP"];
const CARRIERS: [&str; 4] = ["DHL", "UPS", "DPD", "PostNL"];
const SALES_CHANNELS: [&str; 3] = ["web", "app", "store"];
const CANCEL_REASONS: [&str; 4] = [
    "customer request",
    "payment declined",
    "out of stock",
    "address not deliverable",
];

/// A random v4 UUID drawn from `rng`, so ids are reproducible for a seed.
pub fn uuid_from(rng: &mut impl Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}

/// The order id of the `sequence`-th order of a run with `seed`: `ord-<seed hex>-<sequence>`.
/// The seed is part of the id so runs with different seeds never share orders.
pub fn order_id(seed: u64, sequence: u64) -> String {
    format!("ord-{seed:x}-{sequence:07}")
}

/// Where an open order is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Not created yet: the next event is `OrderCreated`.
    New,
    /// Created, not paid.
    Created,
    /// Paid, not shipped.
    Paid,
}

/// How an order's lifecycle ends, drawn when the order opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Shipped,
    CancelledAfterCreated,
    CancelledAfterPaid,
}

#[derive(Debug, Clone)]
struct OpenOrder {
    order_id: String,
    stage: Stage,
    ending: Ending,
    total_cents: i64,
    sales_channel: &'static str,
}

/// Seeded generator of interleaved order lifecycles.
#[derive(Debug)]
pub struct LifecycleGenerator {
    rng: StdRng,
    seed: u64,
    producer: String,
    open: Vec<OpenOrder>,
    orders_opened: u64,
    orders_created: u64,
}

impl LifecycleGenerator {
    /// A generator with `orders_open` orders in progress at once (at least 1), seeded with
    /// `seed`; `producer` goes into every event's `producer` field.
    pub fn new(orders_open: usize, seed: u64, producer: impl Into<String>) -> Self {
        let mut generator = Self {
            rng: StdRng::seed_from_u64(seed),
            seed,
            producer: producer.into(),
            open: Vec::with_capacity(orders_open.max(1)),
            orders_opened: 0,
            orders_created: 0,
        };
        for _ in 0..orders_open.max(1) {
            let order = generator.open_order();
            generator.open.push(order);
        }
        generator
    }

    /// How many distinct orders have emitted their `OrderCreated` so far.
    pub fn orders_created(&self) -> u64 {
        self.orders_created
    }

    /// The next event: the next step of a randomly chosen open order.
    pub fn next_event(&mut self) -> OrderEvent {
        let slot = self.rng.random_range(0..self.open.len());
        let order = &self.open[slot];
        let (payload, next_stage) = match (order.stage, order.ending) {
            (Stage::New, _) => (self.created_payload_for(slot), Some(Stage::Created)),
            (Stage::Created, Ending::CancelledAfterCreated) => (self.cancelled(), None),
            (Stage::Created, _) => (self.paid(slot), Some(Stage::Paid)),
            (Stage::Paid, Ending::CancelledAfterPaid) => (self.cancelled(), None),
            (Stage::Paid, _) => (self.shipped(), None),
        };
        let order = &self.open[slot];
        let event = OrderEvent {
            event_id: uuid_from(&mut self.rng),
            order_id: order.order_id.clone(),
            occurred_at: Utc::now().trunc_subsecs(3),
            producer: self.producer.clone(),
            sales_channel: Some(order.sales_channel.to_string()),
            payload,
        };
        match next_stage {
            Some(stage) => self.open[slot].stage = stage,
            None => self.open[slot] = self.open_order(),
        }
        event
    }

    fn open_order(&mut self) -> OpenOrder {
        self.orders_opened += 1;
        let ending = if self.rng.random_bool(SHIPPED_SHARE) {
            Ending::Shipped
        } else if self.rng.random_bool(0.5) {
            Ending::CancelledAfterCreated
        } else {
            Ending::CancelledAfterPaid
        };
        OpenOrder {
            order_id: order_id(self.seed, self.orders_opened),
            stage: Stage::New,
            ending,
            total_cents: 0,
            sales_channel: SALES_CHANNELS[self.rng.random_range(0..SALES_CHANNELS.len())],
        }
    }

    fn created_payload_for(&mut self, slot: usize) -> OrderPayload {
        let created = random_order_created(&mut self.rng);
        self.orders_created += 1;
        self.open[slot].total_cents = created.total_cents;
        OrderPayload::Created(created)
    }

    fn paid(&mut self, slot: usize) -> OrderPayload {
        OrderPayload::Paid(OrderPaid {
            payment_id: format!("pay-{:016x}", self.rng.random::<u64>()),
            amount_cents: self.open[slot].total_cents,
        })
    }

    fn shipped(&mut self) -> OrderPayload {
        OrderPayload::Shipped(OrderShipped {
            carrier: CARRIERS[self.rng.random_range(0..CARRIERS.len())].to_string(),
            tracking_number: format!("TRK{:012}", self.rng.random_range(0..1_000_000_000_000u64)),
        })
    }

    fn cancelled(&mut self) -> OrderPayload {
        let reason = CANCEL_REASONS[self.rng.random_range(0..CANCEL_REASONS.len())];
        OrderPayload::Cancelled(OrderCancelled {
            reason: reason.to_string(),
        })
    }
}

/// A valid `OrderCreated` (1 to 4 lines, total = sum of lines) drawn from `rng`.
pub fn random_order_created(rng: &mut impl Rng) -> OrderCreated {
    let lines = rng.random_range(1..=4);
    let items: Vec<LineItem> = (0..lines)
        .map(|_| LineItem {
            sku: format!("SKU-{:05}", rng.random_range(0..50_000)),
            quantity: rng.random_range(1..=5),
            unit_price_cents: rng.random_range(199..=19_999),
        })
        .collect();
    let total_cents = items
        .iter()
        .map(|item| i64::from(item.quantity) * item.unit_price_cents)
        .sum();
    OrderCreated {
        customer_id: format!("cus-{:06}", rng.random_range(0..200_000)),
        items,
        currency: CURRENCIES[rng.random_range(0..CURRENCIES.len())].to_string(),
        total_cents,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn events(count: usize, open: usize, seed: u64) -> Vec<OrderEvent> {
        let mut generator = LifecycleGenerator::new(open, seed, "test");
        (0..count).map(|_| generator.next_event()).collect()
    }

    /// Whether `next` may follow `previous` (None = nothing seen yet) within one order.
    fn allowed(previous: Option<&str>, next: &str) -> bool {
        matches!(
            (previous, next),
            (None, "OrderCreated")
                | (Some("OrderCreated"), "OrderPaid" | "OrderCancelled")
                | (Some("OrderPaid"), "OrderShipped" | "OrderCancelled")
        )
    }

    #[test]
    fn every_order_follows_its_lifecycle_in_order() {
        let mut last: HashMap<String, &str> = HashMap::new();
        let mut paid_matches_total: HashMap<String, i64> = HashMap::new();
        for event in events(5_000, 50, 42) {
            let previous = last.get(&event.order_id).copied();
            assert!(
                allowed(previous, event.event_type()),
                "{} after {previous:?} for {}",
                event.event_type(),
                event.order_id
            );
            match &event.payload {
                OrderPayload::Created(created) => {
                    let sum: i64 = created
                        .items
                        .iter()
                        .map(|i| i64::from(i.quantity) * i.unit_price_cents)
                        .sum();
                    assert_eq!(created.total_cents, sum);
                    paid_matches_total.insert(event.order_id.clone(), sum);
                }
                OrderPayload::Paid(paid) => {
                    assert_eq!(paid.amount_cents, paid_matches_total[&event.order_id]);
                }
                _ => {}
            }
            last.insert(event.order_id.clone(), event.event_type());
        }
    }

    #[test]
    fn produces_every_ending_and_interleaves_orders() {
        let all = events(3_000, 40, 7);
        let mut by_type: HashMap<&str, usize> = HashMap::new();
        for event in &all {
            *by_type.entry(event.event_type()).or_default() += 1;
        }
        for kind in [
            "OrderCreated",
            "OrderPaid",
            "OrderShipped",
            "OrderCancelled",
        ] {
            assert!(
                by_type.get(kind).copied().unwrap_or(0) > 50,
                "{kind}: {by_type:?}"
            );
        }
        let switches = all
            .windows(2)
            .filter(|w| w[0].order_id != w[1].order_id)
            .count();
        assert!(
            switches > all.len() * 9 / 10,
            "orders should interleave: {switches}"
        );
        // Cancelled both before and after payment.
        let mut previous: HashMap<&str, &str> = HashMap::new();
        let mut cancelled_after = std::collections::HashSet::new();
        for event in &all {
            if event.event_type() == "OrderCancelled" {
                cancelled_after.insert(previous[event.order_id.as_str()]);
            }
            previous.insert(&event.order_id, event.event_type());
        }
        assert!(cancelled_after.contains("OrderCreated") && cancelled_after.contains("OrderPaid"));
    }

    #[test]
    fn same_seed_same_events_other_seed_other_events() {
        let strip = |events: Vec<OrderEvent>| -> Vec<(Uuid, String, OrderPayload)> {
            events
                .into_iter()
                .map(|e| (e.event_id, e.order_id, e.payload))
                .collect()
        };
        let a = strip(events(500, 20, 99));
        let b = strip(events(500, 20, 99));
        let c = strip(events(500, 20, 100));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let ids: std::collections::HashSet<_> = a.iter().map(|(id, _, _)| *id).collect();
        assert_eq!(ids.len(), a.len(), "event ids are unique");
    }

    #[test]
    fn a_single_open_order_runs_lifecycles_back_to_back() {
        let mut generator = LifecycleGenerator::new(1, 3, "test");
        let first = generator.next_event();
        assert_eq!(first.event_type(), "OrderCreated");
        assert_eq!(first.order_id, order_id(3, 1));
        let mut orders = vec![first.order_id.clone()];
        for _ in 0..20 {
            let event = generator.next_event();
            if orders.last() != Some(&event.order_id) {
                assert_eq!(event.event_type(), "OrderCreated");
                orders.push(event.order_id.clone());
            }
        }
        assert!(
            orders.len() >= 6,
            "20 events finish several orders: {orders:?}"
        );
        assert_eq!(generator.orders_created() as usize, orders.len());
    }
}
