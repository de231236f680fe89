//! Per-order order: each order's events must appear in the source topic in the order the
//! order service committed them (their outbox ids). A re-sent copy of an event (same
//! event id, after a relay crash between a Kafka commit and its record) is judged by the
//! dedup rules of [`model`](super::model); here each event counts where it first appears.
//! An order's records share a partition (its key), so their offsets say which came first.

use std::collections::HashMap;

use super::model::{Decoded, Position};

/// An event the order service committed: its order and event id, listed in outbox id
/// order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The order.
    pub order_id: String,
    /// The event.
    pub event_id: String,
}

/// One line per broken promise: a committed event missing from the topic, or an order
/// whose events first appear in another order than committed.
pub fn check<'a>(
    source: impl IntoIterator<Item = (&'a Position, &'a Decoded)>,
    committed: &[Committed],
) -> Vec<String> {
    let mut first_seen: HashMap<&str, Position> = HashMap::new();
    for (position, decoded) in source {
        if let Decoded::Event(event) = decoded {
            first_seen
                .entry(event.event_id.as_str())
                .or_insert(*position);
        }
    }
    let mut violations = Vec::new();
    let mut last_of_order: HashMap<&str, (&str, Position)> = HashMap::new();
    for event in committed {
        let Some(&position) = first_seen.get(event.event_id.as_str()) else {
            violations.push(format!(
                "event {} of order {}: committed by the order service, not in the topic",
                event.event_id, event.order_id
            ));
            continue;
        };
        if let Some(&(previous, at)) = last_of_order.get(event.order_id.as_str())
            && position <= at
        {
            violations.push(format!(
                "order {}: event {} at {}@{} comes before event {} at {}@{}, committed earlier",
                event.order_id, event.event_id, position.0, position.1, previous, at.0, at.1
            ));
        }
        last_of_order.insert(&event.order_id, (&event.event_id, position));
    }
    violations
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::verifier::model::{Change, Event};

    fn event(id: &str, order: &str) -> Decoded {
        Decoded::Event(Event {
            event_id: id.into(),
            order_id: order.into(),
            change: Change::Shipped,
        })
    }

    fn committed(pairs: &[(&str, &str)]) -> Vec<Committed> {
        pairs
            .iter()
            .map(|(order, id)| Committed {
                order_id: (*order).into(),
                event_id: (*id).into(),
            })
            .collect()
    }

    #[test]
    fn events_in_commit_order_pass_and_a_later_copy_does_not_count() {
        let source = BTreeMap::from([
            ((0, 0), event("e1", "o1")),
            ((0, 1), event("e2", "o1")),
            ((0, 2), event("e1", "o1")),
            ((1, 0), event("f1", "o2")),
            ((0, 3), event("e3", "o1")),
        ]);
        let order = committed(&[("o1", "e1"), ("o2", "f1"), ("o1", "e2"), ("o1", "e3")]);
        assert_eq!(check(&source, &order), Vec::<String>::new());
    }

    #[test]
    fn an_order_out_of_commit_order_or_a_missing_event_is_a_violation() {
        let source = BTreeMap::from([((0, 0), event("e2", "o1")), ((0, 1), event("e1", "o1"))]);
        let order = committed(&[("o1", "e1"), ("o1", "e2"), ("o1", "e3")]);
        let violations = check(&source, &order);
        assert_eq!(violations.len(), 2, "{violations:?}");
        assert!(
            violations[0].starts_with("order o1: event e2 at 0@0 comes before event e1 at 0@1"),
            "{violations:?}"
        );
        assert!(
            violations[1].contains("event e3 of order o1: committed by the order service"),
            "{violations:?}"
        );
    }
}
