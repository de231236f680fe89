//! Delivery reports: every record handed to the Kafka client is tracked until its report
//! comes back, counted as acked or failed, and its enqueue-to-report latency observed.
//!
//! The producer is librdkafka's threaded producer: records are handed over without waiting
//! (no future per record), and a background thread runs [`DeliveryTracker::delivery`] for
//! each report. What a record needs in its report (its event type and when it was handed
//! over) is packed into the `usize` delivery opaque, so tracking allocates nothing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use orderflow_schemas::EVENT_TYPES;
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message, ToBytes};
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};

use crate::metrics::{ProducerMetrics, ResultCounters};

/// The producer type the generator writes with.
pub type OrderProducer = ThreadedProducer<DeliveryTracker>;

/// Bits of the delivery opaque holding the event type index (4 types fit in 3 bits).
const EVENT_TYPE_BITS: u32 = 3;
const EVENT_TYPE_MASK: usize = (1 << EVENT_TYPE_BITS) - 1;

/// How long to wait before retrying a send when librdkafka's local queue is full.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(2);

/// Index of `event_type` in [`EVENT_TYPES`].
///
/// # Panics
/// When `event_type` is not one of [`EVENT_TYPES`] (a programming error).
pub fn event_type_index(event_type: &str) -> usize {
    EVENT_TYPES
        .iter()
        .position(|known| *known == event_type)
        .unwrap_or_else(|| panic!("unknown event type {event_type:?}"))
}

/// Counts delivery reports and feeds the metrics; the producer's client context.
#[derive(Debug)]
pub struct DeliveryTracker {
    epoch: Instant,
    counters: Vec<ResultCounters>,
    latency: prometheus::Histogram,
    acked: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl DeliveryTracker {
    /// A tracker for records written to `topic`, reporting into `metrics`.
    pub fn new(topic: &str, metrics: &ProducerMetrics) -> Self {
        Self {
            epoch: Instant::now(),
            counters: EVENT_TYPES
                .iter()
                .map(|event_type| metrics.record_counters(topic, event_type))
                .collect(),
            latency: metrics.delivery_latency().clone(),
            acked: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            first_error: Mutex::new(None),
        }
    }

    /// The delivery opaque of a record of `event_type_index` handed over now.
    pub fn tag(&self, event_type_index: usize) -> usize {
        debug_assert!(event_type_index <= EVENT_TYPE_MASK);
        let nanos = self.epoch.elapsed().as_nanos() as usize;
        (nanos << EVENT_TYPE_BITS) | (event_type_index & EVENT_TYPE_MASK)
    }

    /// Records acknowledged by the broker so far.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Records whose delivery failed so far.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// The first delivery error seen, if any.
    pub fn first_error(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: usize) {
        let enqueued_nanos = (tag >> EVENT_TYPE_BITS) as u128;
        let now_nanos = self.epoch.elapsed().as_nanos();
        let latency = now_nanos.saturating_sub(enqueued_nanos) as f64 / 1e9;
        self.latency.observe(latency);
        let counters = &self.counters[(tag & EVENT_TYPE_MASK).min(self.counters.len() - 1)];
        match result {
            Ok(_) => {
                counters.acked.inc();
                self.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, message)) => {
                counters.failed.inc();
                let failed_before = self.failed.fetch_add(1, Ordering::Relaxed);
                if failed_before == 0 {
                    let text = format!(
                        "{error} (topic {}, partition {})",
                        message.topic(),
                        message.partition()
                    );
                    tracing::error!(error = %text, "delivery failed; further failures are counted, not logged");
                    *self
                        .first_error
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(text);
                }
            }
        }
    }
}

/// Hands `record` to the client, waiting (not dropping) while its local queue is full.
/// Any other error is returned: the record was not accepted and gets no report.
pub async fn send_with_backpressure<K, P>(
    producer: &OrderProducer,
    mut record: BaseRecord<'_, K, P, usize>,
) -> Result<(), KafkaError>
where
    K: ToBytes + ?Sized,
    P: ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                record = returned;
                tokio::time::sleep(QUEUE_FULL_PAUSE).await;
            }
            Err((error, _)) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Registry;

    #[test]
    fn tag_carries_event_type_and_enqueue_time() {
        let metrics = ProducerMetrics::register(&Registry::new()).unwrap();
        let tracker = DeliveryTracker::new("orders", &metrics);
        std::thread::sleep(Duration::from_millis(2));
        let tag = tracker.tag(event_type_index("OrderShipped"));
        assert_eq!(tag & EVENT_TYPE_MASK, 2);
        let nanos = (tag >> EVENT_TYPE_BITS) as u128;
        assert!(nanos >= 2_000_000 && nanos <= tracker.epoch.elapsed().as_nanos());
    }

    #[test]
    fn every_event_type_has_an_index() {
        for (i, event_type) in EVENT_TYPES.iter().enumerate() {
            assert_eq!(event_type_index(event_type), i);
        }
        assert!(EVENT_TYPES.len() <= EVENT_TYPE_MASK + 1);
    }
}
