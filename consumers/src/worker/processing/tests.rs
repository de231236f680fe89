//! The worker with in-memory fakes of the decoder, the database, the DLQ and its
//! ledger: fencing of dead letters, one write per record, and per-key order of
//! effects, without a broker.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use chrono::Utc;
use futures::FutureExt;
use futures::future::BoxFuture;
use orderflow_runtime::backoff::Backoff;
use rdkafka::Timestamp;
use rdkafka::message::OwnedMessage;

use super::*;
use crate::dead_letter::DlqWriteError;
use crate::error::FailureKind;
use crate::metrics::ConsumerMetrics;
use crate::scheduling::Ordering;
use crate::scheduling::dispatch::{DispatchLimits, dispatch};
use crate::store::dead_letter_ledger::{LedgerClaim, LedgerError, SourcePosition};
use crate::store::projection::Effect;

/// Decodes the value as the event id and the key as the order id; the value
/// `poison` is undecodable. `on_decode` runs first (to revoke mid-record).
struct FakeDecoder {
    on_decode: Box<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for FakeDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeDecoder")
    }
}

impl RecordDecoder for FakeDecoder {
    fn decode<'a>(
        &'a self,
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
    ) -> BoxFuture<'a, Result<ProjectionEvent, DecodeFailure>> {
        (self.on_decode)();
        let value = String::from_utf8_lossy(value.unwrap_or_default()).into_owned();
        let result = if value == "poison" {
            Err(DecodeFailure::Poison(
                DlqCategory::Deserialization,
                "not Avro".into(),
            ))
        } else {
            Ok(ProjectionEvent {
                event_id: value,
                order_id: String::from_utf8_lossy(key.unwrap_or_default()).into_owned(),
                occurred_at: Utc::now(),
                effect: Effect::Shipped,
            })
        };
        futures::future::ready(result).boxed()
    }
}

/// Records the applied entries in commit order. Each call waits a little
/// (more for low offsets, so later batches overtake earlier ones when they
/// may), and the first call holding offset 22 fails as the database's failure.
#[derive(Debug, Default)]
struct FakeStore {
    applied: Mutex<Vec<(i32, String, i64)>>,
    failed_once: Mutex<bool>,
}

impl EffectStore for Arc<FakeStore> {
    fn apply<'a>(
        &'a self,
        _group: &'a str,
        entries: &'a [BatchEntry<'a>],
    ) -> BoxFuture<'a, Result<Vec<EntryOutcome>, BatchFailure>> {
        async move {
            let slowest = entries.iter().map(|e| 60 - e.offset).max().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(slowest.max(0) as u64 / 10)).await;
            if entries.iter().any(|e| e.offset == 22) {
                let mut failed = self.failed_once.lock().unwrap();
                if !*failed {
                    *failed = true;
                    return Err(BatchFailure {
                        kind: FailureKind::Transient,
                        message: "connection reset".into(),
                        sqlstate: None,
                    });
                }
            }
            let mut applied = self.applied.lock().unwrap();
            for entry in entries {
                applied.push((entry.partition, entry.event.order_id.clone(), entry.offset));
            }
            Ok(vec![EntryOutcome::Applied; entries.len()])
        }
        .boxed()
    }
}

/// Takes every write, after failing the first `failures` transiently.
#[derive(Debug, Default)]
struct FakeSink {
    written: Mutex<Vec<(i32, i64, DlqCategory)>>,
    failures: Mutex<u32>,
}

impl DeadLetterSink for Arc<FakeSink> {
    fn topic(&self) -> &str {
        "orders.dlq"
    }

    fn write<'a>(
        &'a self,
        record: &'a OwnedMessage,
        report: &'a FailureReport,
    ) -> BoxFuture<'a, Result<(), DlqWriteError>> {
        let mut failures = self.failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return futures::future::ready(Err(DlqWriteError {
                topic: "orders.dlq".into(),
                reason: "Local: Message timed out".into(),
                permanent: false,
            }))
            .boxed();
        }
        self.written
            .lock()
            .unwrap()
            .push((record.partition(), record.offset(), report.category));
        futures::future::ready(Ok(())).boxed()
    }
}

/// The ledger in memory: the records settled as written. The first `failures`
/// claims fail as the database's failure.
#[derive(Debug, Default)]
struct FakeLedger {
    written: Mutex<HashSet<SourcePosition>>,
    failures: Mutex<u32>,
}

