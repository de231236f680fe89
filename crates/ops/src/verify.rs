//! The exactly-once ledger behind `orderflow verify`: given what the source topic, the
//! dead-letter topic, the consumer's database and the group's committed offsets hold,
//! it counts events and lists every broken promise. It repeats none of the consumer's
//! decisions: a record is poison when the schema types cannot decode or validate it,
//! and everything else is judged by what ended up where.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

/// A record position in the source topic.
pub type Position = (i32, i64);

/// What one source record turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRecord {
    /// Decodes and validates: an event of `order_id`.
    Event {
        /// Its event id (the dedup key).
        event_id: String,
        /// Its order.
        order_id: String,
        /// Its payload's record name (`OrderCreated`, `OrderPaid`, ...).
        event_type: String,
    },
    /// Cannot be applied (undecodable, unknown schema, invalid); `why` says which.
    Poison {
        /// The decoding or validation error.
        why: String,
    },
}

/// A dead-letter record, reduced to where it came from and whether it says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The `dlq-source-partition` / `dlq-source-offset` headers (`None` when missing).
    pub source: Option<Position>,
    /// The `dlq-error-category` header.
    pub category: Option<String>,
    /// The `dlq-error-message` header.
    pub message: Option<String>,
}

/// A row of `processed_events` for the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedRow {
    /// Event id.
    pub event_id: String,
}

/// A state change the order API answered with a 2xx, as the HTTP workload logged it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Acknowledged {
    /// The order.
    pub order_id: String,
    /// The event id the answer named.
    pub event_id: String,
    /// The change's event type (`OrderCreated`, `OrderPaid`, ...).
    pub event_type: String,
}

/// Everything the verifier read.
#[derive(Debug, Default)]
pub struct Observed {
    /// Every source record, by position.
    pub source: BTreeMap<Position, SourceRecord>,
    /// Every dead-letter record whose source topic is the verified topic.
    pub dead_letters: Vec<DeadLetter>,
    /// The group's `processed_events` rows.
    pub applied: Vec<AppliedRow>,
    /// `orders.events_applied` by order id.
    pub projection: HashMap<String, i64>,
    /// Per source partition: (committed offset, log end offset); `None` = nothing committed.
    pub offsets: BTreeMap<i32, (Option<i64>, i64)>,
    /// The order API's acknowledged changes (empty without an HTTP workload).
    pub acknowledged: Vec<Acknowledged>,
}

/// The figures printed as JSON.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Valid event records in the source topic (duplicates included).
    pub events: u64,
    /// Distinct event ids among them.
    pub distinct: u64,
    /// Distinct events the database says were applied.
    pub applied: u64,
    /// Applications beyond one per event (projection counts above the dedup rows).
    pub applied_twice: u64,
    /// Distinct events neither applied nor dead-lettered.
    pub lost: u64,
    /// Poison records in the source topic: each must be in the DLQ.
    pub dlq_expected: u64,
    /// Distinct source records found in the DLQ.
    pub dlq_actual: u64,
    /// DLQ records beyond one per source record (a dead-letter written again after a crash).
    pub dlq_duplicates: u64,
    /// Valid events found in the DLQ (lifecycle violations; the generator plants none).
    pub dlq_valid_events: u64,
    /// Orders in the projection.
    pub orders: u64,
    /// Every partition's committed offset equals its log end.
    pub committed_at_end: bool,
    /// Changes the order API acknowledged with a 2xx.
    pub http_acknowledged: u64,
    /// Acknowledged changes whose event is not in the topic.
    pub http_missing: u64,
    /// Changes of acknowledged orders in the topic as more than one event (a second
    /// effect of one request, or a change the API acknowledged twice).
    pub http_changed_twice: u64,
    /// Changes of those orders in the topic that no 2xx acknowledged (a request the
    /// client gave up on took effect).
    pub http_unacknowledged: u64,
    /// Records of those orders beyond one per event: the relay sent an event again
    /// (after a crash before it marked the row sent); the consumer's dedup absorbs them.
    pub http_record_copies: u64,
}

