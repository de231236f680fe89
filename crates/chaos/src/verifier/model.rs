//! The verifier's own model of the pipeline: which outcome each source record should
//! have (applied, dead-lettered, or a duplicate of an event applied before it), what each
//! order's projection row must hold after its applied events are replayed in topic order,
//! and the ledger that counts every source record by (partition, offset). Pure: the
//! readers fill [`Observed`], [`check`] judges it.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// A record position in the source topic: (partition, offset).
pub type Position = (i32, i64);

/// What an event does to its order, as the verifier decoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The order was placed.
    Created {
        /// Customer.
        customer_id: String,
        /// ISO currency code.
        currency: String,
        /// Total in cents.
        total_cents: i64,
        /// Sum of the item quantities.
        item_count: i64,
    },
    /// Paid.
    Paid {
        /// Amount in cents.
        amount_cents: i64,
    },
    /// Shipped.
    Shipped,
    /// Cancelled.
    Cancelled,
}

/// A valid event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its id (the dedup key).
    pub event_id: String,
    /// Its order.
    pub order_id: String,
    /// What it does.
    pub change: Change,
}

/// A source record as the verifier's own decoder saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// Decodes against its writer schema and passes the stateless rules.
    Event(Event),
    /// Cannot be applied by anyone; `why` says which rule it broke.
    Poison {
        /// The decoding or validation error.
        why: String,
    },
}

/// A `processed_events` row of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedRow {
    /// Event id.
    pub event_id: String,
    /// Where the record that applied it was.
    pub position: Position,
}

/// An `orders` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionRow {
    /// `created`, `paid`, `shipped` or `cancelled`.
    pub status: String,
    /// Customer.
    pub customer_id: String,
    /// Currency.
    pub currency: String,
    /// Total in cents.
    pub total_cents: i64,
    /// Items.
    pub item_count: i64,
    /// Events applied to the row.
    pub events_applied: i64,
    /// The last applied event.
    pub last_event_id: String,
}

/// Everything the verifier read.
#[derive(Debug, Default)]
pub struct Observed {
    /// Every source record, by position.
    pub source: BTreeMap<Position, Decoded>,
    /// Source position of every dead-letter record of the source topic (`None`: the
    /// record does not say).
    pub dead_letters: Vec<Option<Position>>,
    /// The group's `processed_events` rows.
    pub applied: Vec<AppliedRow>,
    /// The `orders` projection by order id.
    pub projection: HashMap<String, ProjectionRow>,
    /// Per partition: (committed offset, log end).
    pub offsets: BTreeMap<i32, (Option<i64>, i64)>,
}

/// Whether DLQ duplicates are tolerated: only when the run's fault is the documented
/// crash window (a worker killed, or the database lost, between a DLQ write's ack and
/// the dead-letter ledger's commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DlqDuplicates {
    /// Any second copy is a violation.
    Forbidden,
    /// Counted and named, not a violation.
    CrashWindow,
}

/// The figures of one verification.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Ledger {
    /// Source records read (every position up to the end offsets).
    pub seen: u64,
    /// Positions whose record applied its event (the `processed_events` row names it).
    pub applied: u64,
    /// Positions found in the DLQ.
    pub dead_lettered: u64,
    /// Positions holding a copy of an event applied from an earlier position.
    pub duplicates: u64,
    /// Positions with none of these outcomes: skipped records.
    pub skipped: u64,
    /// Poison records (the verifier's own decoding and rules).
    pub poison: u64,
    /// Valid events the lifecycle forbids given what was applied before them.
    pub lifecycle_violations: u64,
    /// Valid events that should have been applied but were dead-lettered.
    pub valid_dead_lettered: u64,
    /// DLQ records beyond one per source position.
    pub dlq_duplicates: u64,
    /// Orders whose projection row differs from the replay of their applied events.
    pub projection_mismatches: u64,
    /// Orders compared.
    pub orders: u64,
    /// Every partition's committed offset is its log end.
    pub committed_at_end: bool,
}

/// Per-record outcome the model expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Apply,
    DeadLetter,
    Duplicate,
}

/// The order state of the replay.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    status: &'static str,
    customer_id: String,
    currency: String,
    total_cents: i64,
    item_count: i64,
    events_applied: i64,
    last_event_id: String,
}

