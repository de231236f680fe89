//! The spans of a batch (OpenTelemetry's messaging conventions, batch model): one
//! `process <topic>` consumer span per round of a batch, linked to each record's trace
//! context (the `traceparent`/`tracestate` it carries) and parented by it when the whole
//! batch belongs to one trace; children for decoding, the database transaction and the
//! DLQ hand-off, and a `settle` span per dead-lettered record that says why.

use orderflow_runtime::telemetry::propagation::extract_kafka_headers;
use orderflow_runtime::telemetry::span_context::{self, TraceContext};
use orderflow_runtime::telemetry::{self, RootSpan};
use rdkafka::Message;
use rdkafka::message::OwnedMessage;
use tracing::field::Empty;

use crate::dead_letter::FailureReport;

/// The process span of one round over `records`. Whether it is sampled is decided
/// before it is built: by the batch's one trace when every record belongs to it (the
/// process span is that trace's next hop), else as a new trace (links only, as the
/// conventions say). Sampled out, no span, link or record context is built for it.
pub fn process_span<'a>(
    topic: &str,
    group: &str,
    records: impl ExactSizeIterator<Item = &'a OwnedMessage> + Clone,
) -> RootSpan {
    let count = records.len();
    let make = || {
        tracing::info_span!(
            "process",
            otel.name = %format_args!("process {topic}"),
            otel.kind = "consumer",
            messaging.system = "kafka",
            messaging.operation.name = "process",
            messaging.operation.type = "process",
            messaging.destination.name = topic,
            messaging.consumer.group.name = group,
            messaging.batch.message_count = count,
            messaging.destination.partition.id = Empty,
            messaging.kafka.offset = Empty,
            messaging.kafka.message.key = Empty,
        )
    };
    let root = telemetry::root_span(|| batch_parent(records.clone()), make);
    if !root.is_sampled() {
        return root;
    }
    let span = &root.span;
    for record in records {
        if count == 1 {
            span.record(
                "messaging.destination.partition.id",
                record.partition().to_string(),
            );
            span.record("messaging.kafka.offset", record.offset());
            if let Some(key) = record.key().and_then(|key| std::str::from_utf8(key).ok()) {
                span.record("messaging.kafka.message.key", key);
            }
        }
        span_context::add_link(span, &record_context(record));
    }
    root
}

/// The context of the batch's one trace when every record carries the same trace id,
/// else an empty one (a new trace). Reads records only until one differs.
fn batch_parent<'a>(mut records: impl Iterator<Item = &'a OwnedMessage>) -> TraceContext {
    let Some(first) = records.next().map(record_context) else {
        return TraceContext::new();
    };
    if records.all(|record| span_context::same_trace(&first, &record_context(record))) {
        first
    } else {
        TraceContext::new()
    }
}

/// The trace context `record` carries (empty when none).
pub fn record_context(record: &OwnedMessage) -> TraceContext {
    match record.headers() {
        Some(headers) => extract_kafka_headers(headers),
        None => TraceContext::new(),
    }
}

/// Decoding the round's records.
pub fn decode_span(records: usize) -> tracing::Span {
    tracing::info_span!("decode", otel.name = "decode", records)
}

/// The round's database transaction (dedup rows and projection effects).
pub fn transaction_span(records: usize) -> tracing::Span {
    tracing::info_span!(
        "transaction",
        otel.name = "transaction orders projection",
        otel.kind = "client",
        otel.status_code = Empty,
        otel.status_description = Empty,
        db.system.name = "postgresql",
        db.operation.name = "transaction",
        db.operation.batch.size = records,
        records,
    )
}

/// Marks a transaction span failed with `message`.
pub fn transaction_failed(span: &tracing::Span, message: &str) {
    span.record("otel.status_code", "ERROR");
    span.record("otel.status_description", message);
}

/// Handing the round's dead letters to the DLQ.
pub fn dead_letter_span(records: usize) -> tracing::Span {
    tracing::info_span!(
        "dead-letter hand-off",
        otel.name = "dead-letter hand-off",
        otel.kind = "producer",
        messaging.system = "kafka",
        messaging.operation.name = "publish",
        messaging.operation.type = "send",
        records,
    )
}

/// A `settle` span for one dead-lettered record: why it was dead-lettered and where it
/// came from. Its parent is the record's own trace context, so the record's trace shows
/// why it ended in the DLQ whatever batch it was in; it links to the current span (the
/// hand-off, inside the batch's process span).
pub fn settle_span(record: &OwnedMessage, group: &str, report: &FailureReport) -> tracing::Span {
    let hand_off = span_context::context_of(&tracing::Span::current());
    let make = || {
        tracing::info_span!(
            "settle",
            otel.name = %format_args!("settle {}", record.topic()),
            otel.kind = "consumer",
            otel.status_code = "ERROR",
            otel.status_description = %report.message,
            messaging.system = "kafka",
            messaging.operation.name = "dead-letter",
            messaging.operation.type = "settle",
            messaging.destination.name = record.topic(),
            messaging.destination.partition.id = %record.partition(),
            messaging.kafka.offset = record.offset(),
            messaging.consumer.group.name = group,
            error.type = report.category.as_str(),
            dead_letter.reason = %report.message,
            dead_letter.attempts = report.attempts,
            dead_letter.outcome = Empty,
        )
    };
    let root = telemetry::root_span(|| record_context(record), make);
    if root.is_sampled() {
        span_context::add_link(&root.span, &hand_off);
    }
    root.span
}