impl FakeLedger {
    fn holding(topic: &str, partition: i32, offset: i64) -> Arc<Self> {
        let ledger = Arc::new(Self::default());
        ledger.written.lock().unwrap().insert(SourcePosition {
            topic: topic.into(),
            partition,
            offset,
        });
        ledger
    }

    fn offsets(&self) -> Vec<(i32, i64)> {
        let mut offsets: Vec<(i32, i64)> = self
            .written
            .lock()
            .unwrap()
            .iter()
            .map(|s| (s.partition, s.offset))
            .collect();
        offsets.sort_unstable();
        offsets
    }
}

struct FakeClaim {
    ledger: Arc<FakeLedger>,
    new: HashSet<SourcePosition>,
}

impl DeadLetterLedger for Arc<FakeLedger> {
    fn claim<'a>(
        &'a self,
        _group: &'a str,
        sources: Vec<SourcePosition>,
    ) -> BoxFuture<'a, Result<Box<dyn LedgerClaim>, LedgerError>> {
        let mut failures = self.failures.lock().unwrap();
        let result = if *failures > 0 {
            *failures -= 1;
            Err(LedgerError {
                kind: FailureKind::Transient,
                message: "connection refused".into(),
            })
        } else {
            let written = self.written.lock().unwrap();
            let new = sources
                .into_iter()
                .filter(|s| !written.contains(s))
                .collect();
            Ok(Box::new(FakeClaim {
                ledger: Arc::clone(self),
                new,
            }) as Box<dyn LedgerClaim>)
        };
        futures::future::ready(result).boxed()
    }
}

impl LedgerClaim for FakeClaim {
    fn is_new(&self, source: &SourcePosition) -> bool {
        self.new.contains(source)
    }

    fn settle<'a>(
        self: Box<Self>,
        written: &'a [SourcePosition],
    ) -> BoxFuture<'a, Result<(), LedgerError>> {
        self.ledger
            .written
            .lock()
            .unwrap()
            .extend(written.iter().cloned());
        futures::future::ready(Ok(())).boxed()
    }
}

fn shared() -> Arc<Shared> {
    let registry = prometheus::Registry::new();
    Shared::new(
        ConsumerMetrics::new(&registry, "g", "orders"),
        "orders".into(),
        "g".into(),
        Duration::from_millis(10),
    )
}

fn processor(
    shared: &Arc<Shared>,
    decoder: FakeDecoder,
    store: impl EffectStore + 'static,
    sink: Arc<FakeSink>,
    ledger: Arc<FakeLedger>,
) -> Arc<Processor> {
    let backoff = Backoff {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(5),
        multiplier: 2.0,
    };
    let gauge = shared.metrics.breaker_state.clone();
    Arc::new(Processor {
        shared: Arc::clone(shared),
        effects: Box::new(store),
        decoder: Box::new(decoder),
        dlq: Box::new(sink),
        ledger: Box::new(ledger),
        retry: RetryPolicy::new(backoff, 3, 100, gauge, "g".into()),
        effect_delay: Duration::ZERO,
        token: CancellationToken::new(),
        resumed: tokio::sync::Semaphore::new(1),
    })
}

fn record(partition: i32, offset: i64, key: &str, value: &str) -> OwnedMessage {
    OwnedMessage::new(
        Some(value.as_bytes().to_vec()),
        Some(key.as_bytes().to_vec()),
        "orders".into(),
        Timestamp::CreateTime(0),
        partition,
        offset,
        None,
    )
}

/// Partition 0 owned, with one record (offset 5, key `o-1`) the fake decoder refuses,
/// taken as ready jobs.
fn one_poison_record() -> (Arc<Shared>, Vec<DispatchedJob>) {
    let shared = shared();
    shared.lock().assign(0);
    shared
        .lock()
        .accept(record(0, 5, "o-1", "poison"), Ordering::Key);
    let jobs = shared.lock().take_ready(10);
    (shared, jobs)
}