/// The figures and one line per violation (empty: every promise held).
pub fn check(observed: &Observed) -> (Summary, Vec<String>) {
    let mut summary = Summary::default();
    let mut violations = Vec::new();

    let mut order_of: HashMap<&str, &str> = HashMap::new();
    let mut poison: BTreeMap<Position, &str> = BTreeMap::new();
    // Per order and event type, the distinct events and how many records carry each.
    let mut changes: HashMap<&str, BTreeMap<&str, BTreeMap<&str, u64>>> = HashMap::new();
    for (position, record) in &observed.source {
        match record {
            SourceRecord::Event {
                event_id,
                order_id,
                event_type,
            } => {
                summary.events += 1;
                *changes
                    .entry(order_id)
                    .or_default()
                    .entry(event_type)
                    .or_default()
                    .entry(event_id)
                    .or_default() += 1;
                if let Some(other) = order_of.insert(event_id, order_id)
                    && other != order_id
                {
                    violations.push(format!(
                        "event {event_id} appears for orders {other} and {order_id}"
                    ));
                }
            }
            SourceRecord::Poison { why } => {
                poison.insert(*position, why);
            }
        }
    }
    summary.distinct = order_of.len() as u64;
    summary.dlq_expected = poison.len() as u64;

    let mut dead_lettered: HashMap<Position, u64> = HashMap::new();
    for letter in &observed.dead_letters {
        let Some(source) = letter.source else {
            violations.push("a DLQ record has no dlq-source-partition/offset headers".into());
            continue;
        };
        let reason = letter.category.as_deref().unwrap_or("").trim();
        if reason.is_empty() || letter.message.as_deref().unwrap_or("").trim().is_empty() {
            violations.push(format!(
                "DLQ record of {}@{} has no reason (dlq-error-category/message)",
                source.0, source.1
            ));
        }
        *dead_lettered.entry(source).or_default() += 1;
    }
    summary.dlq_actual = dead_lettered.len() as u64;
    summary.dlq_duplicates = dead_lettered.values().map(|n| n - 1).sum();
    let mut dead_lettered_events: HashSet<&str> = HashSet::new();
    for source in dead_lettered.keys() {
        match observed.source.get(source) {
            None => violations.push(format!(
                "DLQ record points at {}@{}, which the source topic does not hold",
                source.0, source.1
            )),
            Some(SourceRecord::Poison { .. }) => {}
            Some(SourceRecord::Event { event_id, .. }) => {
                summary.dlq_valid_events += 1;
                dead_lettered_events.insert(event_id);
            }
        }
    }
    for (position, why) in &poison {
        if !dead_lettered.contains_key(position) {
            violations.push(format!(
                "poison record {}@{} ({why}) is not in the DLQ",
                position.0, position.1
            ));
        }
    }

    let mut applied_per_order: HashMap<&str, i64> = HashMap::new();
    let mut applied: HashSet<&str> = HashSet::new();
    for row in &observed.applied {
        if !applied.insert(&row.event_id) {
            violations.push(format!(
                "event {} has two processed_events rows",
                row.event_id
            ));
            continue;
        }
        match order_of.get(row.event_id.as_str()) {
            Some(order_id) => *applied_per_order.entry(order_id).or_default() += 1,
            None => violations.push(format!(
                "processed_events holds {}, which is no valid event of the topic",
                row.event_id
            )),
        }
    }
    summary.applied = applied.len() as u64;
    for (event_id, order_id) in &order_of {
        let was_applied = applied.contains(event_id);
        let was_dead_lettered = dead_lettered_events.contains(event_id);
        match (was_applied, was_dead_lettered) {
            (false, false) => {
                summary.lost += 1;
                violations.push(format!(
                    "event {event_id} of order {order_id} was neither applied nor dead-lettered"
                ));
            }
            (true, true) => violations.push(format!(
                "event {event_id} of order {order_id} was applied and dead-lettered"
            )),
            (false, true) => violations.push(format!(
                "valid event {event_id} of order {order_id} was dead-lettered"
            )),
            (true, false) => {}
        }
    }

    summary.orders = observed.projection.len() as u64;
    for (order_id, &events_applied) in &observed.projection {
        let expected = applied_per_order
            .get(order_id.as_str())
            .copied()
            .unwrap_or(0);
        if events_applied > expected {
            summary.applied_twice += (events_applied - expected) as u64;
        }
        if events_applied != expected {
            violations.push(format!(
                "order {order_id}: events_applied {events_applied}, applied events {expected}"
            ));
        }
    }
    for (order_id, count) in &applied_per_order {
        if !observed.projection.contains_key(*order_id) {
            violations.push(format!(
                "order {order_id} has {count} applied events but no projection row"
            ));
        }
    }

    summary.committed_at_end = !observed.offsets.is_empty();
    for (partition, (committed, end)) in &observed.offsets {
        // An empty partition with nothing committed is at its end too.
        if committed.unwrap_or(0) != *end {
            summary.committed_at_end = false;
            let committed = committed.map_or_else(|| "nothing".to_string(), |c| c.to_string());
            violations.push(format!(
                "partition {partition}: committed {committed}, log end {end}"
            ));
        }
    }
    if observed.offsets.is_empty() {
        violations.push("the topic has no partitions".into());
    }
    check_acknowledged(observed, &changes, &mut summary, &mut violations);
    (summary, violations)
}