/// The lifecycle: created -> paid -> shipped, created | paid -> cancelled; a payment
/// must equal the total. `Err` says why the event cannot be applied.
fn step(state: Option<&State>, event: &Event) -> Result<State, String> {
    let next = |state: &State, status: &'static str| State {
        status,
        events_applied: state.events_applied + 1,
        last_event_id: event.event_id.clone(),
        ..state.clone()
    };
    match (state, &event.change) {
        (
            None,
            Change::Created {
                customer_id,
                currency,
                total_cents,
                item_count,
            },
        ) => Ok(State {
            status: "created",
            customer_id: customer_id.clone(),
            currency: currency.clone(),
            total_cents: *total_cents,
            item_count: *item_count,
            events_applied: 1,
            last_event_id: event.event_id.clone(),
        }),
        (None, _) => Err("order never created".into()),
        (Some(s), Change::Paid { amount_cents }) if s.status == "created" => {
            if *amount_cents == s.total_cents {
                Ok(next(s, "paid"))
            } else {
                Err(format!("paid {amount_cents} of {}", s.total_cents))
            }
        }
        (Some(s), Change::Shipped) if s.status == "paid" => Ok(next(s, "shipped")),
        (Some(s), Change::Cancelled) if matches!(s.status, "created" | "paid") => {
            Ok(next(s, "cancelled"))
        }
        (Some(s), change) => Err(format!("{change:?} on a {} order", s.status)),
    }
}

/// The outcome of [`check`].
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The figures.
    pub ledger: Ledger,
    /// One line per broken promise (empty: every promise held).
    pub violations: Vec<String>,
    /// DLQ duplicates tolerated because of the run's crash window, one line per record.
    pub tolerated: Vec<String>,
    /// Each event's first record's timestamp (ms since the epoch), by event id.
    #[serde(skip)]
    pub first_record_ms: HashMap<String, i64>,
}

/// Judges what was read.
pub fn check(observed: &Observed, dlq_duplicates: DlqDuplicates) -> Verdict {
    let mut ledger = Ledger::default();
    let mut violations = Vec::new();
    let mut tolerated = Vec::new();

    // What should happen to each record, replaying each order in topic order.
    let mut expected: BTreeMap<Position, Expected> = BTreeMap::new();
    let mut model: HashMap<&str, State> = HashMap::new();
    let mut first_outcome: HashMap<&str, Expected> = HashMap::new();
    for (&position, decoded) in &observed.source {
        let outcome = match decoded {
            Decoded::Poison { .. } => {
                ledger.poison += 1;
                Expected::DeadLetter
            }
            Decoded::Event(event) => match first_outcome.get(event.event_id.as_str()) {
                // A copy of an event already handled: dedup absorbs an applied one; a
                // dead-lettered one fails the same way again.
                Some(Expected::Apply) => Expected::Duplicate,
                Some(_) => Expected::DeadLetter,
                None => {
                    let outcome = match step(model.get(event.order_id.as_str()), event) {
                        Ok(state) => {
                            model.insert(&event.order_id, state);
                            Expected::Apply
                        }
                        Err(_) => {
                            ledger.lifecycle_violations += 1;
                            Expected::DeadLetter
                        }
                    };
                    first_outcome.insert(&event.event_id, outcome);
                    outcome
                }
            },
        };
        expected.insert(position, outcome);
    }

    // What did happen.
    let mut applied_at: HashMap<&str, Position> = HashMap::new();
    let mut applied_here: HashMap<Position, &str> = HashMap::new();
    for row in &observed.applied {
        if let Some(other) = applied_at.insert(&row.event_id, row.position) {
            violations.push(format!(
                "event {} has two processed_events rows ({}@{} and {}@{})",
                row.event_id, other.0, other.1, row.position.0, row.position.1
            ));
        }
        match observed.source.get(&row.position) {
            Some(Decoded::Event(event)) if event.event_id == row.event_id => {
                applied_here.insert(row.position, &row.event_id);
            }
            _ => violations.push(format!(
                "processed_events names {}@{} for event {}, which that record does not hold",
                row.position.0, row.position.1, row.event_id
            )),
        }
    }
    let mut in_dlq: BTreeMap<Position, u64> = BTreeMap::new();
    for letter in &observed.dead_letters {
        match letter {
            Some(position) => *in_dlq.entry(*position).or_default() += 1,
            None => violations.push("a DLQ record names no source partition/offset".into()),
        }
    }
    for (position, copies) in &in_dlq {
        if !observed.source.contains_key(position) {
            violations.push(format!(
                "DLQ record points at {}@{}, which the source topic does not hold",
                position.0, position.1
            ));
        }
        if *copies > 1 {
            ledger.dlq_duplicates += copies - 1;
            let line = format!("{}@{} is in the DLQ {copies} times", position.0, position.1);
            match dlq_duplicates {
                DlqDuplicates::Forbidden => violations.push(line),
                DlqDuplicates::CrashWindow => tolerated.push(line),
            }
        }
    }

    // The ledger: every position has exactly one outcome.
    ledger.seen = observed.source.len() as u64;
    for (&position, decoded) in &observed.source {
        let here = |what: &str| format!("{}@{} ({what})", position.0, position.1);
        let was_applied = applied_here.contains_key(&position);
        let was_dead_lettered = in_dlq.contains_key(&position);
        let event = match decoded {
            Decoded::Event(event) => Some(event),
            Decoded::Poison { .. } => None,
        };
        let applied_earlier = event
            .and_then(|e| applied_at.get(e.event_id.as_str()))
            .is_some_and(|&at| at.0 == position.0 && at.1 < position.1);
        match (was_applied, was_dead_lettered) {
            (true, true) => {
                violations.push(format!("{} was applied and dead-lettered", here("event")))
            }
            (true, false) => ledger.applied += 1,
            (false, true) => ledger.dead_lettered += 1,
            (false, false) if applied_earlier => ledger.duplicates += 1,
            (false, false) => {
                ledger.skipped += 1;
                let what = match (
                    event,
                    event.and_then(|e| applied_at.get(e.event_id.as_str())),
                ) {
                    (Some(e), Some(at)) => format!(
                        "event {} of order {}: skipped, its event applied from the later copy {}@{}",
                        e.event_id, e.order_id, at.0, at.1
                    ),
                    (Some(e), None) => {
                        format!(
                            "event {} of order {}: neither applied nor dead-lettered",
                            e.event_id, e.order_id
                        )
                    }
                    (None, _) => "poison record: neither dead-lettered nor anything else".into(),
                };
                violations.push(here(&what));
            }
        }
        let want = expected[&position];
        if want == Expected::Apply && was_dead_lettered && !was_applied {
            ledger.valid_dead_lettered += 1;
            let e = event.expect("only events are applied");
            violations.push(here(&format!(
                "valid event {} of order {} was dead-lettered",
                e.event_id, e.order_id
            )));
        }
        if want == Expected::DeadLetter && was_applied {
            violations.push(here("applied, but the verifier's model dead-letters it"));
        }
        if want == Expected::Duplicate && was_dead_lettered {
            violations.push(here("a copy of an applied event was dead-lettered"));
        }
    }

    check_projection(observed, &applied_at, &mut ledger, &mut violations);

    ledger.committed_at_end = !observed.offsets.is_empty();
    for (partition, (committed, end)) in &observed.offsets {
        if committed.unwrap_or(0) != *end {
            ledger.committed_at_end = false;
            violations.push(format!(
                "partition {partition}: committed {}, log end {end}",
                committed.map_or("nothing".to_string(), |c| c.to_string())
            ));
        }
    }
    if observed.offsets.is_empty() {
        violations.push("the topic has no partitions".into());
    }
    Verdict {
        ledger,
        violations,
        tolerated,
        first_record_ms: HashMap::new(),
    }
}