/// Runs [`one_poison_record`] through a processor with `ledger`; with `revoke`, the
/// partition is revoked (its drain timed out) while the record is being judged.
/// Returns the shared state and what the sink was given.
async fn dead_letter_one_poison_record(
    ledger: Arc<FakeLedger>,
    revoke: bool,
) -> (Arc<Shared>, Arc<FakeSink>) {
    let (shared, jobs) = one_poison_record();
    let sink = Arc::new(FakeSink::default());
    let revoking = Arc::clone(&shared);
    let decoder = FakeDecoder {
        on_decode: Box::new(move || {
            if revoke {
                revoking.lock().forget(0);
            }
        }),
    };
    let store = Arc::new(FakeStore::default());
    processor(&shared, decoder, store, Arc::clone(&sink), ledger)
        .run_batch(jobs)
        .await;
    (shared, sink)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_is_dead_lettered_once_and_then_committable() {
    let ledger = Arc::new(FakeLedger::default());
    let (shared, sink) = dead_letter_one_poison_record(Arc::clone(&ledger), false).await;
    assert_eq!(
        *sink.written.lock().unwrap(),
        vec![(0, 5, DlqCategory::Deserialization)]
    );
    assert_eq!(ledger.offsets(), vec![(0, 5)], "the ledger holds it");
    let commits = shared.lock().assignment_mut().take_commits(None, false);
    assert_eq!(commits, vec![(0, 6)], "the dead letter is done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_the_group_dead_lettered_before_is_not_written_again() {
    // A former owner wrote it, but its commit stayed below it: a redelivery.
    let ledger = FakeLedger::holding("orders", 0, 5);
    let (shared, sink) = dead_letter_one_poison_record(ledger, false).await;
    assert!(
        sink.written.lock().unwrap().is_empty(),
        "no second DLQ write"
    );
    assert_eq!(shared.stats.dead_lettered.load(AtomicOrdering::Relaxed), 0);
    assert_eq!(
        shared
            .stats
            .dead_letter_skipped
            .load(AtomicOrdering::Relaxed),
        1
    );
    assert_eq!(shared.metrics.dead_letter_skipped.get(), 1);
    let commits = shared.lock().assignment_mut().take_commits(None, false);
    assert_eq!(commits, vec![(0, 6)], "the skipped record is done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_dead_lettered_while_the_ledger_is_unreachable() {
    let ledger = Arc::new(FakeLedger::default());
    *ledger.failures.lock().unwrap() = 3;
    let (shared, sink) = dead_letter_one_poison_record(Arc::clone(&ledger), false).await;
    assert_eq!(
        *sink.written.lock().unwrap(),
        vec![(0, 5, DlqCategory::Deserialization)],
        "written once, after the ledger came back"
    );
    assert_eq!(shared.stats.retried.load(AtomicOrdering::Relaxed), 3);
    assert_eq!(ledger.offsets(), vec![(0, 5)]);
    let commits = shared.lock().assignment_mut().take_commits(None, false);
    assert_eq!(commits, vec![(0, 6)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_write_to_retry_waits_out_of_its_batch() {
    let (shared, jobs) = one_poison_record();
    let sink = Arc::new(FakeSink::default());
    *sink.failures.lock().unwrap() = 3;
    let decoder = FakeDecoder {
        on_decode: Box::new(|| {}),
    };
    let store = Arc::new(FakeStore::default());
    let ledger = Arc::new(FakeLedger::default());
    processor(&shared, decoder, store, Arc::clone(&sink), ledger)
        .run_batch(jobs)
        .await;
    assert!(
        sink.written.lock().unwrap().is_empty(),
        "the batch, and its database slot, is done while the DLQ write still fails"
    );
    for _ in 0..500 {
        if !sink.written.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        *sink.written.lock().unwrap(),
        vec![(0, 5, DlqCategory::Deserialization)],
        "written once the DLQ takes writes again"
    );
    let commits = shared.lock().assignment_mut().take_commits(None, false);
    assert_eq!(commits, vec![(0, 6)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_dead_letter_for_a_partition_no_longer_owned() {
    // Revoked while the record is being judged: the new owner judges it again.
    let ledger = Arc::new(FakeLedger::default());
    let (shared, sink) = dead_letter_one_poison_record(Arc::clone(&ledger), true).await;
    assert!(sink.written.lock().unwrap().is_empty(), "no DLQ write");
    assert!(
        ledger.offsets().is_empty(),
        "nothing claimed for the new owner"
    );
    assert_eq!(shared.stats.dead_lettered.load(AtomicOrdering::Relaxed), 0);
    shared.lock().assign(0);
    assert!(
        shared
            .lock()
            .assignment_mut()
            .take_commits(None, false)
            .is_empty(),
        "nothing of the old epoch is committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn effects_of_one_key_are_applied_in_offset_order() {
    let shared = shared();
    shared.lock().assign(0);
    shared.lock().assign(1);
    let mut expected: BTreeMap<(i32, String), Vec<i64>> = BTreeMap::new();
    for offset in 0..60 {
        let partition = (offset % 2) as i32;
        let key = format!("o-{partition}-{}", offset % 3);
        let value = format!("e-{offset}");
        assert!(
            shared
                .lock()
                .accept(record(partition, offset, &key, &value), Ordering::Key)
        );
        expected.entry((partition, key)).or_default().push(offset);
    }
    let store = Arc::new(FakeStore::default());
    let decoder = FakeDecoder {
        on_decode: Box::new(|| {}),
    };
    let sink = Arc::new(FakeSink::default());
    let ledger = Arc::new(FakeLedger::default());
    let processor = processor(&shared, decoder, Arc::clone(&store), sink, ledger);
    let limits = DispatchLimits {
        max_in_flight: 8,
        batch_size: 4,
        db_concurrency: 3,
    };
    // Until every record is finished (applied and marked done).
    while shared.lock().buffered() > 0 {
        dispatch(limits, &shared, |jobs| {
            Arc::clone(&processor).run_batch(jobs).boxed()
        });
        let _ = tokio::time::timeout(Duration::from_millis(20), shared.wake.notified()).await;
    }
    let mut seen: BTreeMap<(i32, String), Vec<i64>> = BTreeMap::new();
    for (partition, key, offset) in store.applied.lock().unwrap().iter() {
        seen.entry((*partition, key.clone()))
            .or_default()
            .push(*offset);
    }
    assert_eq!(seen, expected, "each key's effects once, in offset order");
    assert!(*store.failed_once.lock().unwrap(), "a batch was retried");
    let commits = shared.lock().assignment_mut().take_commits(None, false);
    assert_eq!(commits, vec![(0, 59), (1, 60)]);
}

/// Records the applied offsets; fails every transaction holding offset 1 as that
/// record's own failure (not the database's), the first `failures` times.
#[derive(Debug, Default)]
struct OneBadRecordStore {
    applied: Mutex<Vec<i64>>,
    failures: Mutex<u32>,
}

impl EffectStore for Arc<OneBadRecordStore> {
    fn apply<'a>(
        &'a self,
        _group: &'a str,
        entries: &'a [BatchEntry<'a>],
    ) -> BoxFuture<'a, Result<Vec<EntryOutcome>, BatchFailure>> {
        let mut failures = self.failures.lock().unwrap();
        if *failures > 0 && entries.iter().any(|e| e.offset == 1) {
            *failures -= 1;
            return futures::future::ready(Err(BatchFailure {
                kind: FailureKind::Unknown,
                message: "check constraint violated".into(),
                sqlstate: Some("23514".into()),
            }))
            .boxed();
        }
        let mut applied = self.applied.lock().unwrap();
        applied.extend(entries.iter().map(|e| e.offset));
        futures::future::ready(Ok(vec![EntryOutcome::Applied; entries.len()])).boxed()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn later_records_of_a_run_wait_for_one_that_failed_on_its_own() {
    // One key's four records go to one batch; the second fails as its own failure
    // twice (in the batch, then alone in the split) and succeeds on its retry. The
    // third and fourth must not overtake it.
    let shared = shared();
    shared.lock().assign(0);
    for offset in 0..4 {
        let value = format!("e-{offset}");
        assert!(
            shared
                .lock()
                .accept(record(0, offset, "o-1", &value), Ordering::Key)
        );
    }
    let store = Arc::new(OneBadRecordStore {
        failures: Mutex::new(2),
        ..Default::default()
    });
    let decoder = FakeDecoder {
        on_decode: Box::new(|| {}),
    };
    let processor = processor(
        &shared,
        decoder,
        Arc::clone(&store),
        Arc::new(FakeSink::default()),
        Arc::new(FakeLedger::default()),
    );
    let limits = DispatchLimits {
        max_in_flight: 8,
        batch_size: 4,
        db_concurrency: 2,
    };
    let first = shared.lock().take_ready(limits.batch_size);
    assert_eq!(first.len(), 4, "the key's records in one batch");
    let batch = tokio::spawn(Arc::clone(&processor).run_batch(first));
    while shared.lock().buffered() > 0 {
        dispatch(limits, &shared, |jobs| {
            Arc::clone(&processor).run_batch(jobs).boxed()
        });
        let _ = tokio::time::timeout(Duration::from_millis(20), shared.wake.notified()).await;
    }
    batch.await.unwrap();
    assert_eq!(*store.failures.lock().unwrap(), 0, "offset 1 failed twice");
    assert_eq!(*store.applied.lock().unwrap(), vec![0, 1, 2, 3]);
    assert_eq!(shared.stats.dead_lettered.load(AtomicOrdering::Relaxed), 0);
    let commits = shared.lock().assignment_mut().take_commits(None, false);
    assert_eq!(commits, vec![(0, 4)]);
}