/// Every change the order API acknowledged is in the topic as exactly one event, the
/// one its answer named, and no acknowledged change has a second event.
fn check_acknowledged(
    observed: &Observed,
    changes: &HashMap<&str, BTreeMap<&str, BTreeMap<&str, u64>>>,
    summary: &mut Summary,
    violations: &mut Vec<String>,
) {
    let mut acknowledged: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    for ack in &observed.acknowledged {
        summary.http_acknowledged += 1;
        acknowledged
            .entry((&ack.order_id, &ack.event_type))
            .or_default()
            .insert(&ack.event_id);
    }
    for ((order_id, event_type), answered) in &acknowledged {
        if answered.len() > 1 {
            summary.http_changed_twice += 1;
            violations.push(format!(
                "order {order_id}: {event_type} acknowledged as {} different events ({})",
                answered.len(),
                answered.iter().copied().collect::<Vec<_>>().join(", ")
            ));
        }
        let in_topic = changes
            .get(order_id)
            .and_then(|types| types.get(event_type));
        for event_id in answered {
            if !in_topic.is_some_and(|events| events.contains_key(event_id)) {
                summary.http_missing += 1;
                violations.push(format!(
                    "order {order_id}: acknowledged {event_type} (event {event_id}) is not in the topic"
                ));
            }
        }
        if let Some(events) = in_topic
            && events.len() > 1
            && answered.len() == 1
        {
            summary.http_changed_twice += 1;
            violations.push(format!(
                "order {order_id}: {event_type} is in the topic as {} events ({})",
                events.len(),
                events.keys().copied().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    let orders: BTreeSet<&str> = acknowledged.keys().map(|(order, _)| *order).collect();
    for order_id in orders {
        for (event_type, events) in changes.get(order_id).into_iter().flatten() {
            if !acknowledged.contains_key(&(order_id, event_type)) {
                summary.http_unacknowledged += events.len() as u64;
            }
            summary.http_record_copies += events.values().map(|copies| copies - 1).sum::<u64>();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, order: &str) -> SourceRecord {
        typed(id, order, "OrderCreated")
    }

    fn typed(id: &str, order: &str, event_type: &str) -> SourceRecord {
        SourceRecord::Event {
            event_id: id.into(),
            order_id: order.into(),
            event_type: event_type.into(),
        }
    }

    fn ack(order: &str, id: &str, event_type: &str) -> Acknowledged {
        Acknowledged {
            order_id: order.into(),
            event_id: id.into(),
            event_type: event_type.into(),
        }
    }

    fn letter(partition: i32, offset: i64) -> DeadLetter {
        DeadLetter {
            source: Some((partition, offset)),
            category: Some("deserialization".into()),
            message: Some("not wire format".into()),
        }
    }

    fn applied(id: &str) -> AppliedRow {
        AppliedRow {
            event_id: id.into(),
        }
    }

    /// Two orders, one duplicate, one poison record, all handled once.
    fn clean() -> Observed {
        let mut observed = Observed::default();
        observed.source.insert((0, 0), event("e1", "o1"));
        observed.source.insert((0, 1), event("e1", "o1"));
        observed.source.insert((0, 2), event("e2", "o1"));
        observed.source.insert(
            (1, 0),
            SourceRecord::Poison {
                why: "not Avro".into(),
            },
        );
        observed.source.insert((1, 1), event("e3", "o2"));
        observed.dead_letters.push(letter(1, 0));
        observed.applied = vec![applied("e1"), applied("e2"), applied("e3")];
        observed.projection = HashMap::from([("o1".into(), 2), ("o2".into(), 1)]);
        observed.offsets = BTreeMap::from([(0, (Some(3), 3)), (1, (Some(2), 2))]);
        observed
    }

    #[test]
    fn a_clean_run_balances() {
        let (summary, violations) = check(&clean());
        assert!(violations.is_empty(), "{violations:?}");
        assert_eq!(
            summary,
            Summary {
                events: 4,
                distinct: 3,
                applied: 3,
                applied_twice: 0,
                lost: 0,
                dlq_expected: 1,
                dlq_actual: 1,
                dlq_duplicates: 0,
                dlq_valid_events: 0,
                orders: 2,
                committed_at_end: true,
                ..Summary::default()
            }
        );
    }

    #[test]
    fn a_lost_event_a_double_application_and_a_missing_dead_letter_are_reported() {
        let mut observed = clean();
        observed.applied.retain(|row| row.event_id != "e3");
        observed.projection.insert("o2".into(), 0);
        observed.projection.insert("o1".into(), 3);
        observed.dead_letters.clear();
        let (summary, violations) = check(&observed);
        assert_eq!(summary.lost, 1);
        assert_eq!(summary.applied_twice, 1);
        assert_eq!(summary.dlq_actual, 0);
        let text = violations.join("\n");
        assert!(
            text.contains("e3 of order o2 was neither applied"),
            "{text}"
        );
        assert!(
            text.contains("order o1: events_applied 3, applied events 2"),
            "{text}"
        );
        assert!(text.contains("poison record 1@0"), "{text}");
    }

    #[test]
    fn lagging_offsets_and_reasonless_dead_letters_are_reported() {
        let mut observed = clean();
        observed.offsets.insert(1, (None, 2));
        observed.dead_letters.push(DeadLetter {
            source: Some((1, 0)),
            category: None,
            message: None,
        });
        let (summary, violations) = check(&observed);
        assert!(!summary.committed_at_end);
        assert_eq!(summary.dlq_duplicates, 1);
        let text = violations.join("\n");
        assert!(
            text.contains("partition 1: committed nothing, log end 2"),
            "{text}"
        );
        assert!(text.contains("has no reason"), "{text}");
    }

    #[test]
    fn a_dead_lettered_valid_event_is_reported() {
        let mut observed = clean();
        observed.dead_letters.push(letter(1, 1));
        let (summary, violations) = check(&observed);
        assert_eq!(summary.dlq_valid_events, 1);
        assert!(
            violations
                .join("\n")
                .contains("e3 of order o2 was applied and dead-lettered"),
            "{violations:?}"
        );
    }

    /// o1 was created and paid through the API (its creation relayed twice); o3 was
    /// created and paid, but its payment is in the topic as two events and its creation
    /// not at all; o2 came from elsewhere.
    fn with_http_orders() -> Observed {
        let mut observed = clean();
        observed
            .source
            .insert((0, 2), typed("e2", "o1", "OrderPaid"));
        observed
            .source
            .insert((2, 0), typed("e4", "o3", "OrderPaid"));
        observed
            .source
            .insert((2, 1), typed("e5", "o3", "OrderPaid"));
        observed.applied.extend([applied("e4"), applied("e5")]);
        observed.projection.insert("o3".into(), 2);
        observed.offsets.insert(2, (Some(2), 2));
        observed.acknowledged = vec![
            ack("o1", "e1", "OrderCreated"),
            ack("o1", "e2", "OrderPaid"),
            ack("o3", "e6", "OrderCreated"),
            ack("o3", "e4", "OrderPaid"),
        ];
        observed
    }

    #[test]
    fn acknowledged_changes_are_checked_against_the_topic() {
        let (summary, violations) = check(&with_http_orders());
        assert_eq!(summary.http_acknowledged, 4);
        assert_eq!(summary.http_missing, 1);
        assert_eq!(summary.http_changed_twice, 1);
        assert_eq!(summary.http_unacknowledged, 0);
        assert_eq!(summary.http_record_copies, 1, "e1 is in the topic twice");
        let text = violations.join("\n");
        assert!(
            text.contains("order o3: acknowledged OrderCreated (event e6) is not in the topic"),
            "{text}"
        );
        assert!(
            text.contains("order o3: OrderPaid is in the topic as 2 events (e4, e5)"),
            "{text}"
        );
        assert_eq!(violations.len(), 2, "{text}");
    }

    #[test]
    fn a_change_acknowledged_once_and_relayed_once_balances() {
        let mut observed = with_http_orders();
        observed.acknowledged.truncate(2);
        let (summary, violations) = check(&observed);
        assert!(violations.is_empty(), "{violations:?}");
        assert_eq!(summary.http_acknowledged, 2);
        assert_eq!(summary.http_record_copies, 1);
    }
}