/// Replays each order's applied events (the `processed_events` rows) in topic order and
/// compares the result with its projection row.
fn check_projection(
    observed: &Observed,
    applied_at: &HashMap<&str, Position>,
    ledger: &mut Ledger,
    violations: &mut Vec<String>,
) {
    let mut by_position: Vec<(Position, &Event)> = Vec::new();
    for (event_id, position) in applied_at {
        if let Some(Decoded::Event(event)) = observed.source.get(position)
            && event.event_id == *event_id
        {
            by_position.push((*position, event));
        }
    }
    by_position.sort_by_key(|(position, _)| *position);
    let mut replay: HashMap<&str, State> = HashMap::new();
    let mut broken: HashMap<&str, String> = HashMap::new();
    for (position, event) in by_position {
        if broken.contains_key(event.order_id.as_str()) {
            continue;
        }
        match step(replay.get(event.order_id.as_str()), event) {
            Ok(state) => {
                replay.insert(&event.order_id, state);
            }
            Err(why) => {
                broken.insert(
                    &event.order_id,
                    format!(
                        "applied event {} at {}@{} breaks the lifecycle: {why}",
                        event.event_id, position.0, position.1
                    ),
                );
            }
        }
    }
    for (order_id, why) in &broken {
        ledger.projection_mismatches += 1;
        violations.push(format!("order {order_id}: {why}"));
    }
    for (order_id, state) in &replay {
        if broken.contains_key(order_id) {
            continue;
        }
        ledger.orders += 1;
        let Some(row) = observed.projection.get(*order_id) else {
            ledger.projection_mismatches += 1;
            violations.push(format!(
                "order {order_id}: applied events but no projection row"
            ));
            continue;
        };
        let want = ProjectionRow {
            status: state.status.to_string(),
            customer_id: state.customer_id.clone(),
            currency: state.currency.clone(),
            total_cents: state.total_cents,
            item_count: state.item_count,
            events_applied: state.events_applied,
            last_event_id: state.last_event_id.clone(),
        };
        if *row != want {
            ledger.projection_mismatches += 1;
            violations.push(format!(
                "order {order_id}: projection {row:?}, replay of its applied events {want:?}"
            ));
        }
    }
    for order_id in observed.projection.keys() {
        if !replay.contains_key(order_id.as_str()) && !broken.contains_key(order_id.as_str()) {
            ledger.projection_mismatches += 1;
            violations.push(format!(
                "order {order_id}: projection row without applied events"
            ));
        }
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
