use super::*;

fn created(id: &str, order: &str, total: i64) -> Decoded {
    Decoded::Event(Event {
        event_id: id.into(),
        order_id: order.into(),
        change: Change::Created {
            customer_id: "c".into(),
            currency: "EUR".into(),
            total_cents: total,
            item_count: 2,
        },
    })
}

fn paid(id: &str, order: &str, amount: i64) -> Decoded {
    Decoded::Event(Event {
        event_id: id.into(),
        order_id: order.into(),
        change: Change::Paid {
            amount_cents: amount,
        },
    })
}

fn poison() -> Decoded {
    Decoded::Poison {
        why: "not wire format".into(),
    }
}

fn row(id: &str, partition: i32, offset: i64) -> AppliedRow {
    AppliedRow {
        event_id: id.into(),
        position: (partition, offset),
    }
}

fn projection(status: &str, total: i64, applied: i64, last: &str) -> ProjectionRow {
    ProjectionRow {
        status: status.into(),
        customer_id: "c".into(),
        currency: "EUR".into(),
        total_cents: total,
        item_count: 2,
        events_applied: applied,
        last_event_id: last.into(),
    }
}

/// o1: created, a copy of it, a poison record in its lane, paid. o2: created.
fn clean() -> Observed {
    let mut observed = Observed::default();
    observed.source.insert((0, 0), created("e1", "o1", 500));
    observed.source.insert((0, 1), created("e1", "o1", 500));
    observed.source.insert((0, 2), poison());
    observed.source.insert((0, 3), paid("e2", "o1", 500));
    observed.source.insert((1, 0), created("e3", "o2", 700));
    observed.dead_letters = vec![Some((0, 2))];
    observed.applied = vec![row("e1", 0, 0), row("e2", 0, 3), row("e3", 1, 0)];
    observed.projection = HashMap::from([
        ("o1".into(), projection("paid", 500, 2, "e2")),
        ("o2".into(), projection("created", 700, 1, "e3")),
    ]);
    observed.offsets = BTreeMap::from([(0, (Some(4), 4)), (1, (Some(1), 1))]);
    observed
}

#[test]
fn a_clean_run_balances_record_by_record() {
    let verdict = check(&clean(), DlqDuplicates::Forbidden);
    assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
    let ledger = verdict.ledger;
    assert_eq!(
        (
            ledger.seen,
            ledger.applied,
            ledger.dead_lettered,
            ledger.duplicates,
            ledger.skipped
        ),
        (5, 3, 1, 1, 0)
    );
    assert_eq!(ledger.orders, 2);
    assert!(ledger.committed_at_end);
}

#[test]
fn a_skipped_record_cannot_hide_behind_its_later_copy() {
    let mut observed = clean();
    // The first copy was skipped; the dedup row names the second.
    observed.applied[0] = row("e1", 0, 1);
    let verdict = check(&observed, DlqDuplicates::Forbidden);
    assert_eq!(verdict.ledger.skipped, 1);
    let text = verdict.violations.join("\n");
    assert!(
        text.contains(
            "0@0 (event e1 of order o1: skipped, its event applied from the later copy 0@1)"
        ),
        "{text}"
    );
}

#[test]
fn dlq_duplicates_are_violations_unless_the_fault_is_the_crash_window() {
    let mut observed = clean();
    observed.dead_letters.push(Some((0, 2)));
    let verdict = check(&observed, DlqDuplicates::Forbidden);
    assert_eq!(verdict.ledger.dlq_duplicates, 1);
    assert_eq!(
        verdict.violations,
        vec!["0@2 is in the DLQ 2 times".to_string()]
    );
    let verdict = check(&observed, DlqDuplicates::CrashWindow);
    assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
    assert_eq!(
        verdict.tolerated,
        vec!["0@2 is in the DLQ 2 times".to_string()]
    );
}

#[test]
fn a_dead_lettered_valid_event_and_its_followers_are_named() {
    let mut observed = clean();
    // A database-wide error judged as the record's fault: e1 dead-lettered, so e2
    // failed as "never created" and was dead-lettered too.
    observed.applied = vec![row("e3", 1, 0)];
    observed.dead_letters = vec![Some((0, 0)), Some((0, 1)), Some((0, 2)), Some((0, 3))];
    observed.projection.remove("o1");
    let verdict = check(&observed, DlqDuplicates::Forbidden);
    assert_eq!(verdict.ledger.valid_dead_lettered, 2);
    let text = verdict.violations.join("\n");
    assert!(
        text.contains("0@0 (valid event e1 of order o1 was dead-lettered)"),
        "{text}"
    );
    assert!(
        text.contains("0@3 (valid event e2 of order o1 was dead-lettered)"),
        "{text}"
    );
}

#[test]
fn a_projection_row_that_differs_from_the_replay_is_reported() {
    let mut observed = clean();
    observed
        .projection
        .insert("o1".into(), projection("paid", 500, 3, "e2"));
    let verdict = check(&observed, DlqDuplicates::Forbidden);
    assert_eq!(verdict.ledger.projection_mismatches, 1);
    assert!(
        verdict.violations[0].starts_with("order o1: projection"),
        "{:?}",
        verdict.violations
    );
}

#[test]
fn a_payment_of_the_wrong_amount_is_a_lifecycle_violation_to_dead_letter() {
    let mut observed = clean();
    observed.source.insert((0, 3), paid("e2", "o1", 499));
    observed.applied.retain(|r| r.event_id != "e2");
    observed.dead_letters.push(Some((0, 3)));
    observed
        .projection
        .insert("o1".into(), projection("created", 500, 1, "e1"));
    let verdict = check(&observed, DlqDuplicates::Forbidden);
    assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
    assert_eq!(verdict.ledger.lifecycle_violations, 1);
}

#[test]
fn a_lost_record_and_lagging_offsets_are_reported() {
    let mut observed = clean();
    observed.dead_letters.clear();
    observed.offsets.insert(1, (None, 1));
    let verdict = check(&observed, DlqDuplicates::Forbidden);
    let text = verdict.violations.join("\n");
    assert!(
        text.contains("0@2 (poison record: neither dead-lettered"),
        "{text}"
    );
    assert!(
        text.contains("partition 1: committed nothing, log end 1"),
        "{text}"
    );
}
