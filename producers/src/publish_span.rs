//! The publish span of one record (OpenTelemetry's messaging conventions) and the trace
//! context the record then carries in its headers: the span's own, so the consumer's
//! spans continue from the publish.

use orderflow_runtime::telemetry::span_context::TraceContext;
use orderflow_runtime::telemetry::{self, RootSpan, StoredTraceContext};
use tracing::field::Empty;

/// A `publish <topic>` producer span for the record keyed `key`, continuing `parent` (the
/// context stored with an outbox row, or an empty one for a new trace) when the trace is
/// sampled; its partition and offset are recorded by [`record_delivered`] once the broker
/// acknowledged it.
pub fn publish_span(topic: &str, key: &str, parent: impl FnOnce() -> TraceContext) -> RootSpan {
    telemetry::root_span(parent, || span(topic, key))
}

fn span(topic: &str, key: &str) -> tracing::Span {
    tracing::info_span!(
        "publish",
        otel.name = %format_args!("publish {topic}"),
        otel.kind = "producer",
        otel.status_code = Empty,
        otel.status_description = Empty,
        messaging.system = "kafka",
        messaging.operation.name = "publish",
        messaging.operation.type = "send",
        messaging.destination.name = topic,
        messaging.kafka.message.key = key,
        messaging.destination.partition.id = Empty,
        messaging.kafka.offset = Empty,
        error.type = Empty,
    )
}

/// Records where the broker stored the record.
pub fn record_delivered(span: &tracing::Span, partition: i32, offset: i64) {
    span.record("messaging.destination.partition.id", partition.to_string());
    span.record("messaging.kafka.offset", offset);
}

/// Records that the record was not delivered, and why.
pub fn record_failed(span: &tracing::Span, error: &str) {
    span.record("otel.status_code", "ERROR");
    span.record("otel.status_description", error);
    span.record("error.type", "delivery_failed");
}

/// The trace context the record carries: the publish span's when it is exported, the
/// trace's with the sampled flag off when it is sampled out, else (spans not exported)
/// the one it would have carried without tracing (`fallback`).
pub fn carried_context(root: &RootSpan, fallback: StoredTraceContext) -> StoredTraceContext {
    root.carried().unwrap_or(fallback)
}
