//! Head sampling before a span is built. The OpenTelemetry layer builds every `tracing`
//! span it sees (its attributes, links, ids) and only then asks the sampler, so a trace
//! sampled out still cost its spans. Here the decision is taken where a trace enters the
//! process (an HTTP request, an outbox row, a generated record, a batch of records), with
//! the configured sampler and the remote context the trace arrives with:
//!
//! - sampled: the root span is built under that context and goes on as before;
//! - sampled out: the work runs with a context that holds the trace's ids and the
//!   sampled flag off. The subscriber's filter builds no exported span under such a
//!   context, and what the work stores or sends (`traceparent` with flags `00`) tells
//!   the next hop, whose parent-based sampler then agrees.

use std::future::Future;

use opentelemetry::context::{FutureExt, WithContext};
use opentelemetry::trace::{
    Link, SpanContext, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, SamplingResult, ShouldSample,
};
use tracing::Instrument;
use tracing::instrument::Instrumented;

use super::log_filter::LogOrExportFilter;
use super::propagation::StoredTraceContext;

/// Marks the context of a new root span that [`root_span`] already sampled, so the
/// provider's sampler does not draw a second time.
#[derive(Debug, Clone, Copy)]
struct SampledRoot;

/// The provider's sampler: the configured one, except that a root [`root_span`] sampled
/// stays sampled (the configured sampler would otherwise draw again for it, on a trace id
/// of its own).
#[derive(Debug, Clone)]
pub(crate) struct HeadSampler(pub(crate) Sampler);

impl ShouldSample for HeadSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        if let Some(cx) = parent_context
            && !cx.span().span_context().is_valid()
            && cx.get::<SampledRoot>().is_some()
        {
            return SamplingResult {
                decision: SamplingDecision::RecordAndSample,
                attributes: Vec::new(),
                trace_state: TraceState::default(),
            };
        }
        self.0
            .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

/// Whether the current OpenTelemetry context holds a trace that is sampled out: no span
/// is exported under it.
pub(crate) fn in_unsampled_trace() -> bool {
    Context::map_current(|cx| {
        let span = cx.span();
        let span_context = span.span_context();
        span_context.is_valid() && !span_context.is_sampled()
    })
}

/// The head decision for a trace entering the process with `parent` (an empty context
/// for a new trace).
#[derive(Debug, Clone)]
enum Decision {
    /// Spans are not exported.
    Off,
    /// Build the spans; the root's parent context.
    Sampled(Context),
    /// Build no exported span; the context the work carries on.
    Unsampled(Context),
}

/// Runs `f` with the sampler of the current subscriber's span export, if it exports.
fn with_sampler<T>(mut f: impl FnMut(Option<&Sampler>) -> T) -> T {
    tracing::dispatcher::get_default(|dispatch| {
        f(dispatch
            .downcast_ref::<LogOrExportFilter>()
            .and_then(LogOrExportFilter::sampler))
    })
}

fn decide(parent: impl FnOnce() -> Context) -> Decision {
    if !with_sampler(|sampler| sampler.is_some()) {
        return Decision::Off;
    }
    // Read outside the dispatcher's scope, so what `parent` logs still reaches the log.
    let parent = parent();
    with_sampler(|sampler| sampler.map_or(Decision::Off, |s| decide_with(s, &parent)))
}

fn decide_with(sampler: &Sampler, parent: &Context) -> Decision {
    let parent_span = parent.span();
    let parent_context = parent_span.span_context();
    let ids = RandomIdGenerator::default();
    if parent_context.is_valid() {
        let result = sampler.should_sample(
            Some(parent),
            parent_context.trace_id(),
            "",
            &SpanKind::Internal,
            &[],
            &[],
        );
        if result.decision != SamplingDecision::Drop {
            return Decision::Sampled(parent.clone());
        }
        if !parent_context.is_sampled() {
            return Decision::Unsampled(parent.clone());
        }
        let unsampled = SpanContext::new(
            parent_context.trace_id(),
            parent_context.span_id(),
            parent_context.trace_flags().with_sampled(false),
            parent_context.is_remote(),
            parent_context.trace_state().clone(),
        );
        return Decision::Unsampled(Context::new().with_remote_span_context(unsampled));
    }
    let trace_id = ids.new_trace_id();
    let result = sampler.should_sample(None, trace_id, "", &SpanKind::Internal, &[], &[]);
    if result.decision == SamplingDecision::Drop {
        let span_context = SpanContext::new(
            trace_id,
            ids.new_span_id(),
            TraceFlags::default(),
            false,
            TraceState::default(),
        );
        Decision::Unsampled(Context::new().with_remote_span_context(span_context))
    } else {
        Decision::Sampled(Context::new().with_value(SampledRoot))
    }
}

