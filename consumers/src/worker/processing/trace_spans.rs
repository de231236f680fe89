//! The spans of a batch (OpenTelemetry's messaging conventions, batch model): one
//! `process <topic>` consumer span per round of a batch, linked to each record's trace
//! context (the `traceparent`/`tracestate` it carries) and parented by it when the whole
//! batch belongs to one trace; children for decoding, the database transaction and the
//! DLQ hand-off, and a `settle` span per dead-lettered record that says why.

use orderflow_runtime::telemetry::propagation::extract_kafka_headers;
use orderflow_runtime::telemetry::span_context::{self, TraceContext};
use rdkafka::Message;
use rdkafka::message::OwnedMessage;
use tracing::field::Empty;

use crate::dead_letter::FailureReport;

/// The process span of one round over `records`.
pub fn process_span<'a>(
    topic: &str,
    group: &str,
    records: impl ExactSizeIterator<Item = &'a OwnedMessage>,
) -> tracing::Span {
    let count = records.len();
    let span = tracing::info_span!(
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
    );
    if !orderflow_runtime::telemetry::is_exporting() {
        return span;
    }
    let mut contexts: Vec<TraceContext> = Vec::with_capacity(count);
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
        contexts.push(record_context(record));
    }
    // One trace for the whole batch (a single record, or one order's events): the batch
    // is that trace's next hop. Several traces: links only, as the conventions say.
    let first_trace = contexts.first().and_then(span_context::trace_id);
    if first_trace.is_some()
        && contexts
            .iter()
            .all(|cx| span_context::trace_id(cx) == first_trace)
    {
        span_context::set_parent(&span, &contexts[0]);
    }
    for cx in &contexts {
        span_context::add_link(&span, cx);
    }
    span
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
    let span = tracing::info_span!(
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
    );
    span_context::set_parent(&span, &record_context(record));
    span_context::add_link(&span, &span_context::context_of(&tracing::Span::current()));
    span
}
