//! Several records of one key in a batch (a run, in offset order): which of them
//! may be applied in a round, which may leave the batch, and which go back to the
//! scheduler, so a key's effects are applied in offset order whatever happens to
//! one of its records.

use std::collections::HashMap;

use rdkafka::Message;

use super::Work;
use crate::scheduling::{DispatchedJob, Shared};

type Key = crate::scheduling::state::SchedKey;

fn offset(work: &Work) -> i64 {
    work.job.job.record.offset()
}

/// Still has an effect to apply in this batch (not done, not headed for the DLQ).
fn applies_later(work: &Work) -> bool {
    !work.finished && work.dead_letter.is_none()
}

/// Per key, the smallest offset among the records that satisfy `filter`.
fn first_offsets(pending: &[Work], filter: impl Fn(&Work) -> bool) -> HashMap<&Key, i64> {
    let mut first: HashMap<&Key, i64> = HashMap::new();
    for work in pending.iter().filter(|work| filter(work)) {
        let entry = first.entry(&work.job.key).or_insert(i64::MAX);
        *entry = (*entry).min(offset(work));
    }
    first
}

/// Whether each record may be applied this round: not when an earlier record of
/// its key could not be decoded yet (it waits on the registry).
pub(super) fn applicable(pending: &[Work]) -> Vec<bool> {
    let blocked = first_offsets(pending, |work| applies_later(work) && work.event.is_none());
    pending
        .iter()
        .map(|work| {
            blocked
                .get(&work.job.key)
                .is_none_or(|&first| first >= offset(work))
        })
        .collect()
}

/// Takes out of `pending` the records that want to wait out of the batch (on the
/// registry, or on backoff) and may: no earlier record of their key still has an
/// effect to apply here. One that may not stays, and is tried again with the batch.
pub(super) fn take_leaving(pending: &mut Vec<Work>) -> Vec<Work> {
    let first: HashMap<Key, i64> = first_offsets(pending, applies_later)
        .into_iter()
        .map(|(key, offset)| (key.clone(), offset))
        .collect();
    pending
        .extract_if(.., |work| {
            (work.waiting_on_registry || work.retries_on_its_own)
                && first
                    .get(&work.job.key)
                    .is_none_or(|&earliest| earliest >= offset(work))
        })
        .collect()
}

/// Gives back to the scheduler every record of `pending` that comes after a record
/// of its key in `leaving`: it must not be applied before that one, which now runs
/// on its own, so it starts again in a later run once that one finished.
pub(super) fn put_back_followers(shared: &Shared, pending: &mut Vec<Work>, leaving: &[Work]) {
    if leaving.is_empty() {
        return;
    }
    let mut first: HashMap<Key, i64> = HashMap::new();
    for work in leaving {
        let entry = first.entry(work.job.key.clone()).or_insert(i64::MAX);
        *entry = (*entry).min(offset(work));
    }
    let mut followers: Vec<Work> = pending
        .extract_if(.., |work| {
            first
                .get(&work.job.key)
                .is_some_and(|&leader| offset(work) > leader)
        })
        .collect();
    followers.sort_by(|a, b| (&a.job.key, offset(a)).cmp(&(&b.job.key, offset(b))));
    let mut run: Vec<DispatchedJob> = Vec::new();
    for work in followers {
        if run
            .last()
            .is_some_and(|last| last.key != work.job.key || last.ticket != work.job.ticket)
        {
            shared.put_back(std::mem::take(&mut run));
        }
        run.push(work.job);
    }
    shared.put_back(run);
}
