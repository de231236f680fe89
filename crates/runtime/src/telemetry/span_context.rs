//! Joining `tracing` spans to remote trace contexts: parent a span by the context a
//! record or a stored row carries, or link it (the messaging conventions' batch model),
//! without each crate depending on the OpenTelemetry crates.

pub use opentelemetry::Context as TraceContext;
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Makes `parent` the parent of `span` when `parent` holds a valid span context. Call it
/// before the span is entered. Does nothing when traces are not exported.
pub fn set_parent(span: &tracing::Span, parent: &TraceContext) {
    if parent.span().span_context().is_valid() {
        // Fails only when the span is not exported: nothing to parent then.
        let _ = span.set_parent(parent.clone());
    }
}

/// Links `span` to the span of `cx`, when `cx` holds a valid span context.
pub fn add_link(span: &tracing::Span, cx: &TraceContext) {
    let span_context = cx.span().span_context().clone();
    if span_context.is_valid() {
        span.add_link(span_context);
    }
}

/// The trace id of `cx`'s span, if it is valid.
pub fn trace_id(cx: &TraceContext) -> Option<String> {
    let span = cx.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// Whether `a` and `b` hold valid span contexts of one trace.
pub fn same_trace(a: &TraceContext, b: &TraceContext) -> bool {
    let (a, b) = (a.span(), b.span());
    let (a, b) = (a.span_context(), b.span_context());
    a.is_valid() && b.is_valid() && a.trace_id() == b.trace_id()
}

/// The OpenTelemetry context of a `tracing` span (empty when traces are not exported).
pub fn context_of(span: &tracing::Span) -> TraceContext {
    span.context()
}