/// A span where a trace enters the process, built (or not) by the head decision, and
/// the context its work runs in.
#[derive(Debug)]
pub struct RootSpan {
    /// The span (disabled when the trace is sampled out and the log level does not want
    /// it either).
    pub span: tracing::Span,
    decision: Decision,
}

/// Decides whether the trace that arrives with `parent` (a remote context, or an empty
/// one for a new trace; asked only when spans are exported) is sampled, and builds the
/// root span with `make` under that decision: sampled, its parent is `parent`; sampled
/// out, no exported span is built.
pub fn root_span(
    parent: impl FnOnce() -> Context,
    make: impl FnOnce() -> tracing::Span,
) -> RootSpan {
    let decision = decide(parent);
    let span = match &decision {
        Decision::Off => make(),
        Decision::Sampled(cx) | Decision::Unsampled(cx) => {
            let _attached = cx.clone().attach();
            make()
        }
    };
    RootSpan { span, decision }
}

impl RootSpan {
    /// Whether the root span is exported.
    pub fn is_sampled(&self) -> bool {
        matches!(self.decision, Decision::Sampled(_))
    }

    /// Runs `future` inside the span and, when spans are exported, the decided context.
    pub fn in_trace<F: Future>(&self, future: F) -> WithContext<Instrumented<F>> {
        let cx = match &self.decision {
            Decision::Off => Context::new(),
            Decision::Sampled(cx) | Decision::Unsampled(cx) => cx.clone(),
        };
        future.instrument(self.span.clone()).with_context(cx)
    }

    /// The trace context to hand on (store with a row, write into a record's headers):
    /// the root span's own when sampled, the sampled-out trace's otherwise; `None` when
    /// spans are not exported.
    pub fn carried(&self) -> Option<StoredTraceContext> {
        match &self.decision {
            Decision::Off => None,
            Decision::Unsampled(cx) => StoredTraceContext::capture(cx),
            Decision::Sampled(cx) => {
                let _attached = cx.clone().attach();
                self.span.in_scope(StoredTraceContext::current)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::SpanId;

    use super::*;

    fn remote(sampled: bool) -> Context {
        let flags = if sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            flags,
            true,
            TraceState::default(),
        ))
    }

    fn ratio(ratio: f64) -> Sampler {
        Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
    }

    #[test]
    fn a_remote_parent_decides_under_a_parent_based_sampler() {
        assert!(matches!(
            decide_with(&ratio(0.0), &remote(true)),
            Decision::Sampled(_)
        ));
        let Decision::Unsampled(cx) = decide_with(&ratio(1.0), &remote(false)) else {
            panic!("an unsampled parent keeps its trace sampled out");
        };
        assert_eq!(
            StoredTraceContext::capture(&cx).unwrap().traceparent,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
        );
    }

    #[test]
    fn a_new_trace_sampled_out_still_has_ids_and_the_flag_off() {
        let Decision::Unsampled(cx) = decide_with(&ratio(0.0), &Context::new()) else {
            panic!("ratio 0 samples nothing");
        };
        let stored = StoredTraceContext::capture(&cx).expect("valid ids");
        assert!(
            stored.traceparent.ends_with("-00"),
            "{}",
            stored.traceparent
        );
    }

    #[test]
    fn a_sampled_new_root_is_not_drawn_again_by_the_provider() {
        let Decision::Sampled(cx) = decide_with(&ratio(1.0), &Context::new()) else {
            panic!("ratio 1 samples everything");
        };
        // A sampler that would drop every root keeps the head decision.
        let provider_sampler = HeadSampler(ratio(0.0));
        let trace_id = RandomIdGenerator::default().new_trace_id();
        let kind = SpanKind::Internal;
        let decision = |cx: Option<&Context>| {
            provider_sampler
                .should_sample(cx, trace_id, "root", &kind, &[], &[])
                .decision
        };
        assert_eq!(decision(Some(&cx)), SamplingDecision::RecordAndSample);
        assert_eq!(decision(Some(&Context::new())), SamplingDecision::Drop);
        assert_eq!(decision(None), SamplingDecision::Drop);
    }
}
